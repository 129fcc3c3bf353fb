// tests/multiproc/mp_fixture.hpp — the fixture of the multi-process tests.
//
// Each test gets its own TempDir and cohortd (tests/support harness), and
// COHORT_DIR points at it, so that the test process itself can enroll as a
// hand-started task (session()) and spawn the mp_task_* programs, which report
// back by messages and exit codes. At teardown the session leaves, the daemon
// log must hold no undeclared error, and the harness kills whatever is left.
//
// Every wait is bounded: messages through must_recv() (30 s), exits through
// wait_exits(). Calls that have no timeout (wait_all, a large blocking send)
// are covered by a watchdog that, if the test is still running after 90 s,
// says so and kills the daemon, so that a hang becomes a failure with a reason
// rather than a ctest timeout.
//
//   class MpRing : public cohort::mptest::MultiprocTest {};
//   TEST_F(MpRing, EightTasks) {
//     auto tids = spawn_ok(bin("mp_task_ring"), {"3"}, 8);
//     cohort::Message m = must_recv(tids[0], kTagReport);
//   }
#pragma once

#include <gtest/gtest.h>

#include <cohort/cohort.hpp>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"
#include "tests/support/daemon_harness.hpp"

namespace cohort::mptest {

using cohort::testing::bin;

/// How long a test waits for one message or one set of exits.
inline constexpr std::chrono::seconds kTestWait{30};
/// The tag the fixture asks exit notifications on (SpawnOptions::exit_notify_tag).
inline constexpr int kTagExit = 90;

/// If not disarmed within `limit`, reports the hang and SIGKILLs `victim`'s
/// process group (the daemon), then ends the test process if it stays stuck.
class Watchdog {
 public:
  Watchdog() = default;
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { disarm(); }

  void arm(std::chrono::seconds limit, pid_t victim) {
    disarm();
    done_ = false;
    thread_ = std::thread([this, limit, victim] {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
      std::fprintf(stderr,
                   "watchdog: the test is still running after %lld s: a call that cannot "
                   "time out (wait, wait_all, wait_any, a blocking send or recv) hung; "
                   "killing the daemon (pid %d) to unblock it\n",
                   static_cast<long long>(limit.count()), static_cast<int>(victim));
      if (victim > 0) {
        ::kill(-victim, SIGKILL);
        ::kill(victim, SIGKILL);
      }
      if (cv_.wait_for(lock, std::chrono::seconds(10), [this] { return done_; })) return;
      std::fprintf(stderr, "watchdog: still stuck 10 s after killing the daemon; exiting\n");
      std::fflush(stderr);
      ::_exit(1);
    });
  }
  void disarm() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = true;
  std::thread thread_;
};

/// "exit code 3" / "killed by signal 6 (Aborted)".
inline std::string describe_exit(const Notification& n) {
  if (n.signal != 0)
    return "killed by signal " + std::to_string(n.signal) + " (" + ::strsignal(n.signal) + ")";
  return "exit code " + std::to_string(n.exit_code);
}

/// Messages of a failed spawn, one per line.
inline std::string describe_spawn(const std::vector<SpawnOutcome>& outcomes) {
  std::string s;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i].ok()) continue;
    s += "  instance " + std::to_string(i) + ": " + std::string(errc_name(outcomes[i].error)) +
         ": " + outcomes[i].message + "\n";
  }
  return s;
}

/// recv_for(source, tag, timeout); throws (failing the test) on timeout.
inline Message must_recv(Session& s, Tid source, int tag,
                         std::chrono::milliseconds timeout = kTestWait) {
  std::optional<Message> m = s.recv_for(source, tag, timeout);
  if (!m)
    throw std::runtime_error("no message from " +
                             (source == kAnyTid ? std::string("any task")
                                                : "tid " + std::to_string(source)) +
                             " with tag " + (tag == kAnyTag ? "any" : std::to_string(tag)) +
                             " within " + std::to_string(timeout.count()) + " ms");
  return std::move(*m);
}

/// Poll probe() until a matching message is there (a deadline, no fixed sleep).
inline MessageInfo must_probe(Session& s, Tid source, int tag,
                              std::chrono::milliseconds timeout = kTestWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (std::optional<MessageInfo> info = s.probe(source, tag)) return *info;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("probe found no message from tid " + std::to_string(source) +
                               " with tag " + std::to_string(tag) + " within " +
                               std::to_string(timeout.count()) + " ms");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

/// Receive kTaskExit notifications with `tag` until every tid in `tids` is
/// reported; throws on timeout, naming the tasks still missing.
inline std::map<Tid, Notification> wait_exits(Session& s, int tag, std::span<const Tid> tids,
                                              std::chrono::milliseconds timeout = kTestWait) {
  std::map<Tid, Notification> exits;
  const std::set<Tid> wanted(tids.begin(), tids.end());
  std::size_t found = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (found < wanted.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<Message> m;
    if (left.count() > 0) m = s.recv_for(kAnyTid, tag, left);
    if (!m) {
      std::string missing;
      for (Tid t : tids)
        if (!exits.count(t)) missing += " " + std::to_string(t);
      throw std::runtime_error("no exit notification within " + std::to_string(timeout.count()) +
                               " ms for tid(s)" + missing);
    }
    Notification n = Session::decode_notification(*m);
    if (n.kind != NotifyKind::kTaskExit)
      throw std::runtime_error("notification of another kind on the exit tag");
    if (wanted.count(n.tid) && !exits.count(n.tid)) ++found;
    exits[n.tid] = n;  // others (tasks of another spawn) are returned too
  }
  return exits;
}

class MultiprocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<cohort::testing::TempDir>();
    auto d = cohort::testing::DaemonProcess::start(dir_->path());
    ASSERT_TRUE(d.is_ok()) << "cohortd did not start: " << d.status().to_string();
    daemon_ = std::move(d).value();
    ::setenv("COHORT_DIR", dir_->path().c_str(), 1);
    watchdog_.arm(std::chrono::seconds(90), daemon_->pid());
  }

  void TearDown() override {
    session_.reset();  // leave before the daemon goes
    watchdog_.disarm();
    if (daemon_) {
      std::vector<std::string> errors = daemon_->unexpected_errors();
      std::string all;
      for (const std::string& e : errors) all += "  " + e + "\n";
      EXPECT_TRUE(errors.empty()) << "unexpected errors in the daemon's log:\n" << all;
    }
    daemon_.reset();
    dir_.reset();
    ::unsetenv("COHORT_DIR");
  }

  /// This test process as a hand-started task of the VM (enrolls on first use).
  Session& session() {
    if (!session_) session_ = std::make_unique<Session>();
    return *session_;
  }
  void leave() { session_.reset(); }
  cohort::testing::DaemonProcess& daemon() { return *daemon_; }
  const std::string& dir() const { return dir_->path(); }

  /// Spawn `count` instances (with exit notifications on kTagExit); throws unless all started.
  std::vector<Tid> spawn_ok(const std::string& program, const std::vector<std::string>& args,
                            int count, SpawnOptions options = {}) {
    if (!options.exit_notify_tag) options.exit_notify_tag = kTagExit;
    std::vector<SpawnOutcome> out = session().spawn(program, args, count, options);
    if (out.size() != static_cast<std::size_t>(count))
      throw std::runtime_error("spawn of " + program + " returned " + std::to_string(out.size()) +
                               " outcomes for " + std::to_string(count) + " instances");
    std::string failed = describe_spawn(out);
    if (!failed.empty()) throw std::runtime_error("spawn of " + program + " failed:\n" + failed);
    std::vector<Tid> tids;
    for (const SpawnOutcome& o : out) tids.push_back(o.tid);
    return tids;
  }

  Message must_recv(Tid source, int tag, std::chrono::milliseconds timeout = kTestWait) {
    return cohort::mptest::must_recv(session(), source, tag, timeout);
  }
  std::map<Tid, Notification> wait_exits(std::span<const Tid> tids, int tag = kTagExit) {
    return cohort::mptest::wait_exits(session(), tag, tids);
  }
  /// Every task exited 0; a task that exited kExitUnsupported makes *unsupported true.
  static void expect_clean_exits(const std::map<Tid, Notification>& exits,
                                 bool* unsupported = nullptr) {
    for (const auto& [tid, n] : exits) {
      if (n.signal == 0 && n.exit_code == kExitUnsupported && unsupported) {
        *unsupported = true;
        continue;
      }
      EXPECT_TRUE(n.exit_code == 0 && n.signal == 0)
          << "task " << tid << ": " << describe_exit(n) << " (its output, above, says why)";
    }
  }

 private:
  std::unique_ptr<cohort::testing::TempDir> dir_;
  std::unique_ptr<cohort::testing::DaemonProcess> daemon_;
  std::unique_ptr<Session> session_;
  Watchdog watchdog_;
};

}  // namespace cohort::mptest
