// Message sizes between two tasks, both ways, raw and packed: 0 B, 1 B, the
// eager limit and one either side of it (rendezvous starts there), 1 MiB and
// 64 MiB, each checked byte for byte; and receives into a buffer that is too
// small.
#include <cerrno>
#include <vector>

#include "tests/multiproc/mp_fixture.hpp"
#include "tests/multiproc/tasks/bulk_ops.hpp"

namespace cohort::mptest {
namespace {

class MpMessages : public MultiprocTest {
 protected:
  void SetUp() override {
    MultiprocTest::SetUp();
    if (HasFatalFailure()) return;
    peer_ = spawn_ok(bin("mp_task_bulk"), {}, 1)[0];
  }
  void TearDown() override {
    if (peer_ != kNoTid && !HasFatalFailure()) {
      try {
        command(BulkOp::kQuit, 0, true, 0);
        Tid t[] = {peer_};
        expect_clean_exits(wait_exits(t));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "stopping mp_task_bulk: " << e.what();
      }
    }
    MultiprocTest::TearDown();
  }

  void command(BulkOp op, std::uint64_t size, bool raw, std::int32_t tag) {
    Message cmd;
    cmd << static_cast<std::int32_t>(op) << size << raw << tag;
    session().send(peer_, kTagCmd, cmd);
  }
  /// The task's answer to the last command; its detail when it failed.
  std::string ack() {
    Message a = must_recv(peer_, kTagAck);
    bool ok = a.unpack<bool>();
    std::string detail = a.unpack_string();
    return ok ? std::string() : "mp_task_bulk: " + detail;
  }

  // This test -> the task, which checks the content.
  void to_task(std::size_t size, bool raw) {
    SCOPED_TRACE(std::string(raw ? "raw" : "packed") + " message of " + std::to_string(size) +
                 " B to the task");
    command(BulkOp::kExpect, size, raw, kTagData);
    std::vector<std::byte> data = make_pattern(size, static_cast<std::uint32_t>(size));
    if (raw) {
      session().send(peer_, kTagData, std::span<const std::byte>(data));
    } else {
      Message m;
      m.pack_bytes(data);
      session().send(peer_, kTagData, m);
    }
    EXPECT_EQ(ack(), "");
  }

  // The task -> this test, which checks the content.
  void from_task(std::size_t size, bool raw) {
    SCOPED_TRACE(std::string(raw ? "raw" : "packed") + " message of " + std::to_string(size) +
                 " B from the task");
    command(BulkOp::kEmit, size, raw, kTagData);
    const auto seed = static_cast<std::uint32_t>(size);
    if (raw) {
      // Into a user buffer with room to spare: the size comes back in the info,
      // and nothing past it is touched.
      MessageInfo probed = must_probe(session(), peer_, kTagData);
      EXPECT_EQ(probed.size, size) << "probe";
      constexpr std::size_t kSpare = 16;
      std::vector<std::byte> buf(size + kSpare, std::byte{0xee});
      MessageInfo info = session().recv(peer_, kTagData, std::span<std::byte>(buf));
      EXPECT_EQ(info.source, peer_);
      EXPECT_EQ(info.tag, kTagData);
      ASSERT_EQ(info.size, size);
      EXPECT_EQ(pattern_mismatch(std::span(buf).first(size), seed), -1);
      for (std::size_t i = size; i < buf.size(); ++i)
        ASSERT_EQ(buf[i], std::byte{0xee}) << "recv wrote past the message, at byte " << i;
    } else {
      Message m = must_recv(peer_, kTagData);
      EXPECT_FALSE(m.is_raw());
      std::vector<std::byte> got = m.unpack_bytes();
      ASSERT_EQ(got.size(), size);
      EXPECT_EQ(pattern_mismatch(got, seed), -1);
      EXPECT_TRUE(m.at_end());
    }
    EXPECT_EQ(ack(), "");
  }

  void both_ways(std::size_t size) {
    for (bool raw : {true, false}) {
      to_task(size, raw);
      from_task(size, raw);
    }
  }

  Tid peer_ = kNoTid;
};

TEST_F(MpMessages, SmallSizes) {
  both_ways(0);
  both_ways(1);
}

TEST_F(MpMessages, AroundTheEagerLimit) {
  const std::size_t eager = eager_limit();
  both_ways(eager - 1);
  both_ways(eager);
  both_ways(eager + 1);
}

TEST_F(MpMessages, OneMebibyte) { both_ways(1u << 20); }

TEST_F(MpMessages, SixtyFourMebibytes) { both_ways(64u << 20); }

// A message larger than the buffer given to recv is an error (kTruncated),
// eager or rendezvous; the sender's send still completes (its ack arrives),
// and the pair keeps working afterwards.
TEST_F(MpMessages, ReceiveIntoTooSmallBufferIsTruncated) {
  struct Case {
    std::size_t size;
    std::size_t buffer;
    std::int32_t tag;
  };
  const Case cases[] = {{100, 10, 101}, {1u << 20, 64u << 10, 102}, {1, 0, 103}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.size) + " B into " + std::to_string(c.buffer) + " B");
    command(BulkOp::kEmit, c.size, /*raw=*/true, c.tag);
    must_probe(session(), peer_, c.tag);
    std::vector<std::byte> small(c.buffer);
    try {
      MessageInfo info = session().recv(peer_, c.tag, std::span<std::byte>(small));
      ADD_FAILURE() << "recv into a buffer of " << c.buffer << " B returned normally (size "
                    << info.size << ") instead of throwing kTruncated";
    } catch (const Error& e) {
      EXPECT_EQ(e.errc(), Errc::kTruncated) << e.what();
    }
    EXPECT_EQ(ack(), "") << "the sender of the truncated message";
  }
  from_task(1000, true);
  to_task(1000, true);
}

}  // namespace
}  // namespace cohort::mptest
