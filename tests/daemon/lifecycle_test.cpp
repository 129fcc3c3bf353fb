// Notifications, the name service, Kill, Halt, and the daemon's own life:
// start, refusal of a second daemon, restart after SIGKILL, --daemonize.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/daemon/daemon_fixture.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;

class DaemonLifecycle : public DaemonTest {
 protected:
  Result<proto::SpawnReply> spawn(RawClient& c, const proto::Spawn& s) {
    COHORT_RETURN_IF_ERROR(c.send(s));
    return c.expect<proto::SpawnReply>();
  }
  /// The next NotifyEvent of `kind`.
  Result<proto::NotifyEvent> event(RawClient& c, proto::NotifyKind kind) {
    while (true) {
      COHORT_ASSIGN_OR_RETURN(proto::NotifyEvent ev, c.expect<proto::NotifyEvent>());
      if (ev.kind == kind) return ev;
    }
  }
  /// Pid of live task `t`, from ListTasks.
  Result<pid_t> pid_of(RawClient& c, Tid t) {
    proto::ListTasks q;
    q.req = next_req();
    COHORT_RETURN_IF_ERROR(c.send(q));
    COHORT_ASSIGN_OR_RETURN(proto::TaskList list, c.expect<proto::TaskList>());
    for (auto& i : list.tasks)
      if (i.tid == t) return static_cast<pid_t>(i.pid);
    return Status(Errc::kNoSuchTask, "not listed");
  }
  bool listed(RawClient& c, Tid t) { return pid_of(c, t).is_ok(); }
};

TEST_F(DaemonLifecycle, NotifyOnAnExitedTidIsAnsweredAtOnce) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req("sh", {"-c", "exit 5"}, 1, 1)));
  Tid t = r.tasks.at(0).tid;
  ASSIGN_OR_FAIL(auto first, event(c, proto::NotifyKind::kTaskExit));
  EXPECT_EQ(first.subject, t);
  proto::Notify n;
  n.req = 11;
  n.tag = 99;
  n.tids = {t, tid::make(1, 5000)};  // exited, and never existed
  ASSERT_TRUE(c.send(n).is_ok());
  // The events for tids already gone come before the Ack.
  ASSIGN_OR_FAIL(RawFrame f1, c.next());
  ASSIGN_OR_FAIL(RawFrame f2, c.next());
  ASSIGN_OR_FAIL(RawFrame f3, c.next());
  ASSERT_EQ(f1.type, proto::MsgType::kNotifyEvent);
  ASSERT_EQ(f2.type, proto::MsgType::kNotifyEvent);
  ASSERT_EQ(f3.type, proto::MsgType::kAck);
  proto::NotifyEvent e1, e2;
  ASSERT_TRUE(proto::decode(f1.body, e1).is_ok());
  ASSERT_TRUE(proto::decode(f2.body, e2).is_ok());
  EXPECT_EQ(e1.subject, t);
  EXPECT_EQ(e1.tag, 99);
  EXPECT_EQ(e1.exit_code, 5);
  EXPECT_EQ(e2.subject, tid::make(1, 5000));
  EXPECT_EQ(e2.exit_code, -1);
}

TEST_F(DaemonLifecycle, HandStartedTaskExitsWithItsConnection) {
  ASSIGN_OR_FAIL(RawClient watcher, enrolled());
  ASSIGN_OR_FAIL(RawClient a, enrolled());
  Tid ta = me_;
  ASSIGN_OR_FAIL(RawClient b, enrolled());
  Tid tb = me_;
  proto::Notify n;
  n.req = 1;
  n.tag = 3;
  n.tids = {ta, tb};
  ASSERT_TRUE(watcher.send(n).is_ok());
  ASSIGN_OR_FAIL(auto ack, watcher.expect<proto::Ack>());
  EXPECT_EQ(ack.status.code, 0);
  proto::Bye bye;
  bye.exit_code = 7;
  ASSERT_TRUE(a.send(bye).is_ok());
  ASSIGN_OR_FAIL(auto ea, event(watcher, proto::NotifyKind::kTaskExit));
  EXPECT_EQ(ea.subject, ta);
  EXPECT_EQ(ea.exit_code, 7);
  b.close();  // without Bye: the exit code is unknown
  ASSIGN_OR_FAIL(auto eb, event(watcher, proto::NotifyKind::kTaskExit));
  EXPECT_EQ(eb.subject, tb);
  EXPECT_EQ(eb.exit_code, -1);
}

TEST_F(DaemonLifecycle, ResolveOfANeverExistingTid) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  proto::Resolve q;
  q.req = 4;
  q.tid = tid::make(1, 12345);
  ASSERT_TRUE(c.send(q).is_ok());
  ASSIGN_OR_FAIL(auto r, c.expect<proto::ResolveReply>());
  EXPECT_EQ(r.req, 4u);
  EXPECT_EQ(r.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
  EXPECT_NE(r.status.message.find("never existed"), std::string::npos) << r.status.message;
}

TEST_F(DaemonLifecycle, ResolveWaitsUntilThePeerPublishes) {
  ASSIGN_OR_FAIL(RawClient asker, enrolled());
  ASSIGN_OR_FAIL(RawClient peer, enrolled());
  Tid tp = me_;
  proto::Resolve q;
  q.req = 21;
  q.tid = tp;
  ASSERT_TRUE(asker.send(q).is_ok());
  // A later request is answered first: the Resolve is waiting.
  proto::ListHosts h;
  h.req = 22;
  ASSERT_TRUE(asker.send(h).is_ok());
  ASSIGN_OR_FAIL(RawFrame first, asker.next());
  EXPECT_EQ(first.type, proto::MsgType::kHostList);

  proto::Publish p;
  p.req = 1;
  p.addresses = {{"tcp", "127.0.0.1:4242"}, {"shm", std::string("\0\1\2", 3)}};
  ASSERT_TRUE(peer.send(p).is_ok());
  ASSIGN_OR_FAIL(auto ack, peer.expect<proto::Ack>());
  EXPECT_EQ(ack.status.code, 0);
  ASSIGN_OR_FAIL(auto r, asker.expect<proto::ResolveReply>());
  EXPECT_EQ(r.req, 21u);
  EXPECT_EQ(r.status.code, 0) << r.status.message;
  EXPECT_EQ(r.host, 1u);
  ASSERT_EQ(r.addresses.size(), 2u);
  EXPECT_EQ(r.addresses[0].address, "127.0.0.1:4242");
  EXPECT_EQ(r.addresses[1].transport, "shm");
  EXPECT_EQ(r.addresses[1].address, std::string("\0\1\2", 3));

  // Resolving made the asker a watcher: the peer's exit reaches it.
  peer.close();
  ASSIGN_OR_FAIL(auto gone, event(asker, proto::NotifyKind::kPeerExit));
  EXPECT_EQ(gone.subject, tp);
  // And now the name is gone.
  q.req = 23;
  ASSERT_TRUE(asker.send(q).is_ok());
  ASSIGN_OR_FAIL(auto r2, asker.expect<proto::ResolveReply>());
  EXPECT_EQ(r2.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
  EXPECT_NE(r2.status.message.find("has exited"), std::string::npos) << r2.status.message;
}

TEST_F(DaemonLifecycle, ResolvingTheToolFailsAtOnce) {
  // A task spawned by `cohort run` has the tool as its parent; sending to it
  // must fail, not wait for addresses the tool never publishes.
  ASSIGN_OR_FAIL(RawClient tool, enrolled(/*is_tool=*/true));
  Tid tt = me_;
  ASSIGN_OR_FAIL(RawClient task, enrolled());
  proto::Resolve q;
  q.req = 24;
  q.tid = tt;
  ASSERT_TRUE(task.send(q).is_ok());
  ASSIGN_OR_FAIL(auto r, task.expect<proto::ResolveReply>());
  EXPECT_EQ(r.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
  EXPECT_NE(r.status.message.find("cohort command"), std::string::npos) << r.status.message;
}

TEST_F(DaemonLifecycle, DeferredResolveFailsWhenThePeerExits) {
  ASSIGN_OR_FAIL(RawClient asker, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(asker, spawn_req("sleep", {"100"})));
  Tid t = r.tasks.at(0).tid;
  proto::Resolve q;
  q.req = 31;
  q.tid = t;
  ASSERT_TRUE(asker.send(q).is_ok());
  proto::Kill k;
  k.req = 32;
  k.tid = t;
  k.signal = SIGKILL;
  ASSERT_TRUE(asker.send(k).is_ok());
  ASSIGN_OR_FAIL(auto reply, asker.expect<proto::ResolveReply>());
  EXPECT_EQ(reply.req, 31u);
  EXPECT_EQ(reply.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
  EXPECT_NE(reply.status.message.find("has exited"), std::string::npos) << reply.status.message;
}

TEST_F(DaemonLifecycle, SpawnedTaskPublishesAndIsResolved) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req(bin("cohort_test_raw_task"), {"publish", "stay"})));
  Tid t = r.tasks.at(0).tid;
  ASSERT_NE(t, kNoTid) << r.tasks[0].status.message;
  proto::Resolve q;  // usually before the task has even enrolled
  q.req = 41;
  q.tid = t;
  ASSERT_TRUE(c.send(q).is_ok());
  ASSIGN_OR_FAIL(auto reply, c.expect<proto::ResolveReply>());
  EXPECT_EQ(reply.status.code, 0) << reply.status.message;
  ASSERT_EQ(reply.addresses.size(), 1u);
  EXPECT_EQ(reply.addresses[0].address, "addr-" + std::to_string(t));
}

TEST_F(DaemonLifecycle, KillBySignalIsReportedAndReaped) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req("sleep", {"100"}, 1, 8)));
  Tid t = r.tasks.at(0).tid;
  ASSIGN_OR_FAIL(pid_t pid, pid_of(c, t));
  EXPECT_TRUE(process_alive(pid));
  proto::Kill k;
  k.req = 51;
  k.tid = t;
  k.signal = SIGTERM;
  ASSERT_TRUE(c.send(k).is_ok());
  ASSIGN_OR_FAIL(auto ack, c.expect<proto::Ack>());
  EXPECT_EQ(ack.req, 51u);
  EXPECT_EQ(ack.status.code, 0) << ack.status.message;
  ASSIGN_OR_FAIL(auto ev, event(c, proto::NotifyKind::kTaskExit));
  EXPECT_EQ(ev.subject, t);
  EXPECT_EQ(ev.exit_code, -1);
  EXPECT_EQ(ev.signal, SIGTERM);
  // Reaped before the event was sent: no zombie, not listed.
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(listed(c, t));
  // Killing it again: it is gone.
  k.req = 52;
  ASSERT_TRUE(c.send(k).is_ok());
  ASSIGN_OR_FAIL(auto again, c.expect<proto::Ack>());
  EXPECT_EQ(again.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
  EXPECT_NE(again.status.message.find("has exited"), std::string::npos) << again.status.message;
}

TEST_F(DaemonLifecycle, ATaskThatKillsItselfLeavesNoZombie) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req("sh", {"-c", "kill -KILL $$"}, 20, 2)));
  int seen = 0;
  while (seen < 20) {
    ASSIGN_OR_FAIL(auto ev, event(c, proto::NotifyKind::kTaskExit));
    EXPECT_EQ(ev.signal, SIGKILL);
    EXPECT_EQ(ev.exit_code, -1);
    ++seen;
  }
  // No child of the daemon is left, zombie or not.
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    EXPECT_NE(ppid, daemon_->pid()) << "left behind: " << line;
  }
}

TEST_F(DaemonLifecycle, AClientThatDoesNotReadDoesNotStopOthers) {
  ASSIGN_OR_FAIL(RawClient lazy, enrolled());
  // `yes` writes as fast as it can; `lazy` never reads its Output frames.
  ASSIGN_OR_FAIL(auto r, spawn(lazy, spawn_req("yes", {"a line of output that nobody reads"})));
  Tid t = r.tasks.at(0).tid;
  ASSIGN_OR_FAIL(RawClient other, enrolled());
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(listed(other, t));
  proto::Kill k;
  k.req = 61;
  k.tid = t;
  k.signal = SIGKILL;
  ASSERT_TRUE(other.send(k).is_ok());
  ASSIGN_OR_FAIL(auto ack, other.expect<proto::Ack>());
  EXPECT_EQ(ack.status.code, 0);
}

TEST_F(DaemonLifecycle, HaltStopsTasksAndTheDaemon) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req("sleep", {"1000"}, 2, 4)));
  ASSIGN_OR_FAIL(pid_t pid, pid_of(c, r.tasks.at(0).tid));
  ASSIGN_OR_FAIL(RawClient tool, enrolled(/*is_tool=*/true));
  proto::Halt h;
  h.req = 71;
  ASSERT_TRUE(tool.send(h).is_ok());
  ASSIGN_OR_FAIL(auto ack, tool.expect<proto::Ack>());
  EXPECT_EQ(ack.req, 71u);
  ASSIGN_OR_FAIL(auto halt, event(c, proto::NotifyKind::kVmHalt));
  (void)halt;
  ASSIGN_OR_FAIL(int st, daemon_->wait());
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_FALSE(fs::exists(daemon_->socket_path()));
  EXPECT_FALSE(fs::exists(dir_.path() + "/cohortd.pid"));
  EXPECT_FALSE(fs::exists(dir_.path() + "/cookie"));
  EXPECT_FALSE(process_alive(pid));
  EXPECT_TRUE(c.closed_within(kWait));
}

TEST_F(DaemonLifecycle, SigtermHaltsTheDaemon) {
  daemon_->signal(SIGTERM);
  ASSIGN_OR_FAIL(int st, daemon_->wait());
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_FALSE(fs::exists(daemon_->socket_path()));
}

TEST_F(DaemonLifecycle, ASecondDaemonInTheSameDirIsRefused) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  ASSIGN_OR_FAIL(auto r, spawn(c, spawn_req("sleep", {"100"}, 1, 1)));
  auto second = DaemonProcess::start(dir_.path());
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find("a VM is already running in " + dir_.path() + " (pid " +
                                           std::to_string(daemon_->pid()) +
                                           "); stop it with 'cohort halt'"),
            std::string::npos)
      << second.status().message();
  // The first daemon and its task are untouched.
  EXPECT_TRUE(listed(c, r.tasks.at(0).tid));
  ASSIGN_OR_FAIL(RawClient d, enrolled());
}

TEST_F(DaemonLifecycle, ADaemonKilledWithSigkillDoesNotBlockTheNext) {
  daemon_->signal(SIGKILL);
  ASSIGN_OR_FAIL(int st, daemon_->wait());
  EXPECT_TRUE(WIFSIGNALED(st));
  EXPECT_TRUE(fs::exists(daemon_->socket_path()));  // left behind
  daemon_.reset();
  auto next = DaemonProcess::start(dir_.path());
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  daemon_ = std::move(next).value();
  auto cookie = env::read_cookie(dir_.path());
  ASSERT_TRUE(cookie.is_ok());
  cookie_ = *cookie;
  ASSIGN_OR_FAIL(RawClient c, enrolled());
}

TEST_F(DaemonLifecycle, DaemonizeReturnsOnceReady) {
  // Halt the harness's daemon first; this test starts its own, detached.
  daemon_->signal(SIGTERM);
  ASSERT_TRUE(daemon_->wait().is_ok());
  ASSIGN_OR_FAIL(auto run,
                 run_program({bin("cohortd"), "--dir", dir_.path(), "--daemonize"}, dir_.path()));
  EXPECT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.out.rfind("cohortd ready host=1 pid=", 0), 0u) << run.out;
  pid_t pid = std::stoi(run.out.substr(run.out.find("pid=") + 4));
  EXPECT_NE(run.out.find("socket=" + dir_.path() + "/cohortd.sock\n"), std::string::npos)
      << run.out;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_TRUE(pidfd.valid());
  // It refuses a second start the same way.
  ASSIGN_OR_FAIL(auto again,
                 run_program({bin("cohortd"), "--dir", dir_.path(), "--daemonize"}, dir_.path()));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already running"), std::string::npos) << again.err;

  auto cookie = env::read_cookie(dir_.path());
  ASSERT_TRUE(cookie.is_ok());
  ASSIGN_OR_FAIL(RawClient tool, RawClient::connect(dir_.path() + "/cohortd.sock"));
  ASSIGN_OR_FAIL(auto w, tool.hello(*cookie, kNoTid, true));
  EXPECT_EQ(w.status.code, 0);
  proto::Halt h;
  h.req = 1;
  ASSERT_TRUE(tool.send(h).is_ok());
  ASSIGN_OR_FAIL(auto ack, tool.expect<proto::Ack>());
  pollfd p{pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 20000), 1);  // it exits
  EXPECT_FALSE(fs::exists(dir_.path() + "/cohortd.sock"));
}

}  // namespace
}  // namespace cohort::testing
