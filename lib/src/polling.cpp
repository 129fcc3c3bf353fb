// The Engine's polling: which endpoints each poll_once() looks at (measured
// once at open, then by traffic), reading the daemon, sending the transport
// choices, and sleeping. (progress.cpp handles what the polls bring.)
#include "lib/src/progress.hpp"

#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.hpp"

namespace cohort::lib {
namespace {
constexpr const char* kLog = "lib.progress";
}  // namespace

void Engine::plan_polling() {
  nslots_ = static_cast<std::uint8_t>(eps_.size());
  for (std::uint8_t i = 0; i < nslots_; ++i) {
    PollSlot& slot = slots_[i];
    slot = PollSlot{};
    slot.ep = eps_[i].endpoint.get();
    // An endpoint that cannot wake an epoll must be polled; one whose idle
    // poll() takes under 100 ns makes no system call (one costs 200+ ns here).
    // The best of 8 rounds, so a noisy machine cannot make a cheap one look dear.
    auto best = std::chrono::nanoseconds::zero();
    if (eps_[i].endpoint->caps().wait_fd) {
      // We call prepare_wait() before every block (block()); an endpoint
      // that polls strictly until it is first called (shm) would look dear.
      (void)eps_[i].endpoint->prepare_wait();
      best = std::chrono::nanoseconds::max();
      for (int round = 0; round < 8; ++round) {
        const auto t0 = Clock::now();
        for (int k = 0; k < 16; ++k) (void)poll_endpoint(i);
        best = std::min(best, std::chrono::nanoseconds(Clock::now() - t0) / 16);
      }
      slot.every_poll = best < std::chrono::nanoseconds(100);
    }
    COHORT_LOG_DEBUG(kLog) << "endpoint " << eps_[i].transport->name() << ": idle poll "
                           << best.count() << " ns, polled "
                           << (slot.every_poll ? "every time" : "while busy");
  }
  if (nslots_ == 1) slots_[0].every_poll = true;  // nothing else to look at
  for (std::uint8_t i = 0; i < nslots_; ++i) {
    if (slots_[i].every_poll) continue;
    auto fd = slots_[i].ep->wait_fd();
    if (!cold_epoll_) cold_epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    // Without the check it is still swept every kSweepEvery polls and after a sleep.
    if (!fd.is_ok() || !cold_epoll_ ||
        ::epoll_ctl(cold_epoll_.get(), EPOLL_CTL_ADD, *fd, &ev) != 0) {
      COHORT_LOG_WARN(kLog) << "endpoint " << eps_[i].transport->name()
                            << ": its wait fd cannot be watched; new traffic on it is noticed late";
    }
  }
}

void Engine::check_cold() {
  epoll_event evs[kMaxEndpoints];
  const int n = ::epoll_wait(cold_epoll_.get(), evs, static_cast<int>(kMaxEndpoints), 0);
  for (int k = 0; k < n; ++k) {
    const std::uint32_t i = evs[k].data.u32;
    if (i < nslots_) slots_[i].last_event = polls_;
  }
}

bool Engine::handle_polled(std::uint8_t i, std::size_t n) {
  PollSlot& slot = slots_[i];
  for (;;) {
    slot.last_event = polls_;
    for (std::size_t k = 0; k < n; ++k) handle(i, events_[k]);
    if (n < events_.size()) return true;
    n = slot.ep->poll(events_);
    if (n == 0) return true;
  }
}

void Engine::sweep_endpoints() {
  // prepare_wait() is how a caller says "look at everything before I sleep";
  // we do not sleep, and the poll after it disarms what it armed.
  for (int round = 0; round < 2; ++round) {
    for (std::uint8_t i = 0; i < nslots_; ++i) (void)slots_[i].ep->prepare_wait();
    (void)poll_once(true);
  }
}

bool Engine::poll_once_all(bool daemon_too) {
  bool any = false;
  const bool sweep = daemon_too || (polls_ & (kSweepEvery - 1)) == 0;
  if (!sweep && cold_epoll_ && (polls_ & (kCheckEvery - 1)) == 0) check_cold();
  for (std::uint8_t i = 0; i < nslots_; ++i) {
    const PollSlot& slot = slots_[i];
    if (!slot.every_poll && !sweep && slot.in_flight == 0 && polls_ - slot.last_event > kHotPolls)
      continue;
    any |= poll_endpoint(i);
  }
  // The daemon is rarely urgent: read it every kDaemonEvery-th poll (a
  // recv() each time, dearer than many idle shm polls) unless a caller waits
  // for its answer (a request, or a Resolve before a first send).
  if (daemon_too || calls_ > 0 || (polls_ & (kDaemonEvery - 1)) == 0) any |= poll_daemon();
  return any;
}

bool Engine::poll_daemon() {
  if (peers_.has_reports()) report_choices();
  bool got = link_->poll(*this);
  if (got && peers_.any_resolving()) peers_.collect_resolves(*link_, polls_);
  if (link_->lost() && peers_.any_resolving()) peers_.fail_resolves();
  return got;
}

void Engine::report_choices() {
  // One-way frames: nothing waits for the daemon here. A lost link drops them.
  for (const proto::TransportChoice& c : peers_.take_reports())
    if (link_->lost() || !link_->send(c).is_ok()) return;
}

bool Engine::relax(Clock::time_point now) noexcept {
  ::sched_yield();
  // A yield with nobody else to run returns in about a microsecond.
  return Clock::now() - now < std::chrono::microseconds(20);
}

bool Engine::block(std::optional<Clock::time_point> deadline) {
  // Every source of work has an fd here (the transport signals its internal
  // work through its wait fd), so a long sleep misses nothing; the cap only
  // bounds how late a peer's grace period is noticed.
  int timeout_ms = can_sleep_ ? 1000 : 1;
  if (deadline) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    timeout_ms = static_cast<int>(std::clamp<long long>(left, 0, timeout_ms));
  }
  // Transports that wake only a receiver that said it may sleep (shm) arm
  // that wake-up here; one that finds work meanwhile says so, and we poll.
  bool work = false;
  for (std::uint8_t i = 0; i < nslots_; ++i) work |= !slots_[i].ep->prepare_wait();
  int n = 0;
  if (work) {
    n = 1;
  } else if (epoll_) {
    epoll_event evs[8];
    n = ::epoll_wait(epoll_.get(), evs, 8, timeout_ms);
  } else if (timeout_ms > 0) {
    ::usleep(200);
  }
  const bool any = poll_once(true);
  return n != 0 || any || !can_sleep_;
}

}  // namespace cohort::lib
