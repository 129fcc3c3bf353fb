// FrameBuffer: frames cut correctly however the bytes arrive, and headers that
// can never be valid rejected at once.
#include <gtest/gtest.h>

#include <cstring>

#include "base/endian.hpp"
#include "tests/proto/proto_test_util.hpp"

namespace cohort::proto {
namespace {

using testing::filled;

std::vector<std::byte> three_frames() {
  std::vector<std::byte> bytes;
  encode(filled<Hello>(), bytes);
  encode(Halt{}, bytes);  // a tiny body
  encode(filled<Spawn>(), bytes);
  return bytes;
}

void feed(FrameBuffer& fb, std::span<const std::byte> bytes) {
  auto space = fb.prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  fb.commit(bytes.size());
}

/// Take every whole frame out of `fb`, as re-encodable copies.
std::vector<std::pair<MsgType, std::vector<std::byte>>> drain(FrameBuffer& fb) {
  std::vector<std::pair<MsgType, std::vector<std::byte>>> out;
  while (true) {
    auto f = fb.next();
    EXPECT_TRUE(f.is_ok()) << f.status().to_string();
    if (!f.is_ok() || !f->has_value()) return out;
    out.emplace_back((*f)->type, std::vector<std::byte>((*f)->body.begin(), (*f)->body.end()));
  }
}

void expect_the_three(const std::vector<std::pair<MsgType, std::vector<std::byte>>>& got) {
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, MsgType::kHello);
  EXPECT_EQ(got[1].first, MsgType::kHalt);
  EXPECT_EQ(got[2].first, MsgType::kSpawn);
  Hello h;
  ASSERT_TRUE(decode(got[0].second, h).is_ok());
  EXPECT_EQ(encode(h), encode(filled<Hello>()));
  Spawn s;
  ASSERT_TRUE(decode(got[2].second, s).is_ok());
  EXPECT_EQ(encode(s), encode(filled<Spawn>()));
}

TEST(ProtoFrameBuffer, SeveralFramesInOneRead) {
  FrameBuffer fb;
  auto bytes = three_frames();
  feed(fb, bytes);
  expect_the_three(drain(fb));
  EXPECT_TRUE(fb.empty());
}

TEST(ProtoFrameBuffer, ByteAtATime) {
  FrameBuffer fb;
  auto bytes = three_frames();
  std::vector<std::pair<MsgType, std::vector<std::byte>>> got;
  for (std::byte b : bytes) {
    feed(fb, std::span(&b, 1));
    auto more = drain(fb);
    got.insert(got.end(), more.begin(), more.end());
  }
  expect_the_three(got);
  EXPECT_TRUE(fb.empty());
}

TEST(ProtoFrameBuffer, UnevenChunksAcrossFrameBoundaries) {
  auto bytes = three_frames();
  for (std::size_t chunk : {2u, 3u, 7u, 9u, 64u}) {
    FrameBuffer fb;
    std::vector<std::pair<MsgType, std::vector<std::byte>>> got;
    for (std::size_t at = 0; at < bytes.size(); at += chunk) {
      feed(fb, std::span(bytes).subspan(at, std::min(chunk, bytes.size() - at)));
      auto more = drain(fb);
      got.insert(got.end(), more.begin(), more.end());
    }
    expect_the_three(got);
  }
}

std::vector<std::byte> header(std::uint32_t len, std::uint16_t type, std::uint8_t version) {
  std::vector<std::byte> h(kHeaderSize);
  store_le<std::uint32_t>(h.data(), len);
  store_le<std::uint16_t>(h.data() + 4, type);
  h[6] = std::byte{version};
  return h;
}

Status first_frame_status(const std::vector<std::byte>& bytes) {
  FrameBuffer fb;
  feed(fb, bytes);
  auto f = fb.next();
  return f.is_ok() ? Status() : f.status();
}

TEST(ProtoFrameBuffer, BadHeadersAreProtocolErrors) {
  const auto kHalt = static_cast<std::uint16_t>(MsgType::kHalt);
  // A body over the limit is refused from its header alone, before any byte of it.
  Status big =
      first_frame_status(header(static_cast<std::uint32_t>(kMaxBody + 1), kHalt, kProtocolVersion));
  EXPECT_EQ(big.code(), Errc::kProtocolError);
  EXPECT_NE(big.message().find("exceeds the limit"), std::string::npos) << big.message();
  Status unknown = first_frame_status(header(0, 999, kProtocolVersion));
  EXPECT_EQ(unknown.code(), Errc::kProtocolError);
  EXPECT_NE(unknown.message().find("unknown message type 999"), std::string::npos);
  Status version = first_frame_status(header(0, kHalt, kProtocolVersion + 1));
  EXPECT_EQ(version.code(), Errc::kProtocolError);
  EXPECT_NE(version.message().find("protocol version"), std::string::npos);
  // A body of exactly the limit is waited for, not refused.
  EXPECT_TRUE(
      first_frame_status(header(static_cast<std::uint32_t>(kMaxBody), kHalt, kProtocolVersion))
          .is_ok());
}

TEST(ProtoFrameBuffer, PartialFrameWaitsForMore) {
  auto bytes = encode(filled<Publish>());
  FrameBuffer fb;
  feed(fb, std::span(bytes).first(bytes.size() - 1));
  auto f = fb.next();
  ASSERT_TRUE(f.is_ok());
  EXPECT_FALSE(f->has_value());
  EXPECT_FALSE(fb.empty());
  feed(fb, std::span(bytes).last(1));
  auto g = fb.next();
  ASSERT_TRUE(g.is_ok());
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->type, MsgType::kPublish);
}

}  // namespace
}  // namespace cohort::proto
