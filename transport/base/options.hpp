// transport/base/options.hpp — limits and option checks shared by every transport.
//
// Each transport calls check_options() in open() and check_frame() in send(),
// so that the same mistakes give the same errors everywhere, and reads its eager
// limit through resolve_eager_limit().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "transport/transport.hpp"

namespace cohort::transport {

/// Eager limit when EndpointOptions::eager_limit is 0.
inline constexpr std::size_t kDefaultEagerLimit = 64 * 1024;
/// Larger eager limits are clamped: every connection buffers one eager frame.
inline constexpr std::size_t kMaxEagerLimit = 16 * 1024 * 1024;
/// Longest EndpointOptions::hello; a peer announcing a longer one is dropped.
inline constexpr std::size_t kMaxHello = 4096;
/// Payload iovecs per send (Caps::max_iov of the transports here).
inline constexpr std::size_t kMaxPayloadIov = 64;

/// The eager limit for `options`: the default for 0, clamped (with one warning
/// line for `subsystem`) to kMaxEagerLimit.
std::size_t resolve_eager_limit(const EndpointOptions& options, std::string_view subsystem);

/// Checks every open() makes: the hello fits kMaxHello.
Status check_options(const EndpointOptions& options);

/// Checks every send() makes; cheap when the frame is fine.
inline Status check_frame(const Frame& frame, std::size_t max_iov) {
  if (frame.header.size() > kMaxHeader) [[unlikely]]
    return Status(Errc::kInvalidArgument, "frame header of " + std::to_string(frame.header.size()) +
                                              " bytes exceeds kMaxHeader (" +
                                              std::to_string(kMaxHeader) + ")");
  if (frame.payload.size() > max_iov) [[unlikely]]
    return Status(Errc::kInvalidArgument, "frame payload has " +
                                              std::to_string(frame.payload.size()) +
                                              " iovecs; this transport takes at most " +
                                              std::to_string(max_iov) + " (caps().max_iov)");
  return Status();
}

/// Total payload bytes of `frame`.
inline std::size_t payload_bytes(const Frame& frame) noexcept {
  std::size_t n = 0;
  for (const iovec& v : frame.payload) n += v.iov_len;
  return n;
}

/// "peer 7 is gone" / "peer 7 is unknown" for send()/receive_payload() on a bad id.
Status bad_peer(PeerId peer, bool known, std::string_view endpoint);

}  // namespace cohort::transport
