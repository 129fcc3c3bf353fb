#include "transport/shm/shm_ring.hpp"

#include <cstring>

#include "transport/transport.hpp"

namespace cohort::transport::shm {

namespace {

struct RecordHeader {
  Word<std::uint64_t> stamp;
  std::uint32_t length;
  std::uint8_t kind;
  std::uint8_t header_size;
  std::uint16_t reserved;
};
static_assert(sizeof(RecordHeader) == kRecordHeader);

constexpr std::uint64_t align_line(std::uint64_t v) {
  return (v + kLine - 1) & ~std::uint64_t{kLine - 1};
}

inline RecordHeader* at(std::byte* base, std::uint64_t offset) {
  return reinterpret_cast<RecordHeader*>(base + offset);
}

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

bool RingWriter::room(std::size_t need) noexcept {
  if (tail_ + need - head_cache_ <= mask_ + 1) return true;
  head_cache_ = head_->load(std::memory_order_acquire);
  return tail_ + need - head_cache_ <= mask_ + 1;
}

bool RingWriter::has_room(std::size_t body) noexcept {
  std::uint64_t len = align_line(kRecordHeader + body);
  std::uint64_t to_end = mask_ + 1 - (tail_ & mask_);
  std::uint64_t pad = len > to_end ? to_end : 0;
  head_cache_ = head_->load(std::memory_order_acquire);
  return tail_ + pad + len + kLine - head_cache_ <= mask_ + 1;
}

std::byte* RingWriter::reserve(std::size_t body) noexcept {
  const std::uint64_t len = kRecordHeader + body;
  const std::uint64_t aligned = align_line(len);
  std::uint64_t to_end = mask_ + 1 - (tail_ & mask_);
  std::uint64_t pad = aligned > to_end ? to_end : 0;
  // The extra line keeps the stamp word of the next position in free space.
  if (!room(pad + aligned + kLine)) return nullptr;
  if (pad != 0) {
    // Zero the stamp at the array's start (the next position) before the
    // padding record that leads there is published.
    at(base_, 0)->stamp.store(0, std::memory_order_relaxed);
    RecordHeader* h = at(base_, tail_ & mask_);
    h->length = static_cast<std::uint32_t>(pad);
    h->kind = static_cast<std::uint8_t>(RecordKind::kPad);
    h->header_size = 0;
    h->stamp.store(tail_ + 1, std::memory_order_release);
    tail_ += pad;
  }
  reserved_pos_ = tail_;
  reserved_len_ = static_cast<std::uint32_t>(len);
  return base_ + (tail_ & mask_) + kRecordHeader;
}

void RingWriter::publish(RecordKind kind, std::size_t header_size) noexcept {
  const std::uint64_t next = reserved_pos_ + align_line(reserved_len_);
  at(base_, next & mask_)->stamp.store(0, std::memory_order_relaxed);
  RecordHeader* h = at(base_, reserved_pos_ & mask_);
  h->length = reserved_len_;
  h->kind = static_cast<std::uint8_t>(kind);
  h->header_size = static_cast<std::uint8_t>(header_size);
  h->stamp.store(reserved_pos_ + 1, std::memory_order_seq_cst);
  tail_ = next;
}

// ---- reader -----------------------------------------------------------------

void RingReader::attach(const std::byte* base, std::size_t capacity,
                        Word<std::uint64_t>* head) noexcept {
  base_ = base;
  capacity_ = capacity;
  head_ = head;
  pos_ = released_ = head->load();
}

bool RingReader::ready() const noexcept {
  const auto* h = reinterpret_cast<const RecordHeader*>(base_ + (pos_ & (capacity_ - 1)));
  return h->stamp.load(std::memory_order_acquire) == pos_ + 1;
}

RingReader::Peek RingReader::peek(Record& out) noexcept {
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

bool RingReader::release() noexcept {
  if (pos_ == released_) return false;
  released_ = pos_;
  head_->store(pos_, std::memory_order_seq_cst);
  return true;
}

}  // namespace cohort::transport::shm
