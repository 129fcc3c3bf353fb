// Transport selection between real tasks on one host (lib/src/selection.hpp):
// a pair picks shm when it is built (tcp when COHORT_TRANSPORTS forces it),
// reports the choice and its reason to the daemon, `cohort ps --transports`
// shows it; forcing a transport the peer lacks fails the send at once.
// These tests run under every forced transport too (CMakeLists.txt), and
// expect what COHORT_TRANSPORTS asks for.
#include <cohort/transport_config.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

#ifdef COHORT_HAVE_SHM
constexpr bool kHaveShm = true;
#else
constexpr bool kHaveShm = false;
#endif

std::string transports_env() {
  const char* v = std::getenv("COHORT_TRANSPORTS");
  return v ? v : "";
}

/// What two tasks of this host should use, given COHORT_TRANSPORTS (the
/// re-runs name one transport; unset means all built).
std::string expected_transport() {
  const std::string env = transports_env();
  if (env.empty()) return kHaveShm ? "shm" : "tcp";
  if (kHaveShm && env.find("shm") != std::string::npos) return "shm";
  return env.substr(0, env.find(','));
}

/// The reason the task that sends first gives.
std::string expected_reason() {
  if (expected_transport() == "shm") return "same host";
  if (!transports_env().empty()) return "forced by COHORT_TRANSPORTS=" + transports_env();
  return "the only transport built";
}

/// Sets an environment variable for a scope, then puts the old value back.
class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class MpSelection : public MultiprocTest {
 protected:
  /// The daemon's record of `task`'s choice for `peer`, polled until it is there.
  std::optional<TransportChoice> choice_of(Tid task, Tid peer) {
    const auto deadline = std::chrono::steady_clock::now() + kTestWait;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const TransportChoice& c : session().transport_choices(task))
        if (c.task == task && c.peer == peer) return c;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
  }
};

TEST_F(MpSelection, PairOnOneHostChoosesAndReports) {
  auto tids = spawn_ok(bin("mp_task_transport"), {}, 2);
  const std::string want = expected_transport();
  for (Tid t : tids) {
    Message m = must_recv(t, kTagReport);
    EXPECT_EQ(m.unpack<std::string>(), want) << "to its peer, from " << t;
    EXPECT_EQ(m.unpack<std::string>(), want) << "to the test, from " << t;
  }
  EXPECT_EQ(session().transport_to(tids[0]), want);

  // Rank 0 sent first: it chose. Rank 1 answered on the connection it accepted.
  auto c0 = choice_of(tids[0], tids[1]);
  ASSERT_TRUE(c0) << "rank 0 never reported its choice";
  EXPECT_EQ(c0->transport, want);
  EXPECT_EQ(c0->reason, expected_reason());
  auto c1 = choice_of(tids[1], tids[0]);
  ASSERT_TRUE(c1) << "rank 1 never reported its choice";
  EXPECT_EQ(c1->transport, want);
  EXPECT_NE(c1->reason.find("it connected to us"), std::string::npos) << c1->reason;

  // `cohort ps --transports` shows the same, one line per (task, peer).
  auto r = cohort::testing::run_program({bin("cohort"), "ps", "--transports"}, dir());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  char t0[16], t1[16];
  std::snprintf(t0, sizeof t0, "t%x", static_cast<unsigned>(tids[0]));
  std::snprintf(t1, sizeof t1, "t%x", static_cast<unsigned>(tids[1]));
  const std::regex line(std::string(t0) + " +" + t1 + " +" + want + " +" + expected_reason());
  EXPECT_TRUE(std::regex_search(r->out, line)) << r->out;
  EXPECT_NE(r->out.find("REASON"), std::string::npos) << r->out;

  for (Tid t : tids) session().send(t, kTagStop, Message());
  expect_clean_exits(wait_exits(tids));
}

TEST_F(MpSelection, ForcingATransportThePeerLacksFailsAtOnce) {
  // Our session may use only shm (or the in-process loop transport when shm is
  // not built); the task only tcp.
  const std::string mine = kHaveShm ? "shm" : "loop";
  EnvGuard only("COHORT_TRANSPORTS", mine);
  SpawnOptions o;
  o.env = {"COHORT_TRANSPORTS=tcp"};
  auto tids = spawn_ok(bin("mp_task_transport"), {"--wait"}, 2, o);
  Message m;
  m.pack(std::int32_t{1});
  try {
    session().send(tids[0], kTagStop, m);
    ADD_FAILURE() << "a send with no common transport succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.errc(), Errc::kUnsupported) << e.what();
    const std::string what = e.what();
    EXPECT_NE(what.find("no transport reaches task"), std::string::npos) << what;
    EXPECT_NE(what.find("peer has no " + mine + " address"), std::string::npos) << what;
    EXPECT_NE(what.find("COHORT_TRANSPORTS=" + mine), std::string::npos) << what;
  }
  EXPECT_THROW(session().transport_to(tids[1]), Error);
  for (Tid t : tids) session().kill(t, SIGKILL);
  (void)wait_exits(tids);
}

}  // namespace
}  // namespace cohort::mptest
