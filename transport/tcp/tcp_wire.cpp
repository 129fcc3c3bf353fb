#include "transport/tcp/tcp_wire.hpp"

#include <string>

#include "base/endian.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::tcp {

void encode_prefix(const Prefix& p, std::byte* out) noexcept {
  out[0] = std::byte{kMagic};
  out[1] = std::byte{p.flags};
  store_le<std::uint16_t>(out + 2, p.header_size);
  store_le<std::uint32_t>(out + 4, 0);
  store_le<std::uint64_t>(out + 8, p.payload_size);
}

Status decode_prefix(const std::byte* in, Prefix& p) {
  // Checked in order of how cheaply they catch a stream that is not ours.
  if (in[0] != std::byte{kMagic})
    return Status(Errc::kProtocolError, "bad frame magic 0x" +
                                            std::to_string(std::to_integer<unsigned>(in[0])) +
                                            " (not a cohort tcp stream, or a different version)");
  p.flags = std::to_integer<std::uint8_t>(in[1]);
  p.header_size = load_le<std::uint16_t>(in + 2);
  p.payload_size = load_le<std::uint64_t>(in + 8);
  if ((p.flags & ~kFlagHello) != 0)
    return Status(Errc::kProtocolError, "unknown frame flags " + std::to_string(p.flags));
  if (load_le<std::uint32_t>(in + 4) != 0)
    return Status(Errc::kProtocolError, "reserved prefix bits set");
  if (p.header_size > kMaxHeader)
    return Status(Errc::kProtocolError, "frame header of " + std::to_string(p.header_size) +
                                            " bytes exceeds " + std::to_string(kMaxHeader));
  if (p.payload_size > kMaxWirePayload)
    return Status(Errc::kProtocolError,
                  "frame payload of " + std::to_string(p.payload_size) + " bytes is absurd");
  return Status();
}

}  // namespace cohort::transport::tcp
