#include "daemon/poller.hpp"

#include <cerrno>

namespace cohort::daemon {

Status Poller::open() {
  ep_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep_) return errno_status(Errc::kInternal, "epoll_create1", errno);
  return Status();
}

Status Poller::add(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return errno_status(Errc::kInternal, "epoll_ctl(ADD)", errno);
  return Status();
}

Status Poller::modify(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  if (::epoll_ctl(ep_.get(), EPOLL_CTL_MOD, fd, &ev) != 0)
    return errno_status(Errc::kInternal, "epoll_ctl(MOD)", errno);
  return Status();
}

void Poller::remove(int fd) noexcept {
  // Failure only means the fd was never added or is already gone; nothing to do.
  (void)::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

Result<int> Poller::wait(std::span<epoll_event> out, int timeout_ms) {
  int n = ::epoll_wait(ep_.get(), out.data(), static_cast<int>(out.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return errno_status(Errc::kInternal, "epoll_wait", errno);
  }
  return n;
}

}  // namespace cohort::daemon
