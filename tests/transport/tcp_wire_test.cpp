// The tcp frame prefix: layout and validation.
#include <gtest/gtest.h>

#include "transport/tcp/tcp_wire.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::tcp {
namespace {

TEST(TcpWire, RoundTripAndLittleEndianLayout) {
  std::byte b[kPrefixSize];
  encode_prefix({kFlagHello, 0x0102, 0x0a0b0c0d0e0f1011ull}, b);
  EXPECT_EQ(b[0], std::byte{kMagic});
  EXPECT_EQ(b[1], std::byte{kFlagHello});
  EXPECT_EQ(b[2], std::byte{0x02});
  EXPECT_EQ(b[3], std::byte{0x01});
  EXPECT_EQ(b[8], std::byte{0x11});
  EXPECT_EQ(b[15], std::byte{0x0a});
  Prefix p;
  // 0x0102 exceeds kMaxHeader, so decode must refuse it; a legal header decodes.
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0, 17, 12345}, b);
  ASSERT_TRUE(decode_prefix(b, p).is_ok());
  EXPECT_EQ(p.flags, 0);
  EXPECT_EQ(p.header_size, 17);
  EXPECT_EQ(p.payload_size, 12345u);
  EXPECT_FALSE(p.hello());
}

TEST(TcpWire, RejectsNonsense) {
  std::byte b[kPrefixSize];
  Prefix p;
  encode_prefix({0, 0, 0}, b);
  b[0] = std::byte{'G'};
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0x80, 0, 0}, b);
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0, 0, 0}, b);
  b[5] = std::byte{1};
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0, kMaxHeader + 1, 0}, b);
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0, kMaxHeader, kMaxWirePayload + 1}, b);
  EXPECT_EQ(decode_prefix(b, p).code(), Errc::kProtocolError);
  encode_prefix({0, kMaxHeader, kMaxWirePayload}, b);
  EXPECT_TRUE(decode_prefix(b, p).is_ok());
}

}  // namespace
}  // namespace cohort::transport::tcp
