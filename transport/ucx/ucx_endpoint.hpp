// transport/ucx/ucx_endpoint.hpp — the ucx Endpoint: one UCP worker, its peers,
// and the receives it keeps posted.
//
// Sending (ucx_endpoint.cpp). A frame that fits a slot (header + payload <=
// kSlotBytes) is one tagged message. Up to kInlineCopy bytes are first copied
// into one contiguous stack buffer and sent with UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL,
// UCX's short-message path (no request, no callback); otherwise, and when that
// is refused, the header and payload go as a UCP iov datatype (no copy of ours),
// with a SendOp holding the iov array. A larger frame is split: a start message
// (header, size, sequence) and the payload message (see ucx_tags.hpp). send()
// returns kDone when UCX completed everything in the call, else kPending and
// kSendDone follows from poll(). UCX keeps tag sends on one ep in order, so
// frames to one peer never overtake each other.
//
// Receiving (ucx_endpoint_poll.cpp). kRingSlots receives for start messages are
// always posted (mask: P clear), each into a kSlotBytes buffer. poll() runs
// ucp_worker_progress() once, turns completed requests into events, and takes
// finished slots strictly in posting order — UCX matches posted receives in
// that order, so this keeps each sender's order even when a later slot finishes
// first. A slot's message goes to its sender's inbox (or straight out as an
// event when nothing waits before it); the slot is reposted with a fresh
// buffer. The buffers behind kFrameArrived spans are recycled at the next
// poll(). A split frame's payload is received by an exact-tag receive: into a
// buffer of ours when it is at most max_inline (kFrameArrived once complete),
// else into the caller's buffer after kFrameAnnounced/receive_payload().
//
// Connections (ucx_endpoint_poll.cpp, ucx_endpoint_peers.cpp). connect() makes
// the ucp_ep (UCP_ERR_HANDLING_MODE_PEER, so UCX reports failures and
// UCP_EP_CLOSE_FLAG_FORCE can end requests) and sends the hello first: our
// address, the PeerId the acceptor must put in its messages to us, the nonce of
// the address we used, EndpointOptions::hello. The acceptor makes the reply ep
// when it reads the hello and reports kPeerAccepted. A peer is lost when UCX's
// error callback fires, when its goodbye (kBye) arrives, when it refuses us, or
// when its process exits (same-host peers, ucx_liveness.hpp).
//
// Siblings (ucx_endpoint_peers.cpp). Two processes that both connect() to
// each other hold two peers each (ours and accepted), so two ucp_eps towards
// one remote worker. UCP pairs the eps of two workers by their creation order
// (its conn_sn), not by our roles: our connecting ep may be the one that
// carries, inside UCX, the rendezvous traffic of the remote's connecting ep —
// the frames of our *accepted* peer. Force-closing one sibling's ep therefore
// cancels the other's transfers (over TCP each ep is its own socket, so a
// goodbye on one overtakes a payload still streaming on the other). A failed
// peer whose sibling still holds an open ep is reported as usual but its ep
// is parked, not closed; the last sibling to close takes the parked eps with
// it (or the endpoint's close does).
//
// Waiting (ucx_endpoint_peers.cpp). wait_fd() is an epoll set holding UCX's
// worker fd, the liveness set and an eventfd for our own leftover work. UCX's fd
// only fires after ucp_worker_arm() returned UCS_OK, and arming costs: on shared
// memory, every message that finds the receiver armed makes the sender signal
// it (a system call). A caller that never calls Endpoint::prepare_wait() is
// promised a live fd after any poll() that left room in its span, so poll()
// arms then (once per idle period: it costs each peer a signal per frame while
// we spin). Once the caller has called prepare_wait() — before every sleep, as
// the contract asks — poll() leaves arming to it, and busy polling stays free
// of signals.
//
// Not thread-safe: one thread at a time per endpoint (caps().thread_safe false).
#pragma once

#include <ucp/api/ucp.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/transport.hpp"
#include "transport/ucx/ucx_address.hpp"
#include "transport/ucx/ucx_context.hpp"
#include "transport/ucx/ucx_liveness.hpp"
#include "transport/ucx/ucx_peer.hpp"
#include "transport/ucx/ucx_requests.hpp"

namespace cohort::transport::ucx {

/// Receives kept posted for start messages.
inline constexpr std::size_t kRingSlots = 32;
/// Frames up to this size (header + payload) are copied into one buffer first.
inline constexpr std::size_t kInlineCopy = 256;
/// How long a closing endpoint or a disconnect() waits for its goodbye to leave.
inline constexpr std::chrono::milliseconds kByeGrace{1000};
/// How often (at most) poll() asks the liveness set about peer processes.
inline constexpr std::chrono::milliseconds kLivenessPeriod{20};

class UcxEndpoint final : public Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  ~UcxEndpoint() override;

  const Caps& caps() const override { return caps_; }
  Address address() const override { return address_; }
  Result<PeerId> connect(const Address& addr) override;
  void disconnect(PeerId peer) override;
  Result<Progress> send(PeerId peer, const Frame& frame, OpId op) override;
  Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) override;
  std::size_t poll(std::span<Event> out) override;
  Result<int> wait_fd() override { return wait_epoll_.get(); }

  /// Arms UCX's fd (see above). The first call switches poll() from arming it
  /// itself to leaving that to this call.
  bool prepare_wait() override;

  /// UCX's error callback for a peer's ep (ucp_err_handler_cb_t; arg: the Peer).
  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status);

 private:
  UcxEndpoint() = default;
  Status init(const EndpointOptions& options);

  // ---- peers (ucx_endpoint.cpp, ucx_endpoint_peers.cpp)
  Peer* live(PeerId id) const noexcept {
    return id < peers_.size() ? peers_[id].get() : nullptr;
  }
  Peer& add_peer();
  /// ucp_ep_create towards `worker` with our error handling.
  ucs_status_t create_ep(Peer& p, const std::string& worker);
  void watch(Peer& p);
  /// Starts failing `p` with `why` (first reason wins).
  void fail(Peer& p, Status why);
  /// Sends a goodbye (or a refusal) as an internal message; false when it cannot.
  bool send_control(Peer& p, Kind kind, std::uint32_t reason = 0);
  /// Closes the ep of failing peers, reports them once done, retires them.
  void advance_failures(EventSink& sink);
  /// One failing peer: true once it is reported and retired.
  bool finish_failure(Peer& p, EventSink& sink);
  /// Force-closes `p`'s ep (UCX ends the requests on it in a later progress).
  void close_ep(Peer& p);
  /// Whether another peer towards `p`'s remote worker still has an open ep.
  bool has_open_sibling(const Peer& p) const;
  /// Closes the eps parked for siblings of `worker` (the last sibling closed).
  void close_parked(const std::string& worker);
  /// Ends an accepted peer that the caller never saw (bad or refused hello).
  void drop_quietly(Peer& p, const std::string& why);
  /// Arms UCX's fd for a caller that may now sleep (or wakes it when it cannot).
  void arm_now();
  void reap_retired();
  /// Reports the ops of a failed peer that UCX never ended (its force close
  /// did not purge them) as failed; their memory stays ours until UCX lets go.
  void abandon_ops(Peer& p, EventSink& sink);
  /// Keep/drop ops in the lists of what is inside UCX (O(1), by index).
  void remember(SendOp* o);
  void forget(SendOp* o);
  void remember(RecvOp* r);
  void forget(RecvOp* r);
  /// Notes peer processes that exited (failed by bury_dead() in the next poll).
  void check_liveness();
  void bury_dead();
  Status peer_status(const Peer& p, ucs_status_t s) const;

  // ---- sending (ucx_endpoint.cpp)
  /// Sends `frame` (or, for internal messages, `owned` as the payload) as one
  /// message or split in two; kPending when UCX keeps part of it.
  Result<Progress> send_frame(Peer& p, Kind kind, const Frame& frame, std::size_t payload,
                              OpId op, bool user, std::string owned = {});
  /// Accounts for the result of one ucp_tag_send_nbx of `o`; false on error (`err` set).
  bool track(SendOp* o, ucs_status_ptr_t r, ucs_status_t& err);
  SendOp* new_send(Peer& p, OpId op, bool user);

  // ---- receiving (ucx_endpoint_poll.cpp)
  void post(Slot& s);
  void dispatch_ring(EventSink& sink);
  /// While closing: takes finished slots, answering goodbyes and noting acks.
  void take_goodbyes();
  void route(RxMsg* m, EventSink& sink);
  Peer* find_sender(std::uint64_t sender);
  void on_hello_start(RxMsg* m, EventSink& sink);
  /// Starts the internal payload receive of a split start message; false if malformed.
  bool prepare_payload(Peer& p, RxMsg* m);
  /// Posts the exact-tag receive of a payload into `dest` for `r`.
  Status post_payload(Peer& p, RecvOp* r, std::byte* dest, std::size_t size, std::uint32_t seq);
  bool deliverable(const Peer& p) const noexcept;
  bool head_ready(Peer& p) noexcept;
  void enqueue(Peer& p, RxMsg* m, EventSink& sink);
  void deliver_ready(EventSink& sink);
  /// Reports `m` (its peer can take it and the span has room).
  void deliver(Peer& p, RxMsg* m, EventSink& sink);
  void accept_hello(Peer& p, RxMsg* m, EventSink& sink);
  void finish_sends(EventSink& sink);
  void finish_recvs(EventSink& sink);
  void mark_ready(Peer& p);
  void lease(RxMsg* m) { leased_.push_back(m); }
  void recycle(RxMsg* m);
  bool has_work() const noexcept;
  void wake();

  std::shared_ptr<Context> context_;
  ucp_worker_h worker_ = nullptr;
  Caps caps_;
  Address address_;
  std::string address_binary_;  // sent in our hellos
  PeerAddress self_;
  std::string hello_;
  std::string log_name_;  // how logs name this endpoint
  std::mt19937_64 random_;

  std::vector<std::unique_ptr<Peer>> peers_;  // by PeerId; empty once gone
  std::vector<std::unique_ptr<Peer>> retired_;
  std::size_t parked_retired_ = 0;  // retired peers whose ep is parked (no work to do)
  std::unordered_map<std::uint64_t, PeerId> keys_;  // connector key -> accepted peer
  std::uint64_t cached_key_ = 0;
  PeerId cached_key_peer_ = kNoPeer;
  std::vector<PeerId> ready_, ready_work_;
  std::vector<PeerId> failing_, failing_work_;
  std::vector<PeerId> dead_;
  EventQueue overflow_;

  std::array<Slot, kRingSlots> ring_;
  std::size_t ring_head_ = 0;
  BufferPool slot_buffers_, payload_buffers_;
  Pool<SendOp> send_ops_;
  Pool<RecvOp> recv_ops_;
  Pool<RxMsg> msgs_;
  DoneLists done_;
  std::vector<SendOp*> sends_work_;
  std::vector<RecvOp*> recvs_work_;
  std::vector<SendOp*> sends_in_flight_;  // kPending sends, for abandon_ops()
  std::vector<RecvOp*> posted_recvs_;     // payload receives inside UCX (canceled at close)
  std::vector<RxMsg*> leased_;

  Liveness liveness_;
  UniqueFd wait_epoll_, wake_fd_;
  bool wake_armed_ = false;
  bool armed_ = false;
  bool caller_prepares_ = false;  // prepare_wait() has been called
  std::uint32_t polls_ = 0;
  std::chrono::steady_clock::time_point next_liveness_{};
  bool closing_ = false;  // the destructor runs
};

}  // namespace cohort::transport::ucx
