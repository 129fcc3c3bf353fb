// Enrolment and robustness: the daemon never trusts a frame, drops the one
// client that misbehaves, and keeps serving everyone else.
#include <gtest/gtest.h>

#include <cstring>

#include "base/endian.hpp"
#include "tests/daemon/daemon_fixture.hpp"
#include "tests/proto/proto_test_util.hpp"

namespace cohort::testing {
namespace {

/// A header announcing `len` body bytes of message `type`.
std::string header(std::uint32_t len, std::uint16_t type, std::uint8_t version = 1) {
  std::string h(proto::kHeaderSize, '\0');
  store_le<std::uint32_t>(h.data(), len);
  store_le<std::uint16_t>(h.data() + 4, type);
  h[6] = static_cast<char>(version);
  return h;
}

class DaemonEnrol : public DaemonTest {
 protected:
  /// The daemon still accepts and enrolls a new client.
  void expect_still_serving() {
    ASSIGN_OR_FAIL(RawClient c, enrolled());
    proto::ListHosts q;
    q.req = 5;
    ASSERT_TRUE(c.send(q).is_ok());
    ASSIGN_OR_FAIL(proto::HostList hosts, c.expect<proto::HostList>());
    EXPECT_EQ(hosts.req, 5u);
  }
  /// Count log lines that contain `what`.
  int log_lines_with(const std::string& what) {
    std::string log = daemon_->log();
    int n = 0;
    for (std::size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  }
};

TEST_F(DaemonEnrol, HelloGetsWelcomeWithIdentity) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  ASSIGN_OR_FAIL(proto::Welcome w, c.hello(cookie_));
  EXPECT_EQ(w.status.code, 0) << w.status.message;
  EXPECT_EQ(w.tid, tid::make(1, 1));
  EXPECT_EQ(w.parent, kNoTid);
  EXPECT_NE(w.job, 0u);
  EXPECT_EQ(w.rank, 0);
  EXPECT_EQ(w.job_size, 1);
  EXPECT_EQ(w.host, 1u);
  EXPECT_FALSE(w.host_name.empty());
  EXPECT_FALSE(w.vm_name.empty());
  EXPECT_NE(
      daemon_->ready_line().find("cohortd ready host=1 pid=" + std::to_string(daemon_->pid()) +
                                 " socket=" + daemon_->socket_path()),
      std::string::npos);
}

TEST_F(DaemonEnrol, TidsCountUpAndAreNeverReused) {
  ASSIGN_OR_FAIL(RawClient a, enrolled());
  Tid first = me_;
  a.close();
  ASSIGN_OR_FAIL(RawClient b, enrolled());
  EXPECT_EQ(me_, tid::make(1, tid::local_of(first) + 1));
  ASSIGN_OR_FAIL(RawClient tool, enrolled(/*is_tool=*/true));
  EXPECT_EQ(me_, tid::make(1, tid::local_of(first) + 2));
}

TEST_F(DaemonEnrol, WrongCookieIsRefusedAndClosed) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  std::string bad = cookie_;
  bad[0] = static_cast<char>(bad[0] ^ 1);
  ASSIGN_OR_FAIL(proto::Welcome w, c.hello(bad));
  EXPECT_EQ(w.status.code, static_cast<std::uint16_t>(Errc::kAuthFailed));
  EXPECT_NE(w.status.message.find("cookie"), std::string::npos) << w.status.message;
  EXPECT_TRUE(c.closed_within(kWait));
  EXPECT_EQ(log_lines_with("wrong cookie"), 1) << daemon_->log();
  // A short cookie is just as wrong.
  ASSIGN_OR_FAIL(RawClient d, connect());
  ASSIGN_OR_FAIL(proto::Welcome w2, d.hello("short"));
  EXPECT_EQ(w2.status.code, static_cast<std::uint16_t>(Errc::kAuthFailed));
  expect_still_serving();
}

TEST_F(DaemonEnrol, ASilentClientIsDroppedAtTheHelloDeadline) {
  // Takes the daemon's Hello deadline (10 s) to run.
  ASSIGN_OR_FAIL(RawClient c, connect());
  EXPECT_TRUE(c.closed_within(std::chrono::seconds(60)));
  EXPECT_EQ(log_lines_with("no Hello within"), 1) << daemon_->log();
  expect_still_serving();
}

TEST_F(DaemonEnrol, RequestBeforeHelloIsDropped) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  proto::ListTasks q;
  q.req = 1;
  ASSERT_TRUE(c.send(q).is_ok());
  EXPECT_TRUE(c.closed_within(kWait));
  EXPECT_TRUE(c.kept().empty());
  EXPECT_EQ(log_lines_with("ListTasks before Hello"), 1) << daemon_->log();
  expect_still_serving();
}

TEST_F(DaemonEnrol, GarbageBytesAreDropped) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  ASSERT_TRUE(c.send_bytes(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).is_ok());
  EXPECT_TRUE(c.closed_within(kWait));
  expect_still_serving();
}

TEST_F(DaemonEnrol, DisconnectInTheMiddleOfAFrame) {
  {
    ASSIGN_OR_FAIL(RawClient c, connect());
    proto::Hello h;
    h.cookie = cookie_;
    auto bytes = proto::encode(h);
    ASSERT_TRUE(c.send_bytes(std::span(bytes).first(bytes.size() / 2)).is_ok());
  }
  {
    ASSIGN_OR_FAIL(RawClient c, enrolled());
    ASSERT_TRUE(
        c.send_bytes(header(100, static_cast<std::uint16_t>(proto::MsgType::kSpawn)) + "abc")
            .is_ok());
  }
  expect_still_serving();
}

TEST_F(DaemonEnrol, OversizedLengthIsDropped) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  auto len = static_cast<std::uint32_t>(proto::kMaxBody + 1);
  ASSERT_TRUE(
      c.send_bytes(header(len, static_cast<std::uint16_t>(proto::MsgType::kPublish))).is_ok());
  EXPECT_TRUE(c.closed_within(kWait));
  expect_still_serving();
}

TEST_F(DaemonEnrol, BadHeadersAndBodiesAreDropped) {
  const std::uint16_t kList = static_cast<std::uint16_t>(proto::MsgType::kListTasks);
  std::vector<std::string> bad = {
      header(4, kList, /*version=*/2) + std::string(4, '\0'),  // wrong version
      header(4, 999) + std::string(4, '\0'),                   // unknown type
      header(8, kList) + std::string(8, '\0'),                 // trailing bytes
      header(2, kList) + std::string(2, '\0'),                 // too short
      header(8, static_cast<std::uint16_t>(proto::MsgType::kResolve)) +
          std::string("\1\0\0\0\xff\xff\xff\xff", 8),
  };
  // A string length far beyond the body.
  std::string spawn(4, '\0');
  spawn += std::string("\xff\xff\xff\x7f", 4);
  bad.push_back(header(static_cast<std::uint32_t>(spawn.size()),
                       static_cast<std::uint16_t>(proto::MsgType::kSpawn)) +
                spawn);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    ASSIGN_OR_FAIL(RawClient c, enrolled());
    ASSERT_TRUE(c.send_bytes(bad[i]).is_ok());
    if (i == bad.size() - 2) {  // a well-formed Resolve: answered, connection kept
      ASSIGN_OR_FAIL(proto::ResolveReply r, c.expect<proto::ResolveReply>());
      EXPECT_EQ(r.status.code, static_cast<std::uint16_t>(Errc::kNoSuchTask));
      continue;
    }
    EXPECT_TRUE(c.closed_within(kWait)) << "case " << i;
  }
  expect_still_serving();
}

TEST_F(DaemonEnrol, AHugeFrameBeforeHelloIsDropped) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  // A Hello header announcing 1 MiB, and more than the daemon takes before Hello.
  std::string bytes = header(1u << 20, static_cast<std::uint16_t>(proto::MsgType::kHello));
  bytes += std::string(100 * 1024, 'x');
  (void)c.send_bytes(bytes);  // may fail half-way once the daemon has closed
  EXPECT_TRUE(c.closed_within(kWait));
  EXPECT_EQ(log_lines_with("bytes before Hello"), 1) << daemon_->log();
  expect_still_serving();
}

TEST_F(DaemonEnrol, AClientThatNeverReadsIsDropped) {
  // One task publishes the largest address set allowed; another asks for it
  // again and again and never reads the replies.
  ASSIGN_OR_FAIL(RawClient peer, enrolled());
  Tid tp = me_;
  proto::Publish p;
  p.req = 1;
  p.addresses = {{"blob", std::string(60 * 1024, 'a')}};
  ASSERT_TRUE(peer.send(p).is_ok());
  ASSIGN_OR_FAIL(auto ack, peer.expect<proto::Ack>());
  ASSERT_EQ(ack.status.code, 0) << ack.status.message;
  ASSIGN_OR_FAIL(RawClient lazy, enrolled());
  std::vector<std::byte> requests;
  for (std::uint32_t i = 0; i < 1400; ++i) {  // about 84 MiB of replies
    proto::Resolve q;
    q.req = i;
    q.tid = tp;
    proto::encode(q, requests);
  }
  ASSERT_TRUE(lazy.send_bytes(requests).is_ok());
  // The daemon drops it rather than queue without bound; others are served.
  expect_still_serving();
  EXPECT_TRUE(lazy.closed_within(kWait));
  EXPECT_EQ(log_lines_with("does not read its socket"), 1) << daemon_->log();
}

TEST_F(DaemonEnrol, MessagesOnlyTheDaemonSendsAreDropped) {
  ASSIGN_OR_FAIL(RawClient c, enrolled());
  proto::Welcome w;
  ASSERT_TRUE(c.send(w).is_ok());
  EXPECT_TRUE(c.closed_within(kWait));
  ASSIGN_OR_FAIL(RawClient d, enrolled());
  proto::Hello again;
  again.cookie = cookie_;
  ASSERT_TRUE(d.send(again).is_ok());
  EXPECT_TRUE(d.closed_within(kWait));
  expect_still_serving();
}

TEST_F(DaemonEnrol, ClaimingATidNotSpawnedIsRefused) {
  ASSIGN_OR_FAIL(RawClient c, connect());
  ASSIGN_OR_FAIL(proto::Welcome w, c.hello(cookie_, tid::make(1, 77)));
  EXPECT_EQ(w.status.code, static_cast<std::uint16_t>(Errc::kInvalidArgument));
  EXPECT_TRUE(c.closed_within(kWait));

  // A tid the daemon did spawn, claimed by another process (this one).
  ASSIGN_OR_FAIL(RawClient s, enrolled());
  ASSERT_TRUE(s.send(spawn_req("sleep", {"100"})).is_ok());
  ASSIGN_OR_FAIL(proto::SpawnReply r, s.expect<proto::SpawnReply>());
  ASSERT_EQ(r.tasks.size(), 1u);
  ASSERT_NE(r.tasks[0].tid, kNoTid) << r.tasks[0].status.message;
  ASSIGN_OR_FAIL(RawClient thief, connect());
  ASSIGN_OR_FAIL(proto::Welcome w2, thief.hello(cookie_, r.tasks[0].tid));
  EXPECT_EQ(w2.status.code, static_cast<std::uint16_t>(Errc::kInvalidArgument));
  EXPECT_NE(w2.status.message.find("belongs to pid"), std::string::npos) << w2.status.message;
}

TEST_F(DaemonEnrol, ManyRandomFramesNeverHurtTheDaemon) {
  // A fixed-seed generator: well-formed headers for every message type with
  // random bodies, each on its own enrolled connection.
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  // Kill and Halt are left out: a lucky Kill could hit this very process.
  const std::uint16_t types[] = {1,  2,  3,  4,  10, 11, 12, 20, 21,
                                 22, 30, 31, 50, 51, 52, 53, 54, 55};
  for (int i = 0; i < 200; ++i) {
    ASSIGN_OR_FAIL(RawClient c, enrolled());
    std::string body(rnd() % 64, '\0');
    for (auto& ch : body) ch = static_cast<char>(rnd());
    std::uint16_t type = types[rnd() % std::size(types)];
    ASSERT_TRUE(c.send_bytes(header(static_cast<std::uint32_t>(body.size()), type) + body).is_ok());
  }
  expect_still_serving();
}

TEST_F(DaemonEnrol, MutatedFramesNeverHurtTheDaemon) {
  // Well-formed requests with a few bytes flipped reach deeper into the
  // handlers than random bytes do. Spawn, Kill and Halt are left out: a
  // mutation could start thousands of processes or hit this very process.
  using proto::testing::filled;
  std::vector<std::vector<std::byte>> seeds = {
      proto::encode(filled<proto::Publish>()),   proto::encode(filled<proto::Resolve>()),
      proto::encode(filled<proto::Notify>()),    proto::encode(filled<proto::ListTasks>()),
      proto::encode(filled<proto::ListHosts>()), proto::encode(filled<proto::JobTids>()),
      proto::encode(filled<proto::Bye>())};
  std::uint64_t x = 0x2545f4914f6cdd1dull;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < 300; ++i) {
    ASSIGN_OR_FAIL(RawClient c, enrolled());
    auto frame = seeds[rnd() % seeds.size()];
    for (int flips = 1 + static_cast<int>(rnd() % 3); flips > 0; --flips) {
      // Mostly the body; sometimes the header's length, version or flags
      // (never its type, which could turn a ListTasks into a Halt).
      static constexpr std::size_t kHeaderBytes[] = {0, 1, 2, 3, 6, 7};
      std::size_t at = rnd() % 8 == 0
                           ? kHeaderBytes[rnd() % 6]
                           : proto::kHeaderSize + rnd() % (frame.size() - proto::kHeaderSize);
      frame[at] = static_cast<std::byte>(rnd());
    }
    ASSERT_TRUE(c.send_bytes(frame).is_ok());
  }
  expect_still_serving();
}

}  // namespace
}  // namespace cohort::testing
