// Ordering under load: several tasks flood one receiver (this test) at once
// with numbered messages of mixed sizes and encodings (eager and rendezvous);
// received with wildcard source and tag, each sender's messages must arrive
// complete, intact and in the order sent — its kTagDone after all its data.
#include <cstring>
#include <map>
#include <vector>

#include "tests/multiproc/mp_fixture.hpp"
#include "tests/multiproc/tasks/flood.hpp"

namespace cohort::mptest {
namespace {

class MpOrdering : public MultiprocTest {};

TEST_F(MpOrdering, ConcurrentSendersKeepPerSenderOrder) {
  constexpr int kSenders = 4;
  constexpr std::uint32_t kCount = 2500;
  std::vector<Tid> senders = spawn_ok(bin("mp_task_flood"), {std::to_string(kCount)}, kSenders);
  Session& s = session();
  s.mcast(senders, kTagGo, Message());  // start them together

  const std::size_t eager = eager_limit();
  std::vector<std::uint32_t> next(kSenders, 0);
  std::vector<bool> done(kSenders, false);
  int senders_done = 0;
  auto rank_of = [&](Tid t) -> int {
    for (int r = 0; r < kSenders; ++r)
      if (senders[r] == t) return r;
    return -1;
  };

  std::map<Tid, Notification> exits;  // senders that finish early exit while others still send
  while (senders_done < kSenders) {
    Message m = must_recv(kAnyTid, kAnyTag);
    if (m.tag() == kTagExit) {
      Notification n = Session::decode_notification(m);
      exits[n.tid] = n;
      continue;
    }
    const int rank = rank_of(m.source());
    ASSERT_GE(rank, 0) << "message from " << m.source() << ", who is not a sender (tag "
                       << m.tag() << ")";
    if (m.tag() == kTagDone) {
      ASSERT_FALSE(done[rank]) << "sender " << rank << " finished twice";
      EXPECT_EQ(m.unpack<std::uint32_t>(), kCount);
      ASSERT_EQ(next[rank], kCount) << "sender " << rank << "'s kTagDone overtook its data: only "
                                    << next[rank] << " of " << kCount << " arrived before it";
      done[rank] = true;
      ++senders_done;
      continue;
    }
    ASSERT_EQ(m.tag(), kTagData);
    ASSERT_FALSE(done[rank]) << "data from sender " << rank << " after its kTagDone";
    const std::uint32_t want = next[rank];
    ASSERT_LT(want, kCount) << "sender " << rank << " sent more than " << kCount;
    const std::size_t size = flood_size(want, eager);
    std::uint32_t got_rank = 0;
    std::uint32_t got_seq = 0;
    std::vector<std::byte> body;
    if (m.is_raw()) {
      ASSERT_FALSE(flood_packed(want, eager)) << "sender " << rank << " message " << want;
      ASSERT_GE(m.size(), kFloodHeader);
      std::memcpy(&got_rank, m.bytes().data(), 4);
      std::memcpy(&got_seq, m.bytes().data() + 4, 4);
      ASSERT_EQ(got_seq, want) << "sender " << rank << ": message " << got_seq << " arrived when "
                               << want << " was due";
      ASSERT_EQ(m.size(), size) << "sender " << rank << " message " << want;
      body.assign(m.bytes().begin() + kFloodHeader, m.bytes().end());
    } else {
      ASSERT_TRUE(flood_packed(want, eager)) << "sender " << rank << " message " << want;
      got_rank = static_cast<std::uint32_t>(m.unpack<std::int32_t>());
      got_seq = m.unpack<std::uint32_t>();
      ASSERT_EQ(got_seq, want) << "sender " << rank << ": message " << got_seq << " arrived when "
                               << want << " was due";
      body = m.unpack_bytes();
      ASSERT_EQ(body.size(), size - kFloodHeader);
    }
    ASSERT_EQ(got_rank, static_cast<std::uint32_t>(rank));
    ASSERT_EQ(pattern_mismatch(body, flood_seed(got_rank, got_seq)), -1)
        << "sender " << rank << " message " << want << " (" << size << " B) corrupted";
    ++next[rank];
  }

  // Nothing more than what was sent.
  EXPECT_FALSE(s.probe(kAnyTid, kTagData).has_value());
  std::vector<Tid> running;
  for (Tid t : senders)
    if (!exits.count(t)) running.push_back(t);
  exits.merge(wait_exits(running));
  bool unsupported = false;
  expect_clean_exits(exits, &unsupported);
  if (unsupported) GTEST_SKIP() << "a sender reported it cannot run here";
}

}  // namespace
}  // namespace cohort::mptest
