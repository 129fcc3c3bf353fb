// Every message type survives encode -> decode unchanged, and decoding never
// trusts a length.
#include <gtest/gtest.h>

#include <cstring>

#include "base/endian.hpp"
#include "tests/proto/proto_test_util.hpp"

namespace cohort::proto {
namespace {

using testing::body_of;
using testing::filled;

template <class M>
void round_trip(const char* name, MsgType expected_type) {
  SCOPED_TRACE(name);
  EXPECT_EQ(M::kType, expected_type);
  EXPECT_EQ(msg_type_name(M::kType), name);
  const M original = filled<M>();
  auto frame = encode(original);
  ASSERT_GE(frame.size(), kHeaderSize);
  EXPECT_EQ(load_le<std::uint32_t>(frame.data()), frame.size() - kHeaderSize);
  EXPECT_EQ(load_le<std::uint16_t>(frame.data() + 4), static_cast<std::uint16_t>(M::kType));
  EXPECT_EQ(static_cast<std::uint8_t>(frame[6]), kProtocolVersion);

  FrameBuffer fb;
  auto space = fb.prepare(frame.size());
  std::memcpy(space.data(), frame.data(), frame.size());
  fb.commit(frame.size());
  auto next = fb.next();
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->type, M::kType);
  M decoded;
  Status s = decode((*next)->body, decoded);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  // Field-for-field equality, through the one fields() list: same bytes again.
  EXPECT_EQ(encode(decoded), frame);
  EXPECT_TRUE(fb.empty());

  // Every strict prefix of the body is too short to decode.
  auto body = body_of(original);
  for (std::size_t n = 0; n < body.size(); ++n) {
    M partial;
    EXPECT_EQ(decode(std::span(body).first(n), partial).code(), Errc::kProtocolError) << n;
  }
  // One byte more is trailing garbage.
  body.push_back(std::byte{0});
  M extra;
  Status t = decode(body, extra);
  EXPECT_EQ(t.code(), Errc::kProtocolError);
  EXPECT_NE(t.message().find("trailing bytes"), std::string::npos) << t.message();
}

TEST(ProtoCodec, EveryMessageTypeRoundTrips) {
#define COHORT_ROUND_TRIP(name, num) round_trip<name>(#name, static_cast<MsgType>(num));
  COHORT_PROTO_MESSAGES(COHORT_ROUND_TRIP)
#undef COHORT_ROUND_TRIP
}

TEST(ProtoCodec, FieldsKeepTheirValues) {
  Spawn s;
  s.req = 7;
  s.program = "/bin/echo";
  s.args = {"a", "", std::string("b\0c", 3)};
  s.env = {"X=1"};
  s.count = -3;
  s.exit_tag = kNoTag;
  Spawn d;
  ASSERT_TRUE(decode(body_of(s), d).is_ok());
  EXPECT_EQ(d.req, 7u);
  EXPECT_EQ(d.program, "/bin/echo");
  EXPECT_EQ(d.args, s.args);
  EXPECT_EQ(d.env, s.env);
  EXPECT_EQ(d.count, -3);
  EXPECT_EQ(d.exit_tag, kNoTag);
  EXPECT_EQ(d.flags, kSpawnForwardOutput);
}

TEST(ProtoCodec, StringLengthBeyondTheBodyIsRejected) {
  // Publish: req, then a vector count of 1, then an entry whose first string
  // claims 1000 bytes that are not there.
  std::vector<std::byte> body(12);
  store_le<std::uint32_t>(body.data(), 1);
  store_le<std::uint32_t>(body.data() + 4, 1);
  store_le<std::uint32_t>(body.data() + 8, 1000);
  Publish p;
  Status s = decode(body, p);
  EXPECT_EQ(s.code(), Errc::kProtocolError);
  EXPECT_NE(s.message().find("string length out of bounds"), std::string::npos) << s.message();
}

TEST(ProtoCodec, StringLongerThanTheLimitIsRejectedEvenIfPresent) {
  // Output: tid (4 bytes), stream (1), data (4-byte length + bytes).
  auto body_with = [](std::size_t len) {
    std::vector<std::byte> body(4 + 1 + 4 + len);
    body[4] = std::byte{1};
    store_le<std::uint32_t>(body.data() + 5, static_cast<std::uint32_t>(len));
    return body;
  };
  Output o;
  EXPECT_TRUE(decode(body_with(kMaxString), o).is_ok());
  EXPECT_EQ(o.data.size(), kMaxString);
  Status s = decode(body_with(kMaxString + 1), o);
  EXPECT_EQ(s.code(), Errc::kProtocolError);
  EXPECT_NE(s.message().find("string length out of bounds"), std::string::npos) << s.message();
}

TEST(ProtoCodec, VectorCountBeyondTheBodyIsRejected) {
  // Notify: req (4 bytes), kind (1), tag (4), tids (4-byte count + elements).
  std::vector<std::byte> notify(13);
  notify[4] = std::byte{1};
  store_le<std::uint32_t>(notify.data() + 9, 0xffffffffu);
  Notify n;
  Status s = decode(notify, n);
  EXPECT_EQ(s.code(), Errc::kProtocolError);
  EXPECT_NE(s.message().find("element count out of bounds"), std::string::npos) << s.message();
}

TEST(ProtoCodec, BoolMustBeZeroOrOne) {
  Hello h;
  h.is_tool = true;
  auto body = body_of(h);
  ASSERT_EQ(body.back(), std::byte{1});
  body.back() = std::byte{2};
  Hello d;
  Status s = decode(body, d);
  EXPECT_EQ(s.code(), Errc::kProtocolError);
  EXPECT_NE(s.message().find("bool"), std::string::npos) << s.message();
}

TEST(ProtoCodec, RandomBodiesNeverCrashTheDecoder) {
  std::uint64_t x = 88172645463325252ull;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> body(rnd() % 96);
    for (auto& b : body) b = static_cast<std::byte>(rnd());
#define COHORT_TRY_DECODE(name, num) \
  {                                  \
    name m;                          \
    (void)decode(body, m);           \
  }
    COHORT_PROTO_MESSAGES(COHORT_TRY_DECODE)
#undef COHORT_TRY_DECODE
  }
}

}  // namespace
}  // namespace cohort::proto
