// lib/src/wire_header.hpp — the data-plane message header at the front of each
// transport frame (Frame::header); the payload follows as the frame's payload.
//
// 16 bytes, every field little-endian whatever the host (the header is read
// before anyone knows the sender's order); the payload itself is in the order
// that kFlagBigEndian states:
//
//   off size field
//     0    1 version       kWireVersion; a frame of another version is dropped
//     1    1 flags         kFlagRaw (raw bytes, else packed items), kFlagBigEndian
//     2    2 reserved      0
//     4    4 source tid    checked against the task the connection is with
//     8    4 tag           signed
//    12    4 context       0 = user point-to-point; collectives use others
//
// No destination and no size: a connection ends at one task's endpoint, and
// the transport says how long the payload is. Small enough that a frame with
// a 64-byte payload still fits the short-message paths of the fabrics (UCX
// posix takes 100 bytes with its own 8-byte tag; version 1's 32-byte header did not).
//
// encode() writes into a caller's buffer (on the stack in the send path);
// decode() never trusts its input: short or unknown-version headers are errors.
#pragma once

#include <cohort/tid.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/endian.hpp"
#include "base/status.hpp"

namespace cohort::lib {

inline constexpr std::uint8_t kWireVersion = 2;
inline constexpr std::size_t kWireHeaderSize = 16;

inline constexpr std::uint8_t kFlagRaw = 1u << 0;        ///< raw bytes; else packed items
inline constexpr std::uint8_t kFlagBigEndian = 1u << 1;  ///< payload in big-endian order
/// The flags a message packed on this host carries.
inline constexpr std::uint8_t kNativeOrderFlag = kLittleEndian ? 0 : kFlagBigEndian;

struct WireHeader {
  std::uint8_t flags = 0;
  Tid source = kNoTid;
  std::int32_t tag = 0;
  std::uint32_t context = 0;

  bool raw() const noexcept { return (flags & kFlagRaw) != 0; }
  /// True when the payload's byte order differs from this host's.
  bool foreign_order() const noexcept { return (flags & kFlagBigEndian) != kNativeOrderFlag; }
};

using WireBytes = std::array<std::byte, kWireHeaderSize>;

inline void encode(const WireHeader& h, WireBytes& out) noexcept {
  std::byte* p = out.data();
  p[0] = std::byte{kWireVersion};
  p[1] = std::byte{h.flags};
  store_le<std::uint16_t>(p + 2, 0);
  store_le<std::uint32_t>(p + 4, static_cast<std::uint32_t>(h.source));
  store_le<std::uint32_t>(p + 8, static_cast<std::uint32_t>(h.tag));
  store_le<std::uint32_t>(p + 12, h.context);
}

/// Fills `h` from `in`; false when `in` is not a header this version
/// understands (decode() then says why). The receive path's call.
inline bool parse(std::span<const std::byte> in, WireHeader& h) noexcept {
  if (in.size() != kWireHeaderSize) [[unlikely]]
    return false;
  const std::byte* p = in.data();
  if (static_cast<std::uint8_t>(p[0]) != kWireVersion) [[unlikely]]
    return false;
  h.flags = static_cast<std::uint8_t>(p[1]);
  h.source = static_cast<Tid>(load_le<std::uint32_t>(p + 4));
  h.tag = static_cast<std::int32_t>(load_le<std::uint32_t>(p + 8));
  h.context = load_le<std::uint32_t>(p + 12);
  return true;
}

/// kProtocolError when `in` is not a header this version understands.
inline Status decode(std::span<const std::byte> in, WireHeader& h) {
  if (parse(in, h)) return Status();
  if (in.size() != kWireHeaderSize)
    return Status(Errc::kProtocolError, "message header of " + std::to_string(in.size()) +
                                            " bytes, expected " + std::to_string(kWireHeaderSize));
  const std::byte* p = in.data();
  if (static_cast<std::uint8_t>(p[0]) != kWireVersion)
    return Status(Errc::kProtocolError, "message header version " +
                                            std::to_string(static_cast<int>(p[0])) + ", expected " +
                                            std::to_string(kWireVersion) +
                                            "; are both tasks built from the same cohort release?");
  return Status();
}

}  // namespace cohort::lib
