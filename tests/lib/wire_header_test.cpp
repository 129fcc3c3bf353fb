// The data-plane message header: explicit little-endian layout, bounds checks.
#include "lib/src/wire_header.hpp"

#include <gtest/gtest.h>

namespace cohort::lib {
namespace {

TEST(WireHeader, RoundTrip) {
  WireHeader h;
  h.flags = kFlagRaw | kFlagBigEndian;
  h.source = tid::make(3, 17);
  h.tag = -7;
  h.context = 0xdeadbeef;
  WireBytes b;
  encode(h, b);
  WireHeader d;
  ASSERT_TRUE(decode(b, d).is_ok());
  EXPECT_EQ(d.flags, h.flags);
  EXPECT_EQ(d.source, h.source);
  EXPECT_EQ(d.tag, h.tag);
  EXPECT_EQ(d.context, h.context);
  EXPECT_TRUE(d.raw());
}

TEST(WireHeader, LayoutIsLittleEndianAtFixedOffsets) {
  WireHeader h;
  h.flags = kFlagBigEndian;
  h.source = 0x01020304;
  h.tag = 0x0a0b0c0d;
  h.context = 0x11121314;
  WireBytes b;
  encode(h, b);
  auto at = [&](std::size_t i) { return static_cast<unsigned>(b[i]); };
  EXPECT_EQ(at(0), kWireVersion);
  EXPECT_EQ(at(1), kFlagBigEndian);
  EXPECT_EQ(at(2), 0u);
  EXPECT_EQ(at(3), 0u);
  EXPECT_EQ(at(4), 0x04u);
  EXPECT_EQ(at(7), 0x01u);
  EXPECT_EQ(at(8), 0x0du);
  EXPECT_EQ(at(11), 0x0au);
  EXPECT_EQ(at(12), 0x14u);
  EXPECT_EQ(at(15), 0x11u);
  static_assert(kWireHeaderSize == 16);
}

TEST(WireHeader, ByteOrderFlag) {
  WireHeader h;
  h.flags = kNativeOrderFlag;
  EXPECT_FALSE(h.foreign_order());
  h.flags = kNativeOrderFlag ^ kFlagBigEndian;
  EXPECT_TRUE(h.foreign_order());
  EXPECT_FALSE(h.raw());
}

TEST(WireHeader, RejectsShortAndForeignVersions) {
  WireBytes b;
  encode(WireHeader{}, b);
  WireHeader d;
  EXPECT_EQ(decode(std::span<const std::byte>(b).first(kWireHeaderSize - 1), d).code(),
            Errc::kProtocolError);
  b[0] = std::byte{99};
  Status st = decode(b, d);
  EXPECT_EQ(st.code(), Errc::kProtocolError);
  EXPECT_NE(st.message().find("version 99"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace cohort::lib
