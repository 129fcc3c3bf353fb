// Matching: wildcards, per-sender order, the unexpected queue, post order,
// contexts, and delivery into buffers and Messages.
#include "lib/src/matcher.hpp"

#include <gtest/gtest.h>

#include <string>

#include "lib/src/wire_header.hpp"

namespace cohort::lib {
namespace {

constexpr Tid kA = tid::make(1, 1);
constexpr Tid kB = tid::make(1, 2);
constexpr Tid kC = tid::make(2, 1);

Envelope env(Tid src, int tag, std::uint32_t ctx = 0, std::size_t size = 0) {
  return Envelope{src, tag, ctx, kNativeOrderFlag, size};
}

std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

std::string text(const std::vector<std::byte>& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// Queue an arrived message as the progress engine does.
UnexpectedMsg* arrive(Matcher& m, Tid src, int tag, const std::string& payload,
                      std::uint32_t ctx = 0) {
  UnexpectedMsg* u = m.add_unexpected(env(src, tag, ctx, payload.size()));
  u->data = bytes(payload);
  u->complete = true;
  return u;
}

/// A receive as the engine starts it: the oldest match, else posted.
std::string take(Matcher& m, Tid src, int tag, std::uint32_t ctx = 0) {
  UnexpectedMsg* u = m.find_unexpected(src, tag, ctx);
  if (!u) return "<none>";
  m.unlink(u);
  Message msg;
  RecvOp op;
  op.message = &msg;
  deliver_unexpected(op, *u);
  m.release(u);
  EXPECT_TRUE(op.done());
  return text(msg.storage());
}

TEST(Matcher, MatchesPredicate) {
  EXPECT_TRUE(matches(kAnyTid, kAnyTag, 0, env(kA, 5)));
  EXPECT_TRUE(matches(kA, kAnyTag, 0, env(kA, 5)));
  EXPECT_TRUE(matches(kAnyTid, 5, 0, env(kA, 5)));
  EXPECT_FALSE(matches(kB, kAnyTag, 0, env(kA, 5)));
  EXPECT_FALSE(matches(kAnyTid, 6, 0, env(kA, 5)));
  EXPECT_FALSE(matches(kAnyTid, kAnyTag, 1, env(kA, 5)));  // wildcards never cross contexts
}

TEST(Matcher, UnexpectedOldestMatchWins) {
  Matcher m;
  arrive(m, kA, 1, "a1");
  arrive(m, kB, 1, "b1");
  arrive(m, kA, 2, "a2");
  arrive(m, kA, 1, "a1'");
  EXPECT_EQ(m.unexpected_count(), 4u);
  EXPECT_EQ(take(m, kAnyTid, 2), "a2");
  EXPECT_EQ(take(m, kB, kAnyTag), "b1");
  EXPECT_EQ(take(m, kA, 1), "a1");  // per-sender order
  EXPECT_EQ(take(m, kAnyTid, kAnyTag), "a1'");
  EXPECT_EQ(take(m, kAnyTid, kAnyTag), "<none>");
  EXPECT_EQ(m.unexpected_count(), 0u);
}

TEST(Matcher, PerSenderOrderUnderWildcards) {
  Matcher m;
  for (int i = 0; i < 10; ++i) {
    arrive(m, kA, i % 3, "a" + std::to_string(i));
    arrive(m, kB, i % 2, "b" + std::to_string(i));
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(take(m, kA, kAnyTag), "a" + std::to_string(i));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(take(m, kB, kAnyTag), "b" + std::to_string(i));
}

TEST(Matcher, PostedReceivesMatchInPostOrder) {
  Matcher m;
  RecvOp any, from_a, tag7;
  from_a.source = kA;
  tag7.tag = 7;
  m.post(tag7);
  m.post(from_a);
  m.post(any);
  EXPECT_EQ(m.posted_count(), 3u);
  EXPECT_EQ(m.match_posted(env(kA, 7)), &tag7);  // first posted that matches
  EXPECT_EQ(m.match_posted(env(kA, 7)), &from_a);
  EXPECT_EQ(m.match_posted(env(kB, 1)), &any);
  EXPECT_EQ(m.match_posted(env(kB, 1)), nullptr);
  EXPECT_EQ(m.posted_count(), 0u);
}

TEST(Matcher, PostedWildcardsSkipNonMatching) {
  Matcher m;
  RecvOp from_b;
  from_b.source = kB;
  from_b.tag = 3;
  m.post(from_b);
  EXPECT_EQ(m.match_posted(env(kA, 3)), nullptr);
  EXPECT_EQ(m.match_posted(env(kB, 4)), nullptr);
  EXPECT_EQ(m.match_posted(env(kB, 3)), &from_b);
}

TEST(Matcher, ContextsAreSeparate) {
  Matcher m;
  arrive(m, kA, 1, "ctx1", 1);
  arrive(m, kA, 1, "ctx0", 0);
  EXPECT_EQ(take(m, kAnyTid, kAnyTag, 0), "ctx0");
  EXPECT_EQ(take(m, kAnyTid, kAnyTag, 2), "<none>");
  EXPECT_EQ(take(m, kA, 1, 1), "ctx1");

  RecvOp coll;
  coll.context = 5;
  m.post(coll);
  EXPECT_EQ(m.match_posted(env(kA, 1, 0)), nullptr);
  EXPECT_EQ(m.match_posted(env(kA, 1, 5)), &coll);
}

TEST(Matcher, CancelUnposts) {
  Matcher m;
  RecvOp a, b;
  m.post(a);
  m.post(b);
  EXPECT_TRUE(m.cancel(a));
  EXPECT_FALSE(m.cancel(a));
  EXPECT_EQ(a.state, RecvOp::State::kIdle);
  EXPECT_EQ(m.match_posted(env(kC, 1)), &b);
}

TEST(Matcher, ClaimedMessagesAreSkippedUntilUnclaimed) {
  Matcher m;
  UnexpectedMsg* first = m.add_unexpected(env(kA, 1, 0, 3));  // still arriving
  arrive(m, kA, 1, "second");
  RecvOp claimant;
  first->claimed_by = &claimant;
  EXPECT_EQ(take(m, kA, 1), "second");
  first->claimed_by = nullptr;  // the receive gave up: the message is back where it was
  EXPECT_EQ(m.find_unexpected(kA, 1, 0), first);
}

TEST(Matcher, PoolReusesNodes) {
  Matcher m;
  UnexpectedMsg* u = arrive(m, kA, 1, "x");
  m.unlink(u);
  m.release(u);
  EXPECT_EQ(arrive(m, kB, 2, "y"), u);
}

TEST(Delivery, IntoBufferAndTruncation) {
  std::vector<std::byte> buf(4);
  RecvOp op;
  op.has_buffer = true;
  op.buffer = buf;
  auto p = bytes("abc");
  deliver_bytes(op, env(kA, 9, 0, p.size()), p);
  EXPECT_TRUE(op.done());
  EXPECT_TRUE(op.status.is_ok());
  EXPECT_EQ(op.env.size, 3u);
  EXPECT_EQ(op.env.source, kA);
  EXPECT_EQ(static_cast<char>(buf[2]), 'c');

  RecvOp small;
  small.has_buffer = true;
  small.buffer = std::span<std::byte>(buf).first(2);
  auto big = bytes("0123456789");
  deliver_bytes(small, env(kB, 1, 0, big.size()), big);
  EXPECT_TRUE(small.done());
  EXPECT_EQ(small.status.code(), Errc::kTruncated);
  EXPECT_NE(small.status.message().find("10 bytes"), std::string::npos) << small.status.message();
  EXPECT_EQ(small.env.size, 10u);
}

TEST(Delivery, IntoMessageCarriesAttributes) {
  Message msg;
  RecvOp op;
  op.message = &msg;
  auto p = bytes("raw!");
  Envelope e = env(kC, 3, 0, p.size());
  e.flags = kFlagRaw;
  deliver_bytes(op, e, p);
  EXPECT_TRUE(msg.is_raw());
  EXPECT_EQ(msg.source(), kC);
  EXPECT_EQ(msg.tag(), 3);
  EXPECT_EQ(text(msg.storage()), "raw!");

  Message packed;
  RecvOp op2;
  op2.message = &packed;
  Envelope f = env(kA, 4, 0, 0);
  f.flags = kNativeOrderFlag ^ kFlagBigEndian;
  deliver_bytes(op2, f, {});
  EXPECT_TRUE(packed.foreign_order());
  EXPECT_FALSE(packed.is_raw());
}

TEST(Delivery, AnnouncedPayloadTargets) {
  // Fits: straight into the user's buffer.
  std::vector<std::byte> buf(8);
  RecvOp op;
  op.has_buffer = true;
  op.buffer = buf;
  auto t = payload_target(op, env(kA, 1, 0, 5));
  EXPECT_EQ(t.data(), buf.data());
  EXPECT_EQ(t.size(), 5u);
  EXPECT_EQ(op.state, RecvOp::State::kReceiving);
  finish_receive(op, Status());
  EXPECT_TRUE(op.done());
  EXPECT_TRUE(op.status.is_ok());

  // Too large: into scratch, then the prefix is copied and kTruncated reported.
  RecvOp small;
  small.has_buffer = true;
  small.buffer = std::span<std::byte>(buf).first(2);
  auto s = payload_target(small, env(kA, 1, 0, 6));
  ASSERT_EQ(s.size(), 6u);
  std::memcpy(s.data(), "xyzuvw", 6);
  finish_receive(small, Status());
  EXPECT_EQ(small.status.code(), Errc::kTruncated);
  EXPECT_EQ(static_cast<char>(buf[1]), 'y');

  // A Message is sized to fit.
  Message msg;
  RecvOp mop;
  mop.message = &msg;
  auto ms = payload_target(mop, env(kB, 2, 0, 100));
  EXPECT_EQ(ms.size(), 100u);
  EXPECT_EQ(ms.data(), msg.storage().data());
  finish_receive(mop, Status(Errc::kPeerLost, "gone"));
  EXPECT_EQ(mop.status.code(), Errc::kPeerLost);
}

TEST(Delivery, UnexpectedIntoMessageMovesTheBuffer) {
  Matcher m;
  UnexpectedMsg* u = arrive(m, kA, 1, std::string(1000, 'z'));
  const std::byte* data = u->data.data();
  m.unlink(u);
  Message msg;
  RecvOp op;
  op.message = &msg;
  deliver_unexpected(op, *u);
  EXPECT_EQ(msg.storage().data(), data);  // no copy
  EXPECT_EQ(msg.size(), 1000u);
  m.release(u);
}

}  // namespace
}  // namespace cohort::lib
