#include "proto/frame.hpp"

#include <cstring>

#include "base/fd.hpp"

namespace cohort::proto {

std::string_view msg_type_name(MsgType t) noexcept {
  switch (t) {
#define COHORT_PROTO_NAME(name, num) \
  case MsgType::k##name:             \
    return #name;
    COHORT_PROTO_MESSAGES(COHORT_PROTO_NAME)
#undef COHORT_PROTO_NAME
  }
  return "unknown";
}

bool msg_type_known(std::uint16_t t) noexcept {
  switch (t) {
#define COHORT_PROTO_NUM(name, num) case num:
    COHORT_PROTO_MESSAGES(COHORT_PROTO_NUM)
#undef COHORT_PROTO_NUM
    return true;
    default:
      return false;
  }
}

std::span<std::byte> FrameBuffer::prepare(std::size_t min) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ < min) {
    // Slide the unread part to the front before growing.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min) buf_.resize(end_ + std::max(min, buf_.size()));
  }
  return {buf_.data() + end_, buf_.size() - end_};
}

Result<std::optional<FrameView>> FrameBuffer::next() {
  std::size_t avail = end_ - begin_;
  if (avail < kHeaderSize) return std::optional<FrameView>();
  const std::byte* h = buf_.data() + begin_;
  std::uint32_t len = load_le<std::uint32_t>(h);
  std::uint16_t type = load_le<std::uint16_t>(h + 4);
  auto version = static_cast<std::uint8_t>(h[6]);
  if (version != kProtocolVersion)
    return Status(Errc::kProtocolError, "frame of protocol version " + std::to_string(version) +
                                            ", expected " + std::to_string(kProtocolVersion));
  if (!msg_type_known(type))
    return Status(Errc::kProtocolError, "unknown message type " + std::to_string(type));
  if (len > kMaxBody)
    return Status(Errc::kProtocolError, "frame body of " + std::to_string(len) + " bytes exceeds the limit");
  if (avail < kHeaderSize + len) return std::optional<FrameView>();
  FrameView v{static_cast<MsgType>(type), {h + kHeaderSize, len}};
  begin_ += kHeaderSize + len;
  return std::optional<FrameView>(v);
}

Status write_frame(int fd, std::span<const std::byte> frame) {
  return write_all(fd, frame.data(), frame.size());
}

}  // namespace cohort::proto
