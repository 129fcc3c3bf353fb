// transport/ucx/ucx_liveness.hpp — notices that a peer process on this host died.
//
// UCX 1.13 reports a dead TCP peer (the socket closes) but not a dead
// shared-memory peer: its FIFO simply stops moving, and sends to it or
// receives from it would wait forever. For every peer whose address says it
// runs on this host in our pid namespace, the endpoint opens a pidfd
// (pidfd_open(2), Linux 5.3) and keeps it in one epoll set. A pidfd becomes
// readable when its process exits, so:
//  * collect() (one epoll_wait(…, 0)) names the peers whose process is gone;
//    the endpoint calls it every few milliseconds of polling and before it
//    sleeps, never per message;
//  * fd() is part of the endpoint's wait fd, so a caller asleep in epoll wakes
//    when a peer dies, not at its next timeout.
// The process start time in the address guards against a pid reused by another
// process before we looked. Peers elsewhere, or when pidfds are unavailable,
// rely on UCX's own error reporting and on the peer's goodbye message.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::ucx {

class Liveness {
 public:
  enum class Watch : std::uint8_t {
    kWatching,     // the process is alive; collect() will name it when it exits
    kGone,         // the process has already exited (or the pid is someone else's now)
    kUnavailable,  // cannot watch it here (no pidfd support); rely on UCX
  };

  /// Creates the epoll set; kIoError when that fails.
  Status open();
  int fd() const noexcept { return epoll_.get(); }

  Watch watch(PeerId peer, std::uint32_t pid, std::uint64_t start_time);
  void unwatch(PeerId peer);
  /// Appends the peers whose process exited since they were watched, and stops
  /// watching them. Non-blocking.
  void collect(std::vector<PeerId>& dead);
  bool empty() const noexcept { return fds_.empty(); }

 private:
  UniqueFd epoll_;
  std::unordered_map<PeerId, UniqueFd> fds_;
};

}  // namespace cohort::transport::ucx
