// daemon/poller.hpp — the daemon's epoll set.
//
// Every file descriptor the daemon waits on (the listening socket, the
// signalfd, client connections, task output pipes) is registered here under a
// 64-bit key: its source kind in the top byte and an id in the rest. Ids of
// connections and pipes are never reused, so an event that arrives for an
// object closed earlier in the same batch finds nothing and is skipped.
//
// Level-triggered throughout: a reader that stops early (to be fair to other
// clients) is simply woken again on the next wait.
//
// Ownership: the Poller owns the epoll fd only; callers own the fds they add
// and must remove() them before closing them. Single-threaded.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <span>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::daemon {

enum class Source : std::uint8_t {
  kListener = 1,
  kSignal = 2,
  kConn = 3,
  kPipe = 4,
  kTcpListener = 5,  // daemon-to-daemon listener (cluster.hpp)
  kLink = 6,         // a daemon-to-daemon link
};

constexpr std::uint64_t make_key(Source s, std::uint64_t id) noexcept {
  return (static_cast<std::uint64_t>(s) << 56) | (id & ((1ull << 56) - 1));
}
constexpr Source key_source(std::uint64_t key) noexcept {
  return static_cast<Source>(key >> 56);
}
constexpr std::uint64_t key_id(std::uint64_t key) noexcept {
  return key & ((1ull << 56) - 1);
}

class Poller {
 public:
  Status open();
  Status add(int fd, std::uint32_t events, std::uint64_t key);
  Status modify(int fd, std::uint32_t events, std::uint64_t key);
  void remove(int fd) noexcept;
  /// epoll_wait; 0 on timeout or EINTR. `timeout_ms` < 0 waits forever.
  Result<int> wait(std::span<epoll_event> out, int timeout_ms);

 private:
  UniqueFd ep_;
};

}  // namespace cohort::daemon
