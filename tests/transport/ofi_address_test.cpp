// ofi addresses: printable, parsed strictly, and what reaches() decides from them.
#include <gtest/gtest.h>

#include <string>

#include "transport/ofi/ofi_address.hpp"
#include "transport/ofi/ofi_transport.hpp"

namespace cohort::transport::ofi {
namespace {

OfiAddress sample() {
  OfiAddress a;
  a.provider = "tcp;ofi_rxm";
  a.fabric = "127.0.0.1/32";
  a.host = "node7:4f1c2a9e";
  a.pid = 4242;
  a.nonce = 0x9c0e12345678abcdull;
  a.eager = 65536;
  a.watch = "127.0.0.1:40123";
  a.name = std::string("\x02\x00\xa3\xf1\x7f\x00\x00\x01\x00\xff", 10);
  return a;
}

TEST(OfiAddress, FormatsPrintablyAndParsesBack) {
  OfiAddress a = sample();
  std::string text = format_address(a);
  for (char c : text) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "unprintable byte in " << text;
  EXPECT_EQ(text.rfind("ofi:tcp;ofi_rxm|127.0.0.1/32|node7:4f1c2a9e|4242|", 0), 0u) << text;
  auto b = parse_address(text);
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->provider, a.provider);
  EXPECT_EQ(b->fabric, a.fabric);
  EXPECT_EQ(b->host, a.host);
  EXPECT_EQ(b->pid, a.pid);
  EXPECT_EQ(b->nonce, a.nonce);
  EXPECT_EQ(b->eager, a.eager);
  EXPECT_EQ(b->watch, a.watch);
  EXPECT_EQ(b->name, a.name);
}

TEST(OfiAddress, RejectsMalformedText) {
  std::string good = format_address(sample());
  auto replace_field = [&](int index, const std::string& with) {
    std::string s = good;
    std::size_t at = s.find(':') + 1;
    for (int i = 0; i < index; ++i) at = s.find('|', at) + 1;
    std::size_t end = s.find('|', at);
    return s.replace(at, end == std::string::npos ? std::string::npos : end - at, with);
  };
  for (const std::string& bad :
       {std::string(""), std::string("tcp:127.0.0.1:5"), std::string("ofi:"),
        good.substr(0, good.rfind('|')),  // a field short
        good + "|extra",                  // a field too many
        replace_field(0, ""),             // no provider
        replace_field(3, "12x"),          // pid
        replace_field(4, "123"),          // nonce length
        replace_field(4, "zzzzzzzzzzzzzzzz"),
        replace_field(5, "lots"),         // eager limit
        replace_field(6, ""),             // watch
        replace_field(7, "abc"),          // odd hex
        replace_field(7, "")}) {
    auto r = parse_address(bad);
    ASSERT_FALSE(r.is_ok()) << "accepted: " << bad;
    EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ofi address"), std::string::npos)
        << r.status().message();
  }
}

TEST(OfiAddress, ReachesComparesProviderFabricAndHost) {
  Transport& t = transport();
  OfiAddress self = sample();
  OfiAddress peer = sample();
  peer.pid = 7;
  peer.nonce = 1;
  peer.host = "node8:4f1c2a9e";  // another host on the same tcp fabric: reachable
  EXPECT_TRUE(t.reaches(format_address(self), format_address(peer)));

  OfiAddress other_fabric = peer;
  other_fabric.fabric = "192.0.2.0/24";
  EXPECT_FALSE(t.reaches(format_address(self), format_address(other_fabric)));
  OfiAddress other_provider = peer;
  other_provider.provider = "verbs;ofi_rxm";
  EXPECT_FALSE(t.reaches(format_address(self), format_address(other_provider)));

  // shm reaches its own host only.
  OfiAddress shm_self = self, shm_peer = peer;
  shm_self.provider = shm_peer.provider = "shm";
  shm_self.fabric = shm_peer.fabric = "shm";
  EXPECT_FALSE(t.reaches(format_address(shm_self), format_address(shm_peer)));
  shm_peer.host = shm_self.host;
  EXPECT_TRUE(t.reaches(format_address(shm_self), format_address(shm_peer)));

  EXPECT_FALSE(t.reaches(format_address(self), "tcp:127.0.0.1:4000"));
  EXPECT_FALSE(t.reaches("garbage", format_address(peer)));
}

TEST(OfiAddress, HexRoundTrip) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  auto back = from_hex(to_hex(bytes));
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, bytes);
  EXPECT_FALSE(from_hex("0g").is_ok());
  EXPECT_FALSE(from_hex("abc").is_ok());
}

}  // namespace
}  // namespace cohort::transport::ofi
