#include "transport/ucx/ucx_liveness.hpp"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "base/log.hpp"
#include "transport/ucx/ucx_address.hpp"

namespace cohort::transport::ucx {

namespace {

constexpr const char* kLog = "transport.ucx";

int pidfd_open(std::uint32_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

Status Liveness::open() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return errno_status(Errc::kIoError, "epoll_create1 (ucx liveness)", errno);
  return Status();
}

Liveness::Watch Liveness::watch(PeerId peer, std::uint32_t pid, std::uint64_t start_time) {
  UniqueFd fd(pidfd_open(pid));
  if (!fd) {
    int err = errno;
    if (err == ESRCH) return Watch::kGone;
    COHORT_LOG_DEBUG(kLog) << "cannot watch process " << pid << ": pidfd_open: "
                           << errno_status(Errc::kIoError, "pidfd_open", err).message();
    return Watch::kUnavailable;
  }
  // The pidfd now pins the process it names; make sure it is the one that published the address.
  auto started = process_start_time(pid);
  if (!started.is_ok() || (start_time != 0 && *started != start_time)) return Watch::kGone;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = peer;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    COHORT_LOG_DEBUG(kLog) << "epoll_ctl(pidfd) failed; process " << pid << " is not watched";
    return Watch::kUnavailable;
  }
  fds_[peer] = std::move(fd);
  return Watch::kWatching;
}

void Liveness::unwatch(PeerId peer) {
  auto it = fds_.find(peer);
  if (it == fds_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.get(), nullptr);
  fds_.erase(it);
}

void Liveness::collect(std::vector<PeerId>& dead) {
  if (fds_.empty()) return;
  std::array<epoll_event, 32> events;
  int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
  for (int i = 0; i < n; ++i) {
    auto peer = static_cast<PeerId>(events[i].data.u64);
    dead.push_back(peer);
    unwatch(peer);
  }
}

}  // namespace cohort::transport::ucx
