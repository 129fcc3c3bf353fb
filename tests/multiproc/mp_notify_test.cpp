// Exit notifications: a task that crashes (SIGABRT, SIGSEGV), is killed or
// exits non-zero is reported to the task that asked with notify(); the
// notification names the task and how it ended; the task is then gone from
// tasks() and not left a zombie.
#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

constexpr int kWatchTag = 60;

/// The state letter of /proc/PID/stat ('Z' for a zombie), or '\0' when gone.
char process_state(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return '\0';
  std::size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

class MpNotify : public MultiprocTest {
 protected:
  struct Ended {
    Tid tid;
    Notification note;
  };

  /// Spawn mp_task_crash ACTION (without spawn-time notification), watch it
  /// with notify(), let it act, and return the notification it caused.
  Ended run_crash(const std::vector<std::string>& args, int signal_to_send = 0) {
    Session& s = session();
    std::vector<SpawnOutcome> out = s.spawn(bin("mp_task_crash"), args, 1);
    if (out.size() != 1 || !out[0].ok())
      throw std::runtime_error("spawn of mp_task_crash failed:\n" + describe_spawn(out));
    const Tid tid = out[0].tid;
    Tid watch[] = {tid};
    s.notify(NotifyKind::kTaskExit, kWatchTag, watch);

    Message ready = must_recv(tid, kTagReady);
    pid_ = ready.unpack<std::int32_t>();
    bool listed = false;
    for (const TaskInfo& t : s.tasks())
      if (t.tid == tid) {
        listed = true;
        EXPECT_EQ(t.pid, pid_) << "tasks() gives another pid than the task's getpid()";
        EXPECT_EQ(t.parent, s.tid());
      }
    EXPECT_TRUE(listed) << "a running task is missing from tasks()";

    if (signal_to_send != 0)
      s.kill(tid, signal_to_send);
    else
      s.send(tid, kTagGo, Message());

    Message m = must_recv(kAnyTid, kWatchTag);
    EXPECT_EQ(m.tag(), kWatchTag);
    EXPECT_TRUE(tid::is_daemon(m.source()))
        << "a notification's source is a daemon's tid, not " << m.source();
    Notification n = Session::decode_notification(m);
    EXPECT_EQ(n.kind, NotifyKind::kTaskExit);
    EXPECT_EQ(n.tid, tid);
    return {tid, n};
  }

  /// The task leaves tasks() and its process is reaped (poll with a deadline).
  void expect_gone(Tid tid) {
    const auto deadline = std::chrono::steady_clock::now() + kTestWait;
    bool listed = true;
    char state = 'R';
    while (std::chrono::steady_clock::now() < deadline) {
      listed = false;
      for (const TaskInfo& t : session().tasks())
        if (t.tid == tid) listed = true;
      state = process_state(pid_);
      if (!listed && state == '\0') return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(listed) << "task " << tid << " is still in tasks() after its exit notification";
    EXPECT_EQ(state, '\0') << "process " << pid_ << " of task " << tid
                           << " still exists in state " << state << " (Z = a zombie nobody reaped)";
  }

  int pid_ = 0;
};

TEST_F(MpNotify, AbortIsReportedWithItsSignal) {
  Ended e = run_crash({"abort"});
  EXPECT_EQ(e.note.signal, SIGABRT) << describe_exit(e.note);
  EXPECT_EQ(e.note.exit_code, -1) << "exit_code is -1 when a signal ended the task";
  expect_gone(e.tid);
}

TEST_F(MpNotify, SegfaultIsReportedWithItsSignal) {
  Ended e = run_crash({"segv"});
  EXPECT_EQ(e.note.signal, SIGSEGV) << describe_exit(e.note);
  EXPECT_EQ(e.note.exit_code, -1);
  expect_gone(e.tid);
}

TEST_F(MpNotify, NonZeroExitIsReportedWithItsCode) {
  Ended e = run_crash({"exit", "3"});
  EXPECT_EQ(e.note.exit_code, 3) << describe_exit(e.note);
  EXPECT_EQ(e.note.signal, 0);
  expect_gone(e.tid);
}

TEST_F(MpNotify, KillIsReportedWithItsSignal) {
  Ended e = run_crash({"hang"}, SIGKILL);
  EXPECT_EQ(e.note.signal, SIGKILL) << describe_exit(e.note);
  EXPECT_EQ(e.note.exit_code, -1);
  expect_gone(e.tid);
}

TEST_F(MpNotify, KillSendsSigtermByDefault) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_crash"), {"hang"}, 1);
  must_recv(t[0], kTagReady);
  s.kill(t[0]);
  std::map<Tid, Notification> exits = wait_exits(t);
  EXPECT_EQ(exits[t[0]].signal, SIGTERM) << describe_exit(exits[t[0]]);
}

// notify() for a task that has already exited reports it at once.
TEST_F(MpNotify, WatchingATaskThatIsGoneReportsItAtOnce) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"0"}, 1);
  wait_exits(t);  // spawn-time notification: it is gone now
  s.notify(NotifyKind::kTaskExit, kWatchTag, t);
  Message m = must_recv(kAnyTid, kWatchTag);
  Notification n = Session::decode_notification(m);
  EXPECT_EQ(n.kind, NotifyKind::kTaskExit);
  EXPECT_EQ(n.tid, t[0]);
}

}  // namespace
}  // namespace cohort::mptest
