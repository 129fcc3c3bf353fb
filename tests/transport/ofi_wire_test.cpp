// The ofi wire: tag bits, and decode() of bounce messages and watch records,
// which must turn anything malformed into a Status.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "transport/ofi/ofi_receive.hpp"
#include "transport/ofi/ofi_tags.hpp"

namespace cohort::transport::ofi {
namespace {

std::vector<std::byte> message(WirePrefix p, const std::vector<std::byte>& body) {
  std::vector<std::byte> m(kPrefixSize + body.size());
  std::memcpy(m.data(), &p, kPrefixSize);
  if (!body.empty()) std::memcpy(m.data() + kPrefixSize, body.data(), body.size());
  return m;
}

std::vector<std::byte> bytes(std::size_t n, unsigned char fill) {
  return std::vector<std::byte>(n, static_cast<std::byte>(fill));
}

TEST(OfiTags, FieldsDoNotOverlap) {
  const PeerId peer = 0xfedcba98;
  const std::uint64_t t = payload_tag(peer, 0x1fffff, 63);
  EXPECT_TRUE(is_payload(t));
  EXPECT_EQ(tag_peer(t), peer);
  EXPECT_EQ(t >> kTagBits, 0u) << "tags use 60 bits";
  EXPECT_FALSE(is_payload(bounce_tag(peer)));
  EXPECT_EQ(tag_peer(bounce_tag(peer)), peer);
  EXPECT_EQ(bounce_tag(peer) & ~kBounceIgnore, kBounceTag) << "bounce receives match it";
  EXPECT_NE(t & ~kBounceIgnore, kBounceTag) << "bounce receives do not match payloads";
  EXPECT_NE(payload_tag(peer, 5, 0), payload_tag(peer, 5, 1));
  EXPECT_NE(payload_tag(peer, 5, 0), payload_tag(peer, 6, 0));
  EXPECT_NE(payload_tag(peer, 5, 0), payload_tag(peer + 1, 5, 0));
  EXPECT_TRUE(seq_before(0xffffffffu, 0u)) << "sequence numbers wrap";
  EXPECT_FALSE(seq_before(1u, 1u));
}

TEST(OfiDecode, EagerAndAnnounce) {
  auto eager = message({WireType::kEager, 0, 3, 9, 5}, bytes(8, 0xab));
  auto d = decode(eager.data(), eager.size());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->header.size(), 3u);
  EXPECT_EQ(d->payload.size(), 5u);
  EXPECT_EQ(d->prefix.seq, 9u);

  std::vector<std::byte> body = bytes(4, 0x11);  // header
  std::uint64_t parts[2] = {700, 300};
  body.resize(4 + sizeof parts);
  std::memcpy(body.data() + 4, parts, sizeof parts);
  auto ann = message({WireType::kAnnounce, 2, 4, 10, 1000}, body);
  d = decode(ann.data(), ann.size());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->parts, 2u);
  EXPECT_EQ(d->part_size(0), 700u);
  EXPECT_EQ(d->part_size(1), 300u);
}

TEST(OfiDecode, HelloAndWelcome) {
  std::string addr = "ofi:shm|shm|h:1|1|0000000000000001|64|127.0.0.1:1|00";
  WireHello h{1, 65536, 2, static_cast<std::uint32_t>(addr.size()), 7};
  std::vector<std::byte> body(sizeof h + addr.size() + 2);
  std::memcpy(body.data(), &h, sizeof h);
  std::memcpy(body.data() + sizeof h, addr.data(), addr.size());
  auto hello = message({WireType::kHello, 0, 0, 0, body.size()}, body);
  auto d = decode(hello.data(), hello.size());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->address, addr);
  EXPECT_EQ(d->hello_bytes.size(), 2u);
  EXPECT_EQ(d->hello.peer, 7u);

  WireWelcome w{3, 1000, 4, 0};
  std::vector<std::byte> wb(sizeof w);
  std::memcpy(wb.data(), &w, sizeof w);
  auto welcome = message({WireType::kWelcome, 0, 0, 0, sizeof w}, wb);
  d = decode(welcome.data(), welcome.size());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->welcome.peer, 4u);
}

TEST(OfiDecode, ClearToSendIsAPrefixCarryingTheAnnouncementsNumber) {
  auto clear = message({WireType::kClear, 0, 0, 12345, 0}, {});
  auto d = decode(clear.data(), clear.size());
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(d->prefix.type, WireType::kClear);
  EXPECT_EQ(d->prefix.seq, 12345u);
}

TEST(OfiDecode, RejectsWhatDoesNotAddUp) {
  std::vector<std::vector<std::byte>> bad = {
      bytes(3, 0),                                                   // no prefix
      message({static_cast<WireType>(99), 0, 0, 0, 0}, {}),         // unknown type
      message({WireType::kEager, 0, 200, 0, 0}, bytes(300, 0)),     // header > kMaxHeader
      message({WireType::kEager, 0, 10, 0, 0}, bytes(5, 0)),        // header beyond the end
      message({WireType::kEager, 0, 0, 0, 99}, bytes(5, 0)),        // payload size lies
      message({WireType::kAnnounce, 0, 0, 0, 5}, {}),               // no parts
      message({WireType::kAnnounce, 65, 0, 0, 5}, bytes(65 * 8, 0)),  // too many parts
      message({WireType::kAnnounce, 1, 0, 0, 5}, bytes(8, 0)),      // parts do not add up
      message({WireType::kHello, 0, 0, 0, 4}, bytes(4, 0)),         // short hello
      message({WireType::kWelcome, 0, 0, 0, 3}, bytes(3, 0)),       // short welcome
      message({WireType::kBye, 0, 0, 0, 0}, bytes(1, 0)),           // bye with a body
      message({WireType::kClear, 0, 0, 7, 0}, bytes(1, 0)),         // clear to send with a body
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    auto d = decode(bad[i].data(), bad[i].size());
    ASSERT_FALSE(d.is_ok()) << "case " << i;
    EXPECT_EQ(d.status().code(), Errc::kProtocolError) << "case " << i;
  }
  // A hello whose address length runs past the end.
  WireHello h{1, 1, 1, 1000, 1};
  std::vector<std::byte> body(sizeof h + 10);
  std::memcpy(body.data(), &h, sizeof h);
  auto hello = message({WireType::kHello, 0, 0, 0, body.size()}, body);
  EXPECT_FALSE(decode(hello.data(), hello.size()).is_ok());
}

}  // namespace
}  // namespace cohort::transport::ofi
