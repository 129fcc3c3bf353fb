#include "transport/shm/shm_ring.hpp"

#include <cstddef>
#include <cstring>

#include "transport/transport.hpp"

namespace cohort::transport::shm {

using detail::align_line;
using detail::RecordHeader;

namespace {
inline RecordHeader* at(std::byte* base, std::uint64_t offset) { return detail::record_at(base, offset); }
}  // namespace

// ---- writer -----------------------------------------------------------------

void RingWriter::attach(std::byte* base, std::size_t capacity,
                        const Word<std::uint64_t>* head) noexcept {
  base_ = base;
  mask_ = capacity - 1;
  head_ = head;
  tail_ = head_cache_ = head->load();
}

bool RingWriter::fits(std::size_t body) const noexcept {
  // Worst case on an empty ring: padding of almost one record, the record,
  // and the line of slack.
  std::uint64_t len = align_line(kRecordHeader + body);
  return 2 * len + kLine <= mask_ + 1;
}

bool RingWriter::has_room(std::size_t body) noexcept {
  std::uint64_t len = align_line(kRecordHeader + body);
  std::uint64_t to_end = mask_ + 1 - (tail_ & mask_);
  std::uint64_t pad = len > to_end ? to_end : 0;
  head_cache_ = head_->load(std::memory_order_acquire);
  return tail_ + pad + len + kLine - head_cache_ <= mask_ + 1;
}

std::byte* RingWriter::reserve_after_padding(std::uint64_t len, std::uint64_t to_end) noexcept {
  const std::uint64_t aligned = align_line(len);
  if (!room(to_end + aligned + kLine)) return nullptr;
  // Zero the stamp at the array's start (the next position) before the
  // padding record that leads there is published.
  at(base_, 0)->stamp.store(0, std::memory_order_relaxed);
  RecordHeader* h = at(base_, tail_ & mask_);
  h->length = static_cast<std::uint32_t>(to_end);
  h->kind = static_cast<std::uint8_t>(RecordKind::kPad);
  h->header_size = 0;
  h->stamp.store(tail_ + 1, std::memory_order_release);
  tail_ += to_end;
  reserved_pos_ = tail_;
  reserved_len_ = static_cast<std::uint32_t>(len);
  return base_ + (tail_ & mask_) + kRecordHeader;
}

// ---- reader -----------------------------------------------------------------

void RingReader::attach(const std::byte* base, std::size_t capacity,
                        Word<std::uint64_t>* head) noexcept {
  base_ = base;
  capacity_ = capacity;
  head_ = head;
  pos_ = released_ = head->load();
}

RingReader::Peek RingReader::peek_other(Record& out) noexcept {
  for (;;) {
    const std::uint64_t offset = pos_ & (capacity_ - 1);
    const auto* h = reinterpret_cast<const RecordHeader*>(base_ + offset);
    if (h->stamp.load(std::memory_order_acquire) != pos_ + 1) return Peek::kEmpty;
    // Each field is read once: the writer (or a broken peer) could change it.
    const std::uint32_t length = h->length;
    const std::uint8_t kind = h->kind;
    const std::size_t header_size = h->header_size;
    const std::uint64_t to_end = capacity_ - offset;
    if (length < kRecordHeader || length > to_end) return Peek::kBad;
    if (kind == static_cast<std::uint8_t>(RecordKind::kPad)) {
      if (length != to_end) return Peek::kBad;
      pos_ += to_end;
      continue;
    }
    if (kind != static_cast<std::uint8_t>(RecordKind::kEager) &&
        kind != static_cast<std::uint8_t>(RecordKind::kAnnounce))
      return Peek::kBad;
    if (header_size > kMaxHeader || kRecordHeader + header_size > length) return Peek::kBad;
    const std::byte* p = base_ + offset + kRecordHeader;
    out.kind = static_cast<RecordKind>(kind);
    out.header = {p, header_size};
    out.body = {p + header_size, length - kRecordHeader - header_size};
    current_ = align_line(length);
    return Peek::kRecord;
  }
}

}  // namespace cohort::transport::shm
