// cohort/detail/message_impl.hpp — the template half of cohort::Message.
//
// Included at the end of <cohort/message.hpp>; not meant to be included on its own
// (it includes message.hpp first, so it still compiles alone).
//
// Encoding of one item, every number in the SENDER's byte order:
//   u8 type (PackType, | kArrayBit for an array)
//   scalar:        the value (bool as one byte, 0 or 1)
//   array:         u32 count, then count values back to back
//   string, bytes: u32 length, then the bytes
//   string array:  u32 count, then count times (u32 length, bytes)
// Nothing is aligned; values are copied with memcpy. The receiver converts only
// when the message header says the sender's byte order differs from its own.
#pragma once

#include <cohort/message.hpp>

#include <bit>
#include <concepts>
#include <limits>

namespace cohort {

namespace detail {

/// Restores an unpack position when an unpack throws, so that a failed
/// unpack<T>() leaves the message where it was (the caller may try another type).
struct PosGuard {
  std::size_t& pos;
  std::size_t saved;
  bool done = false;
  explicit PosGuard(std::size_t& p) noexcept : pos(p), saved(p) {}
  ~PosGuard() {
    if (!done) pos = saved;
  }
  PosGuard(const PosGuard&) = delete;
  PosGuard& operator=(const PosGuard&) = delete;
};

template <class T>
constexpr T byteswap_any(T v) noexcept {
  if constexpr (sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return std::bit_cast<T>(__builtin_bswap16(std::bit_cast<std::uint16_t>(v)));
  } else if constexpr (sizeof(T) == 4) {
    return std::bit_cast<T>(__builtin_bswap32(std::bit_cast<std::uint32_t>(v)));
  } else {
    static_assert(sizeof(T) == 8);
    return std::bit_cast<T>(__builtin_bswap64(std::bit_cast<std::uint64_t>(v)));
  }
}

}  // namespace detail

template <Packable T>
constexpr PackType Message::type_of() {
  if constexpr (std::is_same_v<T, bool>) {
    return PackType::kBool;
  } else if constexpr (std::is_same_v<T, float>) {
    static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);
    return PackType::kFloat;
  } else if constexpr (std::is_same_v<T, double>) {
    static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559);
    return PackType::kDouble;
  } else if constexpr (std::is_same_v<T, char>) {
    return PackType::kInt8;  // char is a byte-sized integer whatever its signedness here
  } else {
    constexpr bool s = std::is_signed_v<T>;
    if constexpr (sizeof(T) == 1) return s ? PackType::kInt8 : PackType::kUint8;
    if constexpr (sizeof(T) == 2) return s ? PackType::kInt16 : PackType::kUint16;
    if constexpr (sizeof(T) == 4) return s ? PackType::kInt32 : PackType::kUint32;
    if constexpr (sizeof(T) == 8) return s ? PackType::kInt64 : PackType::kUint64;
  }
}

template <class T>
T Message::fix_order(T v) const noexcept {
  return swap_ ? detail::byteswap_any(v) : v;
}

template <Packable T>
Message& Message::pack(T v) {
  put_type(type_of<T>(), false);
  if constexpr (std::is_same_v<T, bool>) {
    const std::uint8_t b = v ? 1 : 0;
    put_raw(&b, 1);
  } else {
    put_raw(&v, sizeof v);
  }
  return *this;
}

template <Packable T>
Message& Message::pack(std::span<const T> values) {
  put_type(type_of<T>(), true);
  put_count(values.size());
  if constexpr (std::is_same_v<T, bool>) {
    std::size_t at = data_.size();
    data_.resize(at + values.size());
    for (std::size_t i = 0; i < values.size(); ++i)
      data_[at + i] = static_cast<std::byte>(values[i] ? 1 : 0);
  } else {
    put_raw(values.data(), values.size_bytes());
  }
  return *this;
}

template <Packable T>
T Message::unpack() {
  detail::PosGuard guard(pos_);
  expect(type_of<T>(), false);
  T v;
  if constexpr (std::is_same_v<T, bool>) {
    std::uint8_t b = 0;
    get_raw(&b, 1);
    v = b != 0;
  } else {
    get_raw(&v, sizeof v);
    v = fix_order(v);
  }
  guard.done = true;
  return v;
}

template <Packable T>
void Message::unpack(std::span<T> out) {
  detail::PosGuard guard(pos_);
  expect(type_of<T>(), true);
  std::uint32_t n = get_count();
  if (n != out.size()) count_mismatch(n, out.size());
  if constexpr (std::is_same_v<T, bool>) {
    need(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = data_[pos_ + i] != std::byte{0};
    pos_ += n;
  } else {
    get_raw(out.data(), out.size_bytes());
    if (swap_)
      for (auto& v : out) v = detail::byteswap_any(v);
  }
  guard.done = true;
}

template <Packable T>
std::vector<T> Message::unpack_vector() {
  detail::PosGuard guard(pos_);
  expect(type_of<T>(), true);
  std::uint32_t n = get_count();
  need(static_cast<std::size_t>(n) *
       (std::is_same_v<T, bool> ? 1 : sizeof(T)));  // before allocating
  std::vector<T> v(n);
  if constexpr (std::is_same_v<T, bool>) {
    for (std::size_t i = 0; i < n; ++i) v[i] = data_[pos_ + i] != std::byte{0};
    pos_ += n;
  } else {
    get_raw(v.data(), n * sizeof(T));
    if (swap_)
      for (auto& x : v) x = detail::byteswap_any(x);
  }
  guard.done = true;
  return v;
}

template <detail::UnpackableObject T>
T Message::unpack() {
  if constexpr (std::is_same_v<T, std::string>) {
    return unpack_string();
  } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
    return unpack_bytes();
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return unpack_strings();
  } else {
    return unpack_vector<typename T::value_type>();
  }
}

}  // namespace cohort
