#include "launcher/job.hpp"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>

namespace cohort::cli {
namespace {

// The tag of our exit notifications. The `cohort` command is a tool, not a task:
// nothing else sends it messages, so any fixed tag will do.
constexpr int kExitTag = 0x636f68;  // "coh"

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_stop_count{0};

extern "C" void on_stop_signal(int sig) {
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, sig);
  g_stop_count.fetch_add(1);
}

using Clock = std::chrono::steady_clock;

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking call should come back with EINTR so we notice sooner.
  sa.sa_flags = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int stop_signal() { return g_stop_signal.load(); }
int stop_signal_count() { return g_stop_count.load(); }

Status Job::start(const JobSpec& spec) {
  SpawnOptions o;
  o.env = spec.env;
  o.cwd = spec.cwd;
  o.host = spec.host;
  o.map_by = spec.map_by;
  o.per_host = spec.per_host;
  o.bind_to = spec.bind_to;
  o.exit_notify_tag = kExitTag;
  o.on_output = [this](Tid t, OutputStream s, std::string_view line) { deliver(t, s, line); };

  std::vector<SpawnOutcome> outcomes;
  try {
    outcomes = session_.spawn(spec.program, spec.args, spec.count, o);
  } catch (const Error& e) {
    return Status(e.errc(), e.what());
  }
  tids_.assign(static_cast<std::size_t>(spec.count), kNoTid);
  ended_.assign(static_cast<std::size_t>(spec.count), true);
  Status first_failure;
  for (std::size_t r = 0; r < outcomes.size() && r < tids_.size(); ++r) {
    const SpawnOutcome& out = outcomes[r];
    if (out.ok()) {
      tids_[r] = out.tid;
      ended_[r] = false;
      rank_by_tid_[out.tid] = static_cast<int>(r);
    } else if (first_failure.is_ok()) {
      first_failure = Status(out.error, out.message.empty() ? std::string(errc_message(out.error))
                                                            : out.message);
    }
  }
  if (first_failure.is_ok() && outcomes.size() < tids_.size())
    first_failure = Status(Errc::kInternal, "the daemon started " +
                                                std::to_string(outcomes.size()) + " of " +
                                                std::to_string(spec.count) + " tasks");
  spawned_ = true;
  for (const Early& e : early_) deliver(e.tid, e.stream, e.line);
  early_.clear();
  if (!first_failure.is_ok()) {
    // Half a job is no job: take down the instances that did start.
    terminate(std::chrono::seconds(2));
  }
  return first_failure;
}

void Job::deliver(Tid t, OutputStream s, std::string_view line) {
  if (!spawned_) {
    // The library may hand us output while spawn() is still waiting for its reply;
    // ranks are known only once it returns.
    early_.push_back({t, s, std::string(line)});
    return;
  }
  auto it = rank_by_tid_.find(t);
  sink_(it == rank_by_tid_.end() ? -1 : it->second, s, line);
}

std::size_t Job::remaining() const {
  std::size_t n = 0;
  for (bool e : ended_) n += e ? 0 : 1;
  return n;
}

void Job::pump(std::chrono::milliseconds timeout) {
  std::optional<Message> m = session_.recv_for(kAnyTid, kExitTag, timeout);
  if (!m) return;
  Notification n = Session::decode_notification(*m);
  if (n.kind != NotifyKind::kTaskExit) return;
  auto it = rank_by_tid_.find(n.tid);
  if (it == rank_by_tid_.end() || ended_[static_cast<std::size_t>(it->second)]) return;
  ended_[static_cast<std::size_t>(it->second)] = true;
  ends_.push_back({it->second, n.tid, n.exit_code, n.signal});
}

void Job::wait(int* signal) {
  *signal = 0;
  while (remaining() > 0) {
    if (int sig = stop_signal()) {
      *signal = sig;
      return;
    }
    pump(std::chrono::milliseconds(100));
  }
  // One more turn of progress, without waiting, for output that is already here.
  (void)session_.probe(kAnyTid, kExitTag);
}

bool Job::wait_for(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (remaining() > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pump(std::min(left, std::chrono::milliseconds(100)));
  }
  return true;
}

void Job::kill_all(int sig) {
  for (std::size_t r = 0; r < tids_.size(); ++r) {
    if (ended_[r]) continue;
    try {
      session_.kill(tids_[r], sig);
    } catch (const Error&) {
      // Gone between our look and the kill: its exit notification is on its way.
    }
  }
}

void Job::terminate(std::chrono::milliseconds grace) {
  if (remaining() == 0) return;
  kill_all(SIGTERM);
  if (wait_for(grace)) return;
  kill_all(SIGKILL);
  (void)wait_for(std::chrono::seconds(5));
}

}  // namespace cohort::cli
