// cohort/message.hpp — a message buffer with typed packing.
//
// Values are packed in order and unpacked in the same order. Each item carries
// its type, so unpacking the wrong type or past the end throws cohort::Error
// (kTypeMismatch, kTruncated) instead of producing garbage. The sender's byte
// order travels with the message; the receiver converts only when the two
// orders differ ("receiver makes right").
//
//   cohort::Message m;
//   m << std::int32_t{42} << 3.5 << std::string("hello");
//   m.pack(std::span<const double>(v));          // an array, with its length
//   session.send(dest, /*tag=*/7, m);
//
//   cohort::Message r = session.recv(cohort::kAnyTid, 7);
//   auto n = r.unpack<std::int32_t>();
//   double x; std::string s; r >> x >> s;
//   std::vector<double> w = r.unpack_vector<double>();
//   auto t = r.unpack<std::string>();            // also std::vector<T>, std::vector<std::string>
//
// Packable scalars: the fixed-width integers, char (as int8), long long and
// unsigned long long (as 64-bit), float, double, bool. Also strings, byte blobs,
// arrays of every scalar type and arrays of strings.
#pragma once

#include <cohort/error.hpp>
#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace cohort {

/// Type codes of packed items (one byte on the wire; kArrayBit marks an array).
enum class PackType : std::uint8_t {
  kInt8 = 1, kUint8, kInt16, kUint16, kInt32, kUint32, kInt64, kUint64,
  kFloat, kDouble, kBool, kString, kBytes,
};
inline constexpr std::uint8_t kArrayBit = 0x80;

template <class T>
concept Packable = std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> ||
                   std::is_same_v<T, std::int16_t> || std::is_same_v<T, std::uint16_t> ||
                   std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t> ||
                   std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t> ||
                   std::is_same_v<T, float> || std::is_same_v<T, double> ||
                   std::is_same_v<T, bool> || std::is_same_v<T, char> ||
                   std::is_same_v<T, long long> || std::is_same_v<T, unsigned long long>;

namespace detail {
template <class T>
struct IsPackableVector : std::false_type {};
template <Packable T>
struct IsPackableVector<std::vector<T>> : std::true_type {};
/// Non-scalar types that `unpack<T>()` also returns.
template <class T>
concept UnpackableObject = std::is_same_v<T, std::string> ||
                           std::is_same_v<T, std::vector<std::byte>> ||
                           std::is_same_v<T, std::vector<std::string>> ||
                           IsPackableVector<T>::value;
}  // namespace detail

/// Who sent a received message, with which tag, and how many payload bytes.
struct MessageInfo {
  Tid source = kNoTid;
  int tag = 0;
  std::size_t size = 0;
};

class Message {
 public:
  Message() = default;

  // ---- packing ----
  template <Packable T>
  Message& pack(T v);
  template <Packable T>
  Message& pack(std::span<const T> values);
  template <Packable T>
  Message& pack(std::span<T> values) { return pack(std::span<const T>(values)); }
  template <Packable T>
  Message& pack(const std::vector<T>& values) { return pack(std::span<const T>(values)); }
  Message& pack(std::string_view s);
  Message& pack(const std::string& s) { return pack(std::string_view(s)); }
  Message& pack(const char* s) { return pack(std::string_view(s)); }
  /// std::vector<bool> has no contiguous storage; packed as a bool array.
  Message& pack(const std::vector<bool>& values);
  /// An array of strings.
  Message& pack(std::span<const std::string> values);
  Message& pack(const std::vector<std::string>& values) {
    return pack(std::span<const std::string>(values));
  }
  /// Opaque bytes (typed as such; use Session::send(dest, tag, bytes) for raw messages).
  Message& pack_bytes(std::span<const std::byte> bytes);
  Message& pack(std::span<const std::byte> bytes) { return pack_bytes(bytes); }
  Message& pack(const std::vector<std::byte>& bytes) { return pack_bytes(bytes); }

  template <class T>
  Message& operator<<(const T& v) { return pack(v); }

  // ---- unpacking (from the current position) ----
  template <Packable T>
  T unpack();
  /// Unpack an array into `out`, whose size must equal the packed length.
  template <Packable T>
  void unpack(std::span<T> out);
  template <Packable T>
  std::vector<T> unpack_vector();
  /// unpack<std::string>(), unpack<std::vector<double>>(), unpack<std::vector<std::byte>>(), ...
  template <detail::UnpackableObject T>
  T unpack();
  std::string unpack_string();
  std::vector<std::byte> unpack_bytes();
  std::vector<std::string> unpack_strings();

  template <Packable T>
  Message& operator>>(T& v) { v = unpack<T>(); return *this; }
  Message& operator>>(std::string& s) { s = unpack_string(); return *this; }
  template <Packable T>
  Message& operator>>(std::vector<T>& v) { v = unpack_vector<T>(); return *this; }
  Message& operator>>(std::vector<std::string>& v) { v = unpack_strings(); return *this; }
  Message& operator>>(std::vector<std::byte>& v) { v = unpack_bytes(); return *this; }

  /// True when every packed item has been unpacked.
  bool at_end() const noexcept { return pos_ >= data_.size(); }
  /// Start unpacking from the first item again.
  void rewind() noexcept { pos_ = 0; }
  /// Drop the contents (keeps the capacity).
  void clear() noexcept { data_.clear(); pos_ = 0; raw_ = false; }

  // ---- what arrived ----
  Tid source() const noexcept { return source_; }
  int tag() const noexcept { return tag_; }
  MessageInfo info() const noexcept { return {source_, tag_, data_.size()}; }
  /// Payload size in bytes (the packed encoding, or the raw bytes).
  std::size_t size() const noexcept { return data_.size(); }
  /// The payload as bytes: the raw payload of a raw message, or the packed encoding.
  std::span<const std::byte> bytes() const noexcept { return data_; }
  /// True for a message sent as raw bytes (Session::send with a byte span).
  bool is_raw() const noexcept { return raw_; }

  // For the library: the storage and the attributes of a received message.
  std::vector<std::byte>& storage() noexcept { return data_; }
  void set_received(Tid source, int tag, bool raw, bool foreign_order) noexcept {
    source_ = source; tag_ = tag; raw_ = raw; swap_ = foreign_order; pos_ = 0;
  }
  bool foreign_order() const noexcept { return swap_; }

 private:
  void put_type(PackType t, bool array);
  void put_raw(const void* p, std::size_t n);
  void put_count(std::size_t n);              // throws kInvalidArgument past 2^32-1
  void expect(PackType t, bool array);        // throws kTypeMismatch / kTruncated
  std::uint32_t get_count();
  void get_raw(void* p, std::size_t n);
  void need(std::size_t n) const;             // throws kTruncated when fewer bytes remain
  [[noreturn]] void count_mismatch(std::size_t found, std::size_t expected) const;
  template <Packable T>
  static constexpr PackType type_of();
  template <class T>
  T fix_order(T v) const noexcept;

  std::vector<std::byte> data_;
  std::size_t pos_ = 0;
  Tid source_ = kNoTid;
  int tag_ = 0;
  bool raw_ = false;
  bool swap_ = false;          // sender's byte order differs from ours
};

}  // namespace cohort

#include <cohort/detail/message_impl.hpp>
