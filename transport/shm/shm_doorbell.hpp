// transport/shm/shm_doorbell.hpp — waking a peer that may be asleep, and only then.
//
// Each side of a pair has a doorbell: an eventfd in its endpoint's epoll set
// (so the endpoint's wait_fd() becomes readable when it rings) and a "may
// sleep" flag, SideBlock::sleeping, in the pair's segment. The connecting side
// creates both eventfds and hands the accepting side both (SCM_RIGHTS), so
// either side can ring the other from the first frame on.
//
// The protocol, which loses no wake-up and costs no system call while both
// sides are busy:
//   sender:   publish (a seq_cst store: ring stamp, head, slot counter, ...);
//             load the peer's flag (seq_cst); if set, exchange it to 0 and,
//             if this call cleared it, write the peer's eventfd.
//   receiver: before sleeping: drain its eventfd; store its flag = 1 (seq_cst);
//             re-check everything a peer can publish (rings, transfers,
//             completions, closed flags); sleep only if nothing is there.
// Either the receiver's re-check sees the publication, or the sender's load
// sees the flag and rings (both are seq_cst, so they cannot both miss). A
// ring that the receiver did not need leaves the eventfd readable: one
// spurious wake-up, never a lost one. The flag is cleared by the sender that
// rings (so several senders ring once) and by the receiver when it polls
// again (so a busy receiver is not rung).
//
// The endpoint decides when to arm (shm_endpoint.hpp: prepare_wait(), or
// after each short poll() for callers that never call it).
//
// Threading: each side uses its own Doorbell from one thread.
#pragma once

#include <cstdint>

#include "base/fd.hpp"
#include "transport/shm/shm_segment.hpp"

namespace cohort::transport::shm {

class Doorbell {
 public:
  /// `mine`/`theirs`: the sleeping flags of this side and of the peer;
  /// `my_fd` is watched by this endpoint, `their_fd` rings the peer.
  void attach(Word<std::uint32_t>* mine, Word<std::uint32_t>* theirs, UniqueFd my_fd,
              UniqueFd their_fd) noexcept;

  int fd() const noexcept { return my_fd_.get(); }
  /// The peer's eventfd (side 0 hands it over in the handshake).
  int their_fd() const noexcept { return their_fd_.get(); }

  /// After a seq_cst publication the peer may be waiting for: wakes it if it
  /// said it may sleep. One load and nothing else while the peer is busy.
  void notify() noexcept {
    if (theirs_->load(std::memory_order_seq_cst) == 0) [[likely]]
      return;
    if (theirs_->exchange(0) != 0) ring();
  }
  /// Wakes the peer whatever its flag says (closing).
  void ring() noexcept;

  /// Says "this side may sleep" (seq_cst); the caller then re-checks. A flag
  /// that we set and find cleared means a peer rang since: the eventfd is
  /// drained first, so that it is readable only for rings still to come.
  void arm() noexcept {
    if (mine_->load(std::memory_order_seq_cst) != 0) return;
    if (armed_) drain();
    mine_->store(1, std::memory_order_seq_cst);
    armed_ = true;
  }
  /// Busy again: peers need not ring.
  void disarm() noexcept {
    armed_ = false;
    if (mine_->load(std::memory_order_relaxed) != 0) mine_->store(0, std::memory_order_relaxed);
  }
  /// Empties this side's eventfd (after epoll said it was readable).
  void drain() noexcept;

 private:
  Word<std::uint32_t>* mine_ = nullptr;
  Word<std::uint32_t>* theirs_ = nullptr;
  UniqueFd my_fd_;
  UniqueFd their_fd_;
  bool armed_ = false;  // we set our flag and have not cleared it since
};

}  // namespace cohort::transport::shm
