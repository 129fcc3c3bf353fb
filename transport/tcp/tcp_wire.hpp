// transport/tcp/tcp_wire.hpp — the byte layout of a TCP connection.
//
// A connection carries frames. Each frame is a 16-byte prefix, then the header,
// then the payload; all integers little-endian:
//
//   offset 0  u8   magic 0xC5 (also the wire version; catches a foreign stream)
//          1  u8   flags: bit 0 = hello frame, other bits must be 0
//          2  u16  header length (<= kMaxHeader)
//          4  u32  reserved, 0
//          8  u64  payload length (<= kMaxWirePayload)
//
// The connecting side sends one hello frame first (no header, payload = the
// EndpointOptions::hello bytes, <= kMaxHello); the accepting side sends none.
// Anything else is a protocol error and the connection is dropped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.hpp"

namespace cohort::transport::tcp {

inline constexpr std::size_t kPrefixSize = 16;
inline constexpr std::uint8_t kMagic = 0xC5;
inline constexpr std::uint8_t kFlagHello = 0x01;
/// Larger declared payloads are nonsense (1 TiB), not a big message.
inline constexpr std::uint64_t kMaxWirePayload = std::uint64_t{1} << 40;

struct Prefix {
  std::uint8_t flags = 0;
  std::uint16_t header_size = 0;
  std::uint64_t payload_size = 0;

  bool hello() const noexcept { return (flags & kFlagHello) != 0; }
};

/// Writes the kPrefixSize bytes of `p` to `out`.
void encode_prefix(const Prefix& p, std::byte* out) noexcept;

/// Reads and validates kPrefixSize bytes. On nonsense returns kProtocolError
/// saying what was wrong; `p` is then unspecified.
Status decode_prefix(const std::byte* in, Prefix& p);

}  // namespace cohort::transport::tcp
