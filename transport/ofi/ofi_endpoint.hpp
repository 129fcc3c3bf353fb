// transport/ofi/ofi_endpoint.hpp — the ofi Endpoint: one libfabric RDM endpoint
// with its completion queue, a pool of bounce receives, a watch listener, and
// a table of peers. How frames travel: ofi_tags.hpp.
//
// Progress is manual: poll() is where libfabric moves (rxm forms connections,
// shm copies, rendezvous reads happen there). In order, poll():
//   1. re-posts the bounce buffers handed out by the previous poll;
//   2. retries what the provider refused with -FI_EAGAIN (sends, queued in
//      order per peer; payload receives) and hands out frames that
//      waited for their turn, for room, or behind an announcement;
//   3. reads the completion queue while the event span has room, and turns
//      completions into events; fi_cq_readerr entries fail their operation
//      with the provider's text (fi_cq_strerror);
//   4. looks at its epoll set (watch sockets: handshakes, early frames, end
//      of file) when a watch is busy or the set is the caller's wait_fd()
//      (until the caller uses prepare_wait()), otherwise once in 64 idle
//      polls: spinning on the fabric costs no system call;
//   5. retires peers that are gone — those whose watch closed once the
//      completion queue has been found empty twice since, so that what they
//      sent before going and is already here is still delivered;
//   6. leaves wait_fd() readable when work is left, else arms the completion
//      queue's wait object (fi_trywait) — unless the caller arms it itself
//      with prepare_wait() right before blocking, which is cheaper.
//
// wait_fd() is an epoll set holding the completion queue's FI_WAIT_FD, an
// eventfd for work left over, and the watch sockets. Providers without
// FI_WAIT_FD (shm) have caps().wait_fd = false: callers poll.
//
// Ownership: the endpoint owns its libfabric objects (Fabric), the buffers
// and operations it hands to them (BouncePool, OpPools), its watches and its
// peers; callers' buffers are only borrowed, as transport.hpp says.
// Destroying it cancels posted payload receives and lets the provider finish
// what send() reported kDone (2 s at most), writes a bye on every watch,
// closes the watches, then the libfabric endpoint, and only then frees the
// buffers and contexts libfabric might still have pointed at. Pending sends
// are let go without an event.
//
// PeerIds index peers_ and are never reused; a retired peer leaves a null
// slot, so later sends say kPeerLost rather than "unknown", and a late
// message for it is dropped. Not thread-safe (caps().thread_safe = false).
//
// The code is in four files by role: ofi_endpoint.cpp (life cycle, poll(),
// retiring peers), ofi_connect.cpp (connections, the watch, the handshake),
// ofi_send.cpp (the send path), ofi_dispatch.cpp (what arrives).
#pragma once

#include <rdma/fabric.h>
#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/ofi/ofi_fabric.hpp"
#include "transport/ofi/ofi_memory.hpp"
#include "transport/ofi/ofi_ops.hpp"
#include "transport/ofi/ofi_peer.hpp"
#include "transport/ofi/ofi_receive.hpp"
#include "transport/ofi/ofi_transport.hpp"
#include "transport/ofi/ofi_watch.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::ofi {

class OfiEndpoint final : public Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  ~OfiEndpoint() override;

  const Caps& caps() const override { return caps_; }
  Address address() const override { return address_; }
  Result<PeerId> connect(const Address& addr) override;
  void disconnect(PeerId peer) override;
  Result<Progress> send(PeerId peer, const Frame& frame, OpId op) override;
  Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) override;
  std::size_t poll(std::span<Event> out) override;
  Result<int> wait_fd() override;
  /// Arms the completion queue's wait object (fi_trywait) right before the
  /// caller blocks on wait_fd(); false: poll() has work, do not block. Once a
  /// caller has used it, poll() stops arming the wait object itself (that
  /// costs a system call or two per poll on rxm). Declared without
  /// `override` so that it builds whether or not Endpoint has this slot yet.
  bool prepare_wait();

  /// The provider in use ("tcp;ofi_rxm"), for tests and `cohort ps`.
  const std::string& provider() const noexcept { return fabric_->provider(); }

 private:
  OfiEndpoint() = default;
  Status init(const EndpointOptions& options);

  Peer* live(PeerId id) const noexcept { return id < peers_.size() ? peers_[id].get() : nullptr; }
  Peer& add_peer(bool outgoing);
  Status insert_address(Peer& p, const std::string& name);
  Status peer_status(const Peer& p, Errc code, const std::string& why) const;
  void make_ready(Peer& p);
  void wake();
  void unwake();
  bool work_left() const noexcept;
  /// The peer is gone (its watch closed, a send failed, its endpoint closed):
  /// retired by poll() — `at_once`, or once the completion queue has been
  /// found empty twice, so that what it sent before is still delivered.
  void mark_gone(Peer& p, Status why, bool at_once);

  // Credits (ofi_tags.hpp; ofi_endpoint.cpp).
  /// Bounce buffers for one more connection (grown and posted now). Its
  /// failure fails the connection.
  Status reserve_buffers();
  /// Credits to carry back in the `parts` byte of a message to p (the caller
  /// subtracts them from p.owed once the message has left).
  static std::uint8_t owed_now(const Peer& p) noexcept {
    return static_cast<std::uint8_t>(std::min<std::uint32_t>(p.owed, 255));
  }
  /// Counts the buffers post() gave back to their senders into their owed credits.
  void note_reposted();
  /// kCredit to every peer owed kCreditBatch or more that no message carried them to.
  void send_credits();
  /// A peer gave `n` credits back.
  void on_credits(Peer& p, std::uint32_t n);

  // Sending (ofi_endpoint.cpp).
  /// Moves p's queued frames on — to the watch before the welcome, to the
  /// provider after it — in order, until something must wait.
  void drive(Peer& p, EventSink& sink);
  /// One frame on p's watch, straight from the caller's buffers.
  Status write_early(Peer& p, std::span<const std::byte> header, std::span<const iovec> payload);
  /// Sends p's waiting kClear messages and posts the payloads p has cleared;
  /// false when something must wait for the next poll (p is then ready) or p
  /// is gone.
  bool send_control(Peer& p);
  /// Receiver side: every part of announcement `seq` from p has its receive
  /// posted; tells p to send the payload (now, or from the next poll).
  void clear_to_send(Peer& p, std::uint32_t seq);
  /// Sender side: p cleared announcement `seq`; its payload goes.
  void on_clear(Peer& p, std::uint32_t seq);
  /// Writes a bye on p's watch (just before it closes).
  void send_bye(Peer& p);
  void finish_send(SendOp& op, EventSink& sink);

  // Life cycle (ofi_endpoint.cpp).
  void cancel_receives(Peer& p);
  void drain_for_close();
  void read_completions_for_close(EventSink& sink, bool& drained);
  /// Fails p's operations with `status` (kSendDone/kRecvDone), reports
  /// kPeerDown(`why`) if asked and the caller knows p, closes its watch, retires it.
  void retire(Peer& p, const Status& why, bool report, EventSink& sink);
  void fail_ops(Peer& p, const Status& status, EventSink& sink);

  // What arrives (ofi_dispatch.cpp).
  void read_completions(EventSink& sink, bool& drained);
  void on_completion(Ctx& ctx, std::uint64_t tag, std::size_t len, fi_addr_t src, EventSink& sink);
  void on_error(EventSink& sink);
  void on_bounce(BouncePool::Slot& slot, std::uint64_t tag, std::size_t len, fi_addr_t src,
                 EventSink& sink);
  void on_recv_part(RecvOp& op, std::uint8_t part, std::size_t len, Status status,
                    EventSink& sink);
  void post_receives(EventSink& sink);
  /// Parks a frame or bye of p, then hands out what is p's turn.
  void arrive(Peer& p, Parked&& msg, EventSink& sink);
  /// Hands out p's frames in order while room and `blocked` allow.
  void advance(Peer& p, EventSink& sink);
  /// On p's bye: its sends with every message posted end well (see the .cpp).
  void finish_taken_sends(Peer& p, EventSink& sink);
  /// One in-order message of p; false if p was retired by it (a bye).
  bool process(Peer& p, Parked& msg, EventSink& sink);
  void emit_frame(Peer& p, WireType type, std::span<const std::byte> header,
                  std::span<const std::byte> payload, std::uint64_t payload_size,
                  EventSink& sink);
  void check_watch(EventSink& sink);
  void on_watch(Watch::Event& e, EventSink& sink);
  void on_hello(Watch::Event& e, const Decoded& d, EventSink& sink);
  void on_welcome(Peer& p, const Decoded& d, EventSink& sink);

  std::unique_ptr<Fabric> fabric_;  // first: closed last
  std::unique_ptr<Memory> memory_;
  std::unique_ptr<OpPools> pools_;
  BouncePool bounce_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;
  std::unique_ptr<Watch> watch_;
  LocalEndpoints::Token alive_;

  Caps caps_;
  Address address_;
  std::string hello_;
  std::uint64_t nonce_ = 0;
  std::string host_;
  std::size_t iov_limit_ = 1;
  std::size_t inject_size_ = 0;
  bool wake_armed_ = false;
  bool trace_sources_ = false;  // FI_SOURCE and trace logging: log where completions come from
  bool caller_prepares_wait_ = false;  // prepare_wait() has been called
  bool watch_due_ = false;             // prepare_wait() saw a watch socket ready
  unsigned idle_polls_ = 0;
  std::size_t recv_parts_posted_ = 0;  // payload receives in libfabric's hands
  std::size_t unreported_sends_ = 0;   // send() said kDone; the provider has not finished

  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Peer>> retired_;  // freed at the next poll()
  std::vector<PeerId> ready_, ready_work_;
  std::vector<PeerId> gone_;                    // peers marked gone, not yet retired
  std::vector<PeerId> owing_;                   // peers owed kCreditBatch credits or more
  std::size_t connections_ = 0;                 // live peers: each has its bounce buffers
  std::unordered_map<std::string, fi_addr_t> av_;  // fabric name -> AV entry
  std::vector<PeerId> watch_owner_;                // ConnId -> PeerId (kNoPeer: no hello yet)
  std::vector<RecvOp*> unposted_recvs_;
  // Storage of spans handed out by this poll: valid until the next.
  std::vector<std::unique_ptr<HeldFrame>> handed_held_;
  std::vector<std::vector<std::byte>> handed_records_;
  std::vector<Watch::Event> watch_events_;
  std::deque<Watch::Event> watch_backlog_;  // hellos that found the event span full
  EventQueue overflow_;
  std::array<epoll_event, 16> epoll_events_{};
};

}  // namespace cohort::transport::ofi
