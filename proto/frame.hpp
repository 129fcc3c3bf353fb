// proto/frame.hpp — the control-plane frame: an 8-byte header and a body.
//
//   u32 body length | u16 message type | u8 protocol version | u8 flags (0)
//
// all little-endian, followed by the body encoded with proto/codec.hpp. Used on
// the task<->daemon Unix socket (and later daemon<->daemon TCP links). A peer
// that sends a bad header — too long, unknown type, wrong version — is
// dropped; nothing it sent is acted on.
#pragma once

#include "base/status.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace cohort::proto {

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::size_t kMaxBody = 16u << 20;

struct FrameView {
  MsgType type;
  std::span<const std::byte> body;
};

/// Encode `msg` as a whole frame (header + body), appended to `out`.
template <class M>
void encode(const M& msg, std::vector<std::byte>& out) {
  std::size_t start = out.size();
  out.resize(start + kHeaderSize);
  Writer w(out);
  w(msg);
  std::size_t body = out.size() - start - kHeaderSize;
  store_le<std::uint32_t>(out.data() + start, static_cast<std::uint32_t>(body));
  store_le<std::uint16_t>(out.data() + start + 4, static_cast<std::uint16_t>(M::kType));
  out[start + 6] = std::byte{kProtocolVersion};
  out[start + 7] = std::byte{0};
}
template <class M>
std::vector<std::byte> encode(const M& msg) {
  std::vector<std::byte> out;
  encode(msg, out);
  return out;
}

/// Decode a body of type M; kProtocolError with a reason on any mismatch.
template <class M>
Status decode(std::span<const std::byte> body, M& out) {
  Reader r(body);
  r(out);
  Status s = r.finish();
  if (!s.is_ok()) s.with_context(std::string("decoding ") + std::string(msg_type_name(M::kType)));
  return s;
}

/// Accumulates bytes from a stream socket and cuts them into frames.
class FrameBuffer {
 public:
  /// Space to read into: at least `min` bytes.
  std::span<std::byte> prepare(std::size_t min = 4096);
  void commit(std::size_t n) { end_ += n; }
  /// The next whole frame, std::nullopt if more bytes are needed, or
  /// kProtocolError for a header that can never be valid. The view is valid
  /// until the next call to prepare() or next().
  Result<std::optional<FrameView>> next();
  bool empty() const { return begin_ == end_; }

 private:
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

/// Blocking helpers for a client socket (the library and the launcher).
Status write_frame(int fd, std::span<const std::byte> frame);
template <class M>
Status send_msg(int fd, const M& msg) {
  auto f = encode(msg);
  return write_frame(fd, f);
}

}  // namespace cohort::proto
