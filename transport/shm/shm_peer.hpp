// transport/shm/shm_peer.hpp — one peer of an shm endpoint: the shared segment
// of the pair and everything this side does with it.
//
// The endpoint (shm_endpoint.hpp) owns peers, runs the handshake and the epoll
// set and turns a broken pair into events; a Peer moves the bytes:
//  * sending: an eager frame is copied into the peer's ring at once (send()
//    says kDone); a large one is announced in the ring and stays pending until
//    the receiver reports its transfer done (shm_cma.hpp), meanwhile helping
//    with the copy from service(). What the ring has no room for waits in
//    `backlog_`, in order, and leaves from service().
//  * receiving: service() hands out ring records in place; an announced frame
//    stops the reading until receive_payload() has moved its payload.
//  * ending: a Peer notices the other side closed (its closed flag) or died
//    (the endpoint saw its pidfd fire, or CMA said ESRCH) and says so through
//    closing()/reason(); the endpoint then fails what is pending and reports
//    kPeerDown. leave() tells the other side that we are gone.
//
// Side 0 created the segment (it connected), side 1 accepted it. This side
// writes ring 1-s and reads ring s; its own control words are SideBlock s.
// Not thread-safe: used by the endpoint's one thread.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/shm/shm_cma.hpp"
#include "transport/shm/shm_doorbell.hpp"
#include "transport/shm/shm_ring.hpp"
#include "transport/shm/shm_segment.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::shm {

/// A send that has not finished: waiting for ring room, or announced and
/// waiting for the receiver. Borrows the caller's header and payload buffers;
/// the iovec array itself is copied.
struct PendingSend {
  OpId op = 0;
  bool eager = true;
  std::uint64_t seq = 0;  // announced frames: the transfer number
  std::uint64_t size = 0;
  std::span<const std::byte> header;
  std::vector<iovec> iov;
};

/// A FIFO of PendingSend whose entries (and their iovec storage) are reused.
class PendingQueue {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  PendingSend& front() noexcept { return slots_[head_]; }
  /// A fresh entry at the back (its iov cleared, capacity kept).
  PendingSend& push();
  void pop() noexcept;

 private:
  std::vector<PendingSend> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

class Peer {
 public:
  struct Config {
    PeerId id = kNoPeer;
    int side = 0;
    std::string remote;  // for messages: the address, or the peer's socket name
    CopyMode mode = CopyMode::kAuto;
  };
  Peer(const Config& config, Segment segment, Doorbell bell);
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  PeerId id() const noexcept { return id_; }
  int side() const noexcept { return side_; }
  const std::string& remote() const noexcept { return remote_; }
  const Segment& segment() const noexcept { return seg_; }
  Doorbell& bell() noexcept { return bell_; }

  // ---- handshake state, driven by the endpoint ----
  bool visible = false;         // the user knows this peer (connect(), or kPeerAccepted given)
  bool accepted = false;        // side 0: the acceptor answered; side 1: our answer left
  bool handshake_retry = false; // our kConnect/kAccept found the peer's queue full
  UniqueFd pending_fd;          // side 0: the segment's memfd until kConnect leaves
  pid_t pid = 0;                // the peer's pid in our namespace, for CMA (0: unknown)
  UniqueFd pidfd;               // fires when the peer's process ends
  std::uint64_t token = 0;
  std::string socket_name;      // the peer's control socket, for the handshake

  /// Our side can write frames (side 1 only after its kAccept left: the
  /// connector must learn our pid before it sees a frame from us).
  void set_tx_ready() noexcept { tx_ready_ = true; }

  Result<Progress> send(const Frame& frame, OpId op);
  Result<Progress> receive_payload(std::span<std::byte> dest, OpId op);
  /// All progress on this pair: releases what the last poll handed out,
  /// completes and helps sends, moves a payload, hands out frames while the
  /// sink has room. Sets closing() when the pair broke or the peer left.
  void service(EventSink& sink);
  /// Whether service() would do something now; seq_cst loads, for the re-check
  /// after the doorbell is armed.
  bool has_work() noexcept;
  /// Whether service() has nothing to do unless a frame arrived (rx_ready()):
  /// nothing in flight, no payload moving, nothing handed out to release.
  /// Whether the peer left is the endpoint's regular full poll's to notice.
  bool quiet() const noexcept {
    return visible && !closing_ && rx_state_ == Rx::kFrames && inflight_.empty() &&
           backlog_.empty() && rx_.all_released();
  }
  /// A frame is published at the read position (one load of shared memory).
  bool rx_ready() const noexcept { return rx_.ready(); }

  bool closing() const noexcept { return closing_; }
  const Status& reason() const noexcept { return reason_; }
  /// Stops the pair (first reason wins); the endpoint tears it down.
  void close(Status why);
  /// The peer's process ended (its pidfd fired).
  void mark_dead();
  /// The other side closed or its process ended.
  bool peer_left() const noexcept {
    return dead_ || seg_.side(1 - side_).closed.load(std::memory_order_acquire) != 0;
  }
  /// The other side's process is still there to be read from (CMA).
  bool peer_alive_for_cma() const noexcept;
  /// Ends every pending operation with `status` (sends: kSendDone; a payload
  /// being received: kRecvDone), in order.
  void fail_pending(EventSink& sink, const Status& status);
  /// Tells the other side we are gone: our closed flag, then its doorbell.
  void leave() noexcept;

 private:
  enum class Rx : std::uint8_t { kFrames, kAnnounced, kTransfer };

  bool write_eager(std::span<const std::byte> header, std::span<const iovec> iov,
                   std::uint64_t size) noexcept;
  bool write_announce(std::span<const std::byte> header, std::span<const iovec> iov,
                      std::uint64_t size, std::uint64_t seq) noexcept;
  void queue(const Frame& frame, OpId op, bool eager, std::uint64_t size);
  void flush_backlog(EventSink& sink);
  void progress_sends(EventSink& sink);
  void read_frames(EventSink& sink);
  /// kDone/kFailed of the transfer: the liveness check, done_seq, the op.
  Result<Progress> finish_transfer(Inbound::Step step);
  Status lost(std::string what) const;

  PeerId id_;
  int side_;
  std::string remote_;
  CopyMode mode_;
  Segment seg_;
  Doorbell bell_;
  bool closing_ = false;
  bool dead_ = false;
  bool tx_ready_ = false;
  Status reason_;

  // Sending (ring 1-s, transfers into side 1-s).
  RingWriter tx_;
  Outbound out_;
  std::uint64_t their_eager_ = 0;
  std::uint64_t tx_seq_ = 0;
  PendingQueue backlog_;   // not yet in the ring
  PendingQueue inflight_;  // announced, waiting for done_seq

  // Receiving (ring s, transfers into side s).
  RingReader rx_;
  Rx rx_state_ = Rx::kFrames;
  Inbound in_;
  std::uint64_t my_eager_ = 0;
  std::uint64_t rx_seq_ = 0;
  std::uint64_t ann_size_ = 0;
  std::vector<iovec> ann_iov_;
  OpId recv_op_ = 0;
  bool cma_denied_ = false;
};

}  // namespace cohort::transport::shm
