// Typed packing: round trips of every type, arrays, strings, errors, and
// "receiver makes right" for a sender of the other byte order.
#include <cohort/message.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <functional>
#include <limits>

namespace cohort {
namespace {

template <class T>
void round_trip(T v) {
  Message m;
  m << v;
  EXPECT_EQ(m.unpack<T>(), v);
  EXPECT_TRUE(m.at_end());
}

Errc errc_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.errc();
  }
  return Errc::kOk;
}

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

TEST(Message, ScalarsRoundTrip) {
  round_trip<std::int8_t>(-5);
  round_trip<std::uint8_t>(250);
  round_trip<std::int16_t>(-30000);
  round_trip<std::uint16_t>(65000);
  round_trip<std::int32_t>(std::numeric_limits<std::int32_t>::min());
  round_trip<std::uint32_t>(4000000000u);
  round_trip<std::int64_t>(std::numeric_limits<std::int64_t>::min());
  round_trip<std::uint64_t>(std::numeric_limits<std::uint64_t>::max());
  round_trip<float>(3.25f);
  round_trip<double>(-1e300);
  round_trip<bool>(true);
  round_trip<bool>(false);
  round_trip<char>('x');
  round_trip<long long>(-1234567890123LL);
  round_trip<unsigned long long>(1234567890123ULL);
}

TEST(Message, MixedSequenceWithStreams) {
  Message m;
  m << std::int32_t{42} << 3.5 << std::string("hello") << "literal" << true;
  std::int32_t n;
  double x;
  std::string s, t;
  bool b;
  m >> n >> x >> s >> t >> b;
  EXPECT_EQ(n, 42);
  EXPECT_EQ(x, 3.5);
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(t, "literal");
  EXPECT_TRUE(b);
  EXPECT_TRUE(m.at_end());
  m.rewind();
  EXPECT_EQ(m.unpack<std::int32_t>(), 42);
}

TEST(Message, LongAndLongLongShareTheSixtyFourBitCode) {
  Message m;
  m << 7L << 8LL;
  EXPECT_EQ(m.unpack<long long>(), 7);
  EXPECT_EQ(m.unpack<long>(), 8);
}

template <class T>
void array_round_trip(std::vector<T> v) {
  Message m;
  m.pack(std::span<const T>(v));
  m << v;
  EXPECT_EQ(m.unpack_vector<T>(), v);
  std::vector<T> out(v.size());
  m.unpack(std::span<T>(out));
  EXPECT_EQ(out, v);
  EXPECT_TRUE(m.at_end());
}

TEST(Message, ArraysOfEveryType) {
  array_round_trip<std::int8_t>({-1, 2, -3});
  array_round_trip<std::uint8_t>({1, 2, 255});
  array_round_trip<std::int16_t>({-1000, 1000});
  array_round_trip<std::uint16_t>({1, 65535});
  array_round_trip<std::int32_t>({1, -2, 3, -4});
  array_round_trip<std::uint32_t>({7, 8});
  array_round_trip<std::int64_t>({-1, 1LL << 40});
  array_round_trip<std::uint64_t>({~0ULL, 0});
  array_round_trip<float>({1.5f, -2.5f});
  array_round_trip<double>({0.1, 0.2, 0.3});
  array_round_trip<char>({'a', 'b'});
  array_round_trip<std::int32_t>({});  // empty array
}

TEST(Message, MutableSpansAndCArrays) {
  double a[3] = {1, 2, 3};
  Message m;
  m.pack(std::span<double>(a));
  m << std::span<double>(a);
  EXPECT_EQ(m.unpack_vector<double>(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(m.unpack<std::vector<double>>(), (std::vector<double>{1, 2, 3}));
}

TEST(Message, BoolArrays) {
  std::vector<bool> v{true, false, true, true};
  Message m;
  m << v;
  EXPECT_EQ(m.unpack_vector<bool>(), v);
  bool arr[3] = {false, true, false};
  m.pack(std::span<const bool>(arr));
  bool out[3] = {};
  m.unpack(std::span<bool>(out));
  EXPECT_FALSE(out[0]);
  EXPECT_TRUE(out[1]);
}

TEST(Message, StringsBytesAndStringArrays) {
  Message m;
  std::vector<std::byte> blob{std::byte{0}, std::byte{0xff}, std::byte{7}};
  std::vector<std::string> names{"a", "", "cohort"};
  m << std::string() << std::string("x\0y", 3);
  m.pack_bytes(blob);
  m << names;
  EXPECT_EQ(m.unpack<std::string>(), "");
  EXPECT_EQ(m.unpack_string(), std::string("x\0y", 3));
  EXPECT_EQ(m.unpack_bytes(), blob);
  EXPECT_EQ(m.unpack<std::vector<std::string>>(), names);
  EXPECT_TRUE(m.at_end());
}

TEST(Message, UnpackObjectTypes) {
  Message m;
  std::vector<double> v{1, 2, 3};
  m << v << std::string("s");
  EXPECT_EQ(m.unpack<std::vector<double>>(), v);
  EXPECT_EQ(m.unpack<std::string>(), "s");
}

TEST(Message, PastTheEndIsTruncated) {
  Message m;
  m << std::int32_t{1};
  (void)m.unpack<std::int32_t>();
  EXPECT_EQ(errc_of([&] { (void)m.unpack<std::int32_t>(); }), Errc::kTruncated);
}

TEST(Message, TruncatedBufferIsTruncated) {
  Message m;
  m << std::int64_t{1} << std::vector<double>{1, 2, 3} << std::string("abcdef");
  const auto full = m.storage();
  // Every proper prefix that cuts into an item fails with kTruncated, never garbage.
  for (std::size_t cut = 1; cut < full.size(); ++cut) {
    Message t;
    t.storage().assign(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    Errc e = errc_of([&] {
      (void)t.unpack<std::int64_t>();
      (void)t.unpack_vector<double>();
      (void)t.unpack_string();
    });
    EXPECT_EQ(e, Errc::kTruncated) << "cut at " << cut;
  }
}

TEST(Message, HugeCountDoesNotAllocate) {
  Message m;
  m << std::vector<double>{1.0};
  auto& s = m.storage();
  const std::uint32_t huge = 0x7fffffff;
  std::memcpy(s.data() + 1, &huge, sizeof huge);
  EXPECT_EQ(errc_of([&] { (void)m.unpack_vector<double>(); }), Errc::kTruncated);
}

TEST(Message, WrongTypeIsAMismatchAndKeepsThePosition) {
  Message m;
  m << std::int32_t{9};
  std::string what = what_of([&] { (void)m.unpack<double>(); });
  EXPECT_NE(what.find("expected double"), std::string::npos) << what;
  EXPECT_NE(what.find("found int32"), std::string::npos) << what;
  EXPECT_EQ(errc_of([&] { (void)m.unpack<std::uint32_t>(); }), Errc::kTypeMismatch);
  EXPECT_EQ(errc_of([&] { (void)m.unpack_string(); }), Errc::kTypeMismatch);
  EXPECT_EQ(m.unpack<std::int32_t>(), 9);  // still there
}

TEST(Message, ArrayAndScalarDoNotMix) {
  Message m;
  m << std::vector<std::int32_t>{1, 2};
  std::string what = what_of([&] { (void)m.unpack<std::int32_t>(); });
  EXPECT_NE(what.find("found int32 array"), std::string::npos) << what;
  m << std::int32_t{3};
  (void)m.unpack_vector<std::int32_t>();
  EXPECT_EQ(errc_of([&] { (void)m.unpack_vector<std::int32_t>(); }), Errc::kTypeMismatch);
}

TEST(Message, ArrayCountMismatch) {
  Message m;
  m << std::vector<std::int32_t>{1, 2, 3};
  std::int32_t two[2];
  std::string what = what_of([&] { m.unpack(std::span<std::int32_t>(two)); });
  EXPECT_NE(what.find("3 elements"), std::string::npos) << what;
  EXPECT_EQ(errc_of([&] { m.unpack(std::span<std::int32_t>(two)); }), Errc::kTypeMismatch);
  std::int32_t three[3];
  m.unpack(std::span<std::int32_t>(three));
  EXPECT_EQ(three[2], 3);
}

TEST(Message, RawMessagesCannotBeUnpacked) {
  Message m;
  m.storage().assign(4, std::byte{1});
  m.set_received(0x100001, 1, /*raw=*/true, false);
  EXPECT_TRUE(m.is_raw());
  EXPECT_EQ(errc_of([&] { (void)m.unpack<std::int32_t>(); }), Errc::kTypeMismatch);
  EXPECT_EQ(m.bytes().size(), 4u);
}

// ---- a sender of the other byte order ----

void put(std::vector<std::byte>& b, std::initializer_list<int> bytes) {
  for (int x : bytes) b.push_back(std::byte(static_cast<unsigned char>(x)));
}

/// The bytes a sender of the opposite byte order would produce for `v`.
template <class T>
void put_foreign(std::vector<std::byte>& b, T v) {
  auto u = detail::byteswap_any(v);
  const auto* p = reinterpret_cast<const std::byte*>(&u);
  b.insert(b.end(), p, p + sizeof u);
}

TEST(Message, ForeignByteOrderIsConverted) {
  Message m;
  auto& b = m.storage();
  put(b, {static_cast<int>(PackType::kInt32)});
  put_foreign<std::int32_t>(b, -123456);
  put(b, {static_cast<int>(PackType::kUint16)});
  put_foreign<std::uint16_t>(b, 0x1234);
  put(b, {static_cast<int>(PackType::kDouble)});
  put_foreign<double>(b, 2.75);
  put(b, {static_cast<int>(PackType::kFloat) | kArrayBit});
  put_foreign<std::uint32_t>(b, 2);
  put_foreign<float>(b, 1.5f);
  put_foreign<float>(b, -8.0f);
  put(b, {static_cast<int>(PackType::kString)});
  put_foreign<std::uint32_t>(b, 3);
  put(b, {'a', 'b', 'c'});
  put(b, {static_cast<int>(PackType::kInt64) | kArrayBit});
  put_foreign<std::uint32_t>(b, 1);
  put_foreign<std::int64_t>(b, 1LL << 50);
  put(b, {static_cast<int>(PackType::kBool)});
  put(b, {1});
  m.set_received(0x100002, 5, /*raw=*/false, /*foreign_order=*/true);

  EXPECT_EQ(m.unpack<std::int32_t>(), -123456);
  EXPECT_EQ(m.unpack<std::uint16_t>(), 0x1234);
  EXPECT_EQ(m.unpack<double>(), 2.75);
  EXPECT_EQ(m.unpack_vector<float>(), (std::vector<float>{1.5f, -8.0f}));
  EXPECT_EQ(m.unpack_string(), "abc");
  std::int64_t one[1];
  m.unpack(std::span<std::int64_t>(one));
  EXPECT_EQ(one[0], 1LL << 50);
  EXPECT_TRUE(m.unpack<bool>());
  EXPECT_TRUE(m.at_end());
}

TEST(Message, BigEndianSenderBytesExactly) {
  // What an s390x sender writes for pack(std::int32_t{0x01020304}).
  Message m;
  put(m.storage(), {static_cast<int>(PackType::kInt32), 0x01, 0x02, 0x03, 0x04});
  m.set_received(0x100003, 0, false, /*foreign_order=*/std::endian::native == std::endian::little);
  EXPECT_EQ(m.unpack<std::int32_t>(), 0x01020304);
}

}  // namespace
}  // namespace cohort
