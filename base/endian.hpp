// base/endian.hpp — byte order helpers for wire formats and "receiver makes right".
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace cohort {

inline constexpr bool kLittleEndian = std::endian::native == std::endian::little;

constexpr std::uint16_t byteswap16(std::uint16_t v) noexcept { return __builtin_bswap16(v); }
constexpr std::uint32_t byteswap32(std::uint32_t v) noexcept { return __builtin_bswap32(v); }
constexpr std::uint64_t byteswap64(std::uint64_t v) noexcept { return __builtin_bswap64(v); }

/// Store/load an unsigned integer in little-endian order (the control plane's order).
template <class U>
inline void store_le(void* dst, U v) noexcept {
  if constexpr (!kLittleEndian) {
    if constexpr (sizeof(U) == 2) v = byteswap16(v);
    if constexpr (sizeof(U) == 4) v = byteswap32(v);
    if constexpr (sizeof(U) == 8) v = byteswap64(v);
  }
  std::memcpy(dst, &v, sizeof v);
}
template <class U>
inline U load_le(const void* src) noexcept {
  U v;
  std::memcpy(&v, src, sizeof v);
  if constexpr (!kLittleEndian) {
    if constexpr (sizeof(U) == 2) v = byteswap16(v);
    if constexpr (sizeof(U) == 4) v = byteswap32(v);
    if constexpr (sizeof(U) == 8) v = byteswap64(v);
  }
  return v;
}

}  // namespace cohort
