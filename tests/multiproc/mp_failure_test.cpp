// Failures: sends to a task that is gone (or never was) fail instead of
// hanging; a receive from a specific task that exits gets what it sent, then
// an error; a daemon killed with SIGKILL leaves nothing behind that stops the
// next one from starting in the same directory.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

bool peer_gone(Errc e) { return e == Errc::kNoSuchTask || e == Errc::kPeerLost; }

/// Run `f`, which must throw cohort::Error meaning "that task is gone".
template <class F>
void expect_gone_error(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": succeeded; expected kNoSuchTask or kPeerLost";
  } catch (const Error& e) {
    EXPECT_TRUE(peer_gone(e.errc())) << what << ": " << errc_name(e.errc()) << ": " << e.what();
  }
}

/// A receive from `tid`, which has exited, must fail — not time out, not hang.
void expect_recv_fails(Session& s, Tid tid, int tag) {
  try {
    std::optional<Message> m = s.recv_for(tid, tag, kTestWait);
    if (m)
      ADD_FAILURE() << "recv from exited task " << tid << " got a message with tag " << m->tag();
    else
      ADD_FAILURE() << "recv from exited task " << tid << " waited the full "
                    << kTestWait.count() << " s and timed out instead of failing";
  } catch (const Error& e) {
    EXPECT_TRUE(peer_gone(e.errc())) << errc_name(e.errc()) << ": " << e.what();
  }
}

class MpFailure : public MultiprocTest {};

TEST_F(MpFailure, SendToAnExitedTaskFails) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"1", "wait"}, 1);
  s.send(t[0], kTagGo, Message());  // the two are connected now
  must_recv(t[0], kTagData);
  wait_exits(t);

  Message small;
  small << std::int32_t{1};
  expect_gone_error([&] { s.send(t[0], kTagData, small); }, "send of a packed message");
  std::vector<std::byte> raw(16);
  expect_gone_error([&] { s.send(t[0], kTagData, std::span<const std::byte>(raw)); },
                    "send of raw bytes");
  std::vector<std::byte> large(4 * eager_limit());
  expect_gone_error([&] { s.send(t[0], kTagData, std::span<const std::byte>(large)); },
                    "send of a message over the eager limit");
}

TEST_F(MpFailure, SendToATaskThatExitedBeforeFirstContactFails) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"0"}, 1);
  wait_exits(t);
  expect_gone_error([&] { s.send(t[0], kTagData, Message()); }, "send");
}

TEST_F(MpFailure, SendToATidThatNeverExistedFails) {
  Session& s = session();
  const Tid never = tid::make(s.host(), tid::kLocalMask);  // the last tid of this host
  try {
    s.send(never, kTagData, Message());
    ADD_FAILURE() << "send to tid " << never << ", which never existed, succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::kNoSuchTask) << e.what();
  }
  const Tid no_host = tid::make(tid::kMaxHost, 1);
  try {
    s.send(no_host, kTagData, Message());
    ADD_FAILURE() << "send to tid " << no_host << " on a host that does not exist succeeded";
  } catch (const Error& e) {
    EXPECT_TRUE(e.errc() == Errc::kNoSuchTask || e.errc() == Errc::kNoSuchHost)
        << errc_name(e.errc()) << ": " << e.what();
  }
}

// What a task sent before it exited is still delivered, in order; then the
// next receive from it fails.
TEST_F(MpFailure, RecvFromAnExitedTaskGetsWhatItSentThenFails) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"3", "wait"}, 1);
  s.send(t[0], kTagGo, Message());
  wait_exits(t);
  for (std::int32_t i = 0; i < 3; ++i) {
    Message m = must_recv(t[0], kTagData);
    EXPECT_EQ(m.unpack<std::int32_t>(), i);
  }
  expect_recv_fails(s, t[0], kTagData);
  expect_recv_fails(s, t[0], kAnyTag);
}

// The same when the task opened the connection itself, sent and exited at
// once, possibly before we even saw the connection: nothing is lost.
TEST_F(MpFailure, RecvFromATaskThatConnectedSentAndExitedGetsItAll) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"3"}, 1);
  for (std::int32_t i = 0; i < 3; ++i) {
    Message m = must_recv(t[0], kTagData);
    EXPECT_EQ(m.unpack<std::int32_t>(), i);
  }
  wait_exits(t);
  expect_recv_fails(s, t[0], kTagData);
}

// The receive is already waiting when the task exits.
TEST_F(MpFailure, BlockedRecvFromATaskThatExitsFails) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"1", "wait"}, 1);
  s.send(t[0], kTagGo, Message());
  Message m = must_recv(t[0], kTagData);
  EXPECT_EQ(m.unpack<std::int32_t>(), 0);
  expect_recv_fails(s, t[0], kTagData);
}

// Neither side ever sent to the other: the library must still learn of the exit.
TEST_F(MpFailure, RecvFromASilentTaskThatExitsFails) {
  Session& s = session();
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"0"}, 1);
  expect_recv_fails(s, t[0], kAnyTag);
}

// The sender dies with a large send in flight: the receive fails (or, had
// the whole message got out, delivers it intact) — it never hangs and never
// hands over part of a message.
TEST_F(MpFailure, SenderDyingMidRendezvousFailsTheRecv) {
  Session& s = session();
  const std::size_t size = 16u << 20;
  std::vector<Tid> t = spawn_ok(bin("mp_task_crash"), {"isend-abort", std::to_string(size)}, 1);
  must_recv(t[0], kTagReady);
  s.send(t[0], kTagGo, Message());
  try {
    std::optional<Message> m = s.recv_for(t[0], kTagData, kTestWait);
    ASSERT_TRUE(m.has_value()) << "recv from a task that died waited the full "
                               << kTestWait.count() << " s and timed out instead of failing";
    ASSERT_EQ(m->size(), size) << "a partial message was delivered";
    EXPECT_EQ(pattern_mismatch(m->bytes(), static_cast<std::uint32_t>(size)), -1);
  } catch (const Error& e) {
    EXPECT_TRUE(peer_gone(e.errc())) << errc_name(e.errc()) << ": " << e.what();
  }
  std::map<Tid, Notification> exits = wait_exits(t);
  EXPECT_EQ(exits[t[0]].signal, SIGABRT) << describe_exit(exits[t[0]]);
}

/// True when `pid` is still a running mp_task_* process.
bool is_our_task(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return cmd.find("mp_task_") != std::string::npos;
}

TEST_F(MpFailure, DaemonKilledBySigkillCanBeRestartedInTheSameDir) {
  // A VM with a task running and this process enrolled when the daemon dies.
  Session& s1 = session();
  std::vector<SpawnOutcome> out = s1.spawn(bin("mp_task_crash"), {"hang"}, 1);
  ASSERT_TRUE(out.size() == 1 && out[0].ok()) << describe_spawn(out);
  const int orphan_pid = must_recv(out[0].tid, kTagReady).unpack<std::int32_t>();

  daemon().signal(SIGKILL);
  Result<int> status = daemon().wait();
  ASSERT_TRUE(status.is_ok()) << status.status().to_string();
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  leave();  // must neither throw nor hang with the daemon gone

  auto d2 = cohort::testing::DaemonProcess::start(dir());
  ASSERT_TRUE(d2.is_ok()) << "a new cohortd in the directory of a SIGKILLed one did not start: "
                          << d2.status().to_string();

  // A job runs on the new VM.
  std::vector<Tid> t = spawn_ok(bin("mp_task_sender"), {"2", "wait"}, 1);
  session().send(t[0], kTagGo, Message());
  EXPECT_EQ(must_recv(t[0], kTagData).unpack<std::int32_t>(), 0);
  EXPECT_EQ(must_recv(t[0], kTagData).unpack<std::int32_t>(), 1);
  expect_clean_exits(wait_exits(t));
  leave();

  std::vector<std::string> errors = (*d2)->unexpected_errors();
  std::string all;
  for (const std::string& e : errors) all += "  " + e + "\n";
  EXPECT_TRUE(errors.empty()) << "unexpected errors in the second daemon's log:\n" << all;
  // The first VM's task may outlive its daemon (as in PVM); end it.
  if (is_our_task(orphan_pid)) ::kill(orphan_pid, SIGKILL);
}

}  // namespace
}  // namespace cohort::mptest
