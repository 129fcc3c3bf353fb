// transport/shm/shm_endpoint.hpp — the shm Endpoint: a control socket, one
// Peer per pair (each with its own shared segment), and one epoll set, the
// wait_fd(), watching the control socket, every pair's doorbell eventfd,
// every peer process's pidfd and an internal eventfd.
//
// poll() hands out events left from the last call, then services every peer
// (shm_peer.hpp): plain loads and stores on shared memory, no system call on
// the data path. The epoll set is looked at (one epoll_wait(…, 0)) only every
// 1024th poll, after a wake-up, or every 16th for callers that do not use
// prepare_wait() (below): that is how connections, answers and dead peers are
// noticed; none of them is urgent to the microsecond.
//
// Sleeping (shm_doorbell.hpp): peers ring our doorbell only when our "may
// sleep" flag is set. Two ways to set it:
//  * prepare_wait(): the caller says it is about to block on wait_fd(). We
//    drain the doorbells, set the flags, re-check every peer and return false
//    if anything is there. The next poll() clears the flags again, so while
//    the caller spins on poll() nobody rings and nothing makes a system call.
//  * callers that never call prepare_wait() (the contract allows blocking
//    after any poll() that returned fewer events than the span) get the flags
//    set at the end of every such poll(), after the same re-check: correct,
//    but each frame then costs the sender an eventfd write and the receiver
//    a read. The first call to prepare_wait() switches the endpoint to the
//    first way for good.
//
// PeerIds index peers_ and are never reused; a lost peer leaves a null slot so
// that later sends say kPeerLost rather than "unknown". Not thread-safe.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/shm/shm_address.hpp"
#include "transport/shm/shm_cma.hpp"
#include "transport/shm/shm_handshake.hpp"
#include "transport/shm/shm_peer.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::shm {

class ShmEndpoint final : public Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  ~ShmEndpoint() override;

  const Caps& caps() const override { return caps_; }
  Address address() const override { return address_; }
  Result<PeerId> connect(const Address& addr) override;
  void disconnect(PeerId peer) override;
  Result<Progress> send(PeerId peer, const Frame& frame, OpId op) override;
  Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) override;
  std::size_t poll(std::span<Event> out) override;
  Result<int> wait_fd() override { return epoll_.get(); }
  bool prepare_wait() override;

 private:
  ShmEndpoint() = default;

  Peer* live(PeerId id) const noexcept {
    return id < peers_.size() ? peers_[id].get() : nullptr;
  }
  PeerId add_peer(std::unique_ptr<Peer> peer);
  Status watch(int fd, std::uint64_t tag);
  void unwatch(int fd) noexcept;
  /// One epoll_wait(…, 0): doorbells drained, control messages handled, dead
  /// peers marked. Returns false when it found nothing but doorbells.
  bool check_fds();
  void handle_control();
  void on_connect(ControlMessage& m);
  void on_accept(ControlMessage& m);
  void send_handshake(Peer& p);
  /// kPeerAccepted for accepted peers, while the sink has room.
  void announce_accepted(EventSink& sink);
  void service_all(EventSink& sink);
  /// Nothing for the endpoint itself to do (only its peers may have work):
  /// poll() may take its short way.
  bool calm() const noexcept {
    return !(wake_armed_ | armed_ | check_next_ | strict_ | active_dirty_) &&
           handshakes_waiting_ == 0 && pending_accept_.empty() && overflow_.empty() &&
           retired_.empty();
  }
  /// The full poll: wake-ups, the epoll look, handshakes, arming.
  [[gnu::noinline]] std::size_t poll_all(std::span<Event> out);
  /// Pending operations fail, kPeerDown if the user knew the peer, then the
  /// peer is retired (its memory lives until the next poll).
  void teardown(Peer& p, EventSink& sink);
  void retire(PeerId id);
  /// Sets every "may sleep" flag, then re-checks; true when there is work.
  bool arm_and_recheck();
  void disarm_all() noexcept;
  /// Makes wait_fd() readable until the next poll().
  void wake();

  Caps caps_;
  Address address_;
  std::string hello_;
  CopyMode mode_ = CopyMode::kAuto;
  ShmAddress self_;
  ControlSocket control_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;
  UniqueFd self_pidfd_;  // sent to peers so that they can watch us
  bool wake_armed_ = false;
  bool strict_ = true;       // no prepare_wait() yet: arm after every short poll
  bool armed_ = false;       // prepare_wait() set the flags; the next poll clears them
  bool check_next_ = false;  // look at the epoll set in the next poll
  std::uint32_t polls_ = 0;

  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<Peer>> retired_;  // freed at the next poll()
  std::vector<Peer*> active_;                   // live peers, serviced by poll()
  std::size_t rotate_ = 0;                      // where servicing starts, for fairness
  bool active_dirty_ = false;
  std::vector<PeerId> pending_accept_;          // accepted, kPeerAccepted not given yet
  std::size_t handshakes_waiting_ = 0;          // peers with handshake_retry set
  EventQueue overflow_;
  std::array<epoll_event, 64> epoll_events_{};
};

}  // namespace cohort::transport::shm
