// Matching: wildcard source and tag select the right messages, probe looks
// without taking, recv_for times out with nullopt; and non-blocking isend /
// irecv completed with test, wait, wait_any and wait_all.
#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "tests/multiproc/mp_fixture.hpp"
#include "tests/multiproc/tasks/nonblock.hpp"

namespace cohort::mptest {
namespace {

class MpMatching : public MultiprocTest {};

struct Tagged {
  Tid source;
  int tag;
  std::int32_t rank;
  std::int32_t index;
};

Tagged take(Message m) {
  Tagged t{m.source(), m.tag(), m.unpack<std::int32_t>(), m.unpack<std::int32_t>()};
  EXPECT_TRUE(m.at_end());
  return t;
}

constexpr int kUnusedTag = 99;
constexpr std::chrono::milliseconds kShort{100};

TEST_F(MpMatching, WildcardsSelectTheRightMessages) {
  // Two taggers each send, in order, tags 21 22 23 21 22 (indexes 0..4).
  std::vector<Tid> t = spawn_ok(bin("mp_task_tagger"), {}, 2);
  const Tid a = t[0];
  const Tid b = t[1];
  must_recv(a, kTagDone);  // now everything a and b sent is here
  must_recv(b, kTagDone);
  Session& s = session();
  std::map<Tid, std::vector<std::int32_t>> taken;  // indexes received, per sender
  auto check = [&](const Tagged& m, Tid source, int tag, std::int32_t index) {
    EXPECT_EQ(m.source, source);
    EXPECT_EQ(m.tag, tag);
    EXPECT_EQ(m.rank, source == a ? 0 : 1) << "payload says another sender";
    EXPECT_EQ(m.index, index);
    EXPECT_EQ(kTaggerTags[m.index], m.tag) << "payload and tag disagree";
    taken[m.source].push_back(m.index);
  };

  // Specific source, any tag: b's first message.
  check(take(must_recv(b, kAnyTag)), b, 21, 0);

  // Any source, specific tag: either sender's 23 (index 2), skipping earlier ones.
  {
    Tagged m = take(must_recv(kAnyTid, 23));
    ASSERT_TRUE(m.source == a || m.source == b) << "from " << m.source;
    check(m, m.source, 23, 2);
  }

  // Specific source and tag: a's first 22 (index 1), skipping a's 21.
  check(take(must_recv(a, 22)), a, 22, 1);

  // Probe sees a's oldest message (21, index 0) and does not take it.
  std::optional<MessageInfo> p1 = s.probe(a, kAnyTag);
  ASSERT_TRUE(p1.has_value()) << "probe(a, any tag) found nothing";
  EXPECT_EQ(p1->source, a);
  EXPECT_EQ(p1->tag, 21);
  std::optional<MessageInfo> p2 = s.probe(a, kAnyTag);
  ASSERT_TRUE(p2.has_value()) << "the first probe consumed the message";
  EXPECT_EQ(p2->tag, p1->tag);
  EXPECT_EQ(p2->size, p1->size);
  Message probed = must_recv(a, kAnyTag);
  EXPECT_EQ(probed.tag(), p1->tag);
  EXPECT_EQ(probed.size(), p1->size) << "probe's size is not the size of what recv got";
  check(take(std::move(probed)), a, 21, 0);

  // Nothing matches: probe says so and recv_for times out with nullopt.
  EXPECT_FALSE(s.probe(kAnyTid, kUnusedTag).has_value());
  EXPECT_FALSE(s.recv_for(a, kUnusedTag, kShort).has_value());
  EXPECT_FALSE(s.recv_for(kAnyTid, kUnusedTag, kShort).has_value());
  EXPECT_FALSE(s.recv_for(a, kTagDone, kShort).has_value()) << "kTagDone was taken already";

  // Any source, any tag: the remaining 6, each sender's in the order it sent.
  std::map<Tid, std::vector<std::int32_t>> drained;
  for (int i = 0; i < 6; ++i) {
    Tagged m = take(must_recv(kAnyTid, kAnyTag));
    ASSERT_TRUE(m.source == a || m.source == b) << "from " << m.source << " tag " << m.tag;
    ASSERT_EQ(kTaggerTags[m.index], m.tag);
    taken[m.source].push_back(m.index);
    drained[m.source].push_back(m.index);
  }
  EXPECT_FALSE(s.recv_for(kAnyTid, kAnyTag, kShort).has_value()) << "more than was sent";

  // Everything arrived once; the wildcard receives kept each sender's order.
  for (Tid src : {a, b}) {
    EXPECT_TRUE(std::is_sorted(drained[src].begin(), drained[src].end()))
        << "any-source/any-tag receives from " << src << " were out of order";
    std::vector<std::int32_t> got = taken[src];
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::int32_t>{0, 1, 2, 3, 4})) << "from " << src;
  }

  s.mcast(t, kTagGo, Message());
  expect_clean_exits(wait_exits(t));
}

// A task may send to itself; the messages match like any other. (The large
// one goes by isend: like MPI_Send, a blocking send past the eager limit may
// wait for its receive.)
TEST_F(MpMatching, SendToSelf) {
  Session& s = session();
  std::vector<std::byte> big = make_pattern(2 * eager_limit(), 5);
  Message packed;
  packed << std::int32_t{7} << std::string("self");
  Request big_send = s.isend(s.tid(), 71, std::span<const std::byte>(big));
  s.send(s.tid(), 72, packed);
  Message p = must_recv(s.tid(), 72);
  EXPECT_EQ(p.source(), s.tid());
  EXPECT_EQ(p.unpack<std::int32_t>(), 7);
  EXPECT_EQ(p.unpack_string(), "self");
  Message r = must_recv(kAnyTid, kAnyTag);
  EXPECT_EQ(r.tag(), 71);
  EXPECT_TRUE(r.is_raw());
  ASSERT_EQ(r.size(), big.size());
  EXPECT_EQ(pattern_mismatch(r.bytes(), 5), -1);
  s.wait(big_send);
}

TEST_F(MpMatching, NonBlockingSendAndReceive) {
  Tid peer = spawn_ok(bin("mp_task_nonblock"), {}, 1)[0];
  Session& s = session();

  // Post every receive before anything is sent; the late one with wildcards.
  std::vector<std::byte> small(kNbReplySmallSize + 100);
  std::vector<std::byte> large(kNbReplyLargeSize);
  std::vector<Request> recvs;
  recvs.push_back(s.irecv(peer, kNbReplySmall, std::span<std::byte>(small)));
  recvs.push_back(s.irecv(peer, kNbReplyPacked));
  recvs.push_back(s.irecv(peer, kNbReplyLarge, std::span<std::byte>(large)));
  Request late = s.irecv(kAnyTid, kNbLate);
  for (const Request& r : recvs) ASSERT_TRUE(r.valid());

  must_recv(peer, kTagReady);  // the task's receives are posted too
  // Sent in the reverse order of the task's posted receives.
  std::vector<std::byte> out_large = make_pattern(kNbLargeSize, kNbLargeSize);
  std::vector<std::byte> out_small = make_pattern(kNbSmallSize, kNbSmallSize);
  Message out_packed;
  out_packed << static_cast<std::int32_t>(kNbPacked) << std::string("nonblocking") << kNbDoubles;
  std::vector<Request> sends;
  sends.push_back(s.isend(peer, kNbLarge, std::span<const std::byte>(out_large)));
  sends.push_back(s.isend(peer, kNbPacked, out_packed));
  sends.push_back(s.isend(peer, kNbSmall, std::span<const std::byte>(out_small)));
  s.wait_all(sends);

  // Complete the receives by polling test() (with a deadline); the late one
  // cannot complete yet: the task sends it only after kTagGo.
  std::vector<bool> complete(recvs.size(), false);
  std::size_t left = recvs.size();
  const auto deadline = std::chrono::steady_clock::now() + kTestWait;
  while (left > 0) {
    for (std::size_t i = 0; i < recvs.size(); ++i)
      if (!complete[i] && s.test(recvs[i])) {
        complete[i] = true;
        --left;
      }
    ASSERT_FALSE(s.test(late)) << "the late receive completed before the task was told to send";
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << left << " receive(s) still incomplete after " << kTestWait.count() << " s";
    if (left > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }

  MessageInfo i0 = recvs[0].info();
  EXPECT_EQ(i0.source, peer);
  EXPECT_EQ(i0.tag, kNbReplySmall);
  ASSERT_EQ(i0.size, kNbReplySmallSize);
  EXPECT_EQ(pattern_mismatch(std::span(small).first(kNbReplySmallSize), kNbReplySmallSize), -1);

  EXPECT_EQ(recvs[1].info().tag, kNbReplyPacked);
  Message& packed = recvs[1].message();
  EXPECT_EQ(packed.source(), peer);
  EXPECT_EQ(packed.unpack<std::int32_t>(), kNbReplyPacked);
  EXPECT_EQ(packed.unpack_string(), "reply");
  EXPECT_TRUE(packed.at_end());

  MessageInfo i2 = recvs[2].info();
  EXPECT_EQ(i2.source, peer);
  EXPECT_EQ(i2.tag, kNbReplyLarge);
  ASSERT_EQ(i2.size, kNbReplyLargeSize);
  EXPECT_EQ(pattern_mismatch(large, kNbReplyLargeSize), -1);

  s.send(peer, kTagGo, Message());
  s.wait(late);
  EXPECT_EQ(late.info().source, peer);
  EXPECT_EQ(late.info().tag, kNbLate);
  EXPECT_EQ(late.info().size, kNbLateSize);
  EXPECT_EQ(pattern_mismatch(late.message().bytes(), kNbLateSize), -1);

  bool unsupported = false;
  Tid tids[] = {peer};
  expect_clean_exits(wait_exits(tids), &unsupported);
  if (unsupported) GTEST_SKIP() << "mp_task_nonblock reported it cannot run here";
}

}  // namespace
}  // namespace cohort::mptest
