// transport/shm/shm_ring.hpp — the single-producer, single-consumer frame ring
// of one direction of a pair (ring d of shm_segment.hpp).
//
// The ring is a power-of-two byte array in shared memory. The writer (the
// sender's process) appends records; the reader (the receiver's process)
// hands them out in place and later releases them. Positions are absolute
// byte counts (they only grow); the offset in the array is position & mask.
//
// A record starts on a cache line and never wraps: one that would cross the
// end is preceded by a padding record that fills the rest of the array.
//
//   +0  u64 stamp        position + 1, stored last: "this record is complete"
//   +8  u32 length       bytes of the record from +0, before padding to 64
//   +12 u8  kind         kPad, kEager (frame header + payload), kAnnounce
//   +13 u8  header_size  the frame header's bytes, right after these 16
//   +14 u16 reserved
//
// Publication without a shared tail counter: the reader polls the stamp of
// the record at its position, so an arrival costs it one cache line (the
// record's own) instead of two (a tail word, then the record). For that to be
// sound the stamp at the writer's position must never hold a stale value that
// happens to look valid, whatever payload bytes an earlier lap left there, so
// the writer zeroes the stamp word of the NEXT position before it publishes a
// record, and keeps one line of slack so that word is always free space.
//
// The reader publishes how far it has read (SideBlock::head) only when it
// releases, at the start of its next poll(): spans into records stay valid
// until then. The writer reads that word only when its cached copy says the
// ring is full.
//
// Threading: each end is used by one thread of one process. The reader treats
// everything in the ring as untrusted and says kBad for a record that cannot be.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "transport/shm/shm_segment.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::shm {

enum class RecordKind : std::uint8_t { kPad = 1, kEager = 2, kAnnounce = 3 };
inline constexpr std::size_t kRecordHeader = 16;

namespace detail {
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
inline RecordHeader* record_at(std::byte* base, std::uint64_t offset) {
  return reinterpret_cast<RecordHeader*>(base + offset);
}
}  // namespace detail

/// The writer's end.
class RingWriter {
 public:
  void attach(std::byte* base, std::size_t capacity, const Word<std::uint64_t>* head) noexcept;

  /// Whether a record with `body` bytes (after its 16-byte header) can ever fit.
  bool fits(std::size_t body) const noexcept;
  /// Where to write the body of a record of `body` bytes, or nullptr when the
  /// ring has no room now. Fill it, then publish(); nothing else in between.
  std::byte* reserve(std::size_t body) noexcept {
    const std::uint64_t len = kRecordHeader + body;
    const std::uint64_t aligned = detail::align_line(len);
    const std::uint64_t to_end = mask_ + 1 - (tail_ & mask_);
    // The extra line keeps the stamp word of the next position in free space.
    if (aligned > to_end) [[unlikely]]
      return reserve_after_padding(len, to_end);
    if (!room(aligned + kLine)) [[unlikely]]
      return nullptr;
    reserved_pos_ = tail_;
    reserved_len_ = static_cast<std::uint32_t>(len);
    return base_ + (tail_ & mask_) + kRecordHeader;
  }
  /// Completes the reserved record. The stamp is a seq_cst store, so a
  /// doorbell check that follows is ordered after it (shm_doorbell.hpp).
  void publish(RecordKind kind, std::size_t header_size) noexcept {
    const std::uint64_t next = reserved_pos_ + detail::align_line(reserved_len_);
    detail::record_at(base_, next & mask_)->stamp.store(0, std::memory_order_relaxed);
    detail::RecordHeader* h = detail::record_at(base_, reserved_pos_ & mask_);
    h->length = reserved_len_;
    h->kind = static_cast<std::uint8_t>(kind);
    h->header_size = static_cast<std::uint8_t>(header_size);
    h->stamp.store(reserved_pos_ + 1, std::memory_order_seq_cst);
    tail_ = next;
  }
  /// True when a record of `body` bytes would fit now (re-reads the reader's head).
  bool has_room(std::size_t body) noexcept;

 private:
  bool room(std::size_t need) noexcept {
    if (tail_ + need - head_cache_ <= mask_ + 1) [[likely]]
      return true;
    head_cache_ = head_->load(std::memory_order_acquire);
    return tail_ + need - head_cache_ <= mask_ + 1;
  }
  /// reserve() of a record that would cross the end: a padding record first.
  std::byte* reserve_after_padding(std::uint64_t len, std::uint64_t to_end) noexcept;

  std::byte* base_ = nullptr;
  std::uint64_t mask_ = 0;
  const Word<std::uint64_t>* head_ = nullptr;
  std::uint64_t tail_ = 0;
  std::uint64_t head_cache_ = 0;
  std::uint64_t reserved_pos_ = 0;
  std::uint32_t reserved_len_ = 0;
};

/// The reader's end.
class RingReader {
 public:
  struct Record {
    RecordKind kind = RecordKind::kEager;
    std::span<const std::byte> header;  // the frame header
    std::span<const std::byte> body;    // after the frame header: payload or announcement
  };
  enum class Peek : std::uint8_t { kEmpty, kRecord, kBad };

  void attach(const std::byte* base, std::size_t capacity, Word<std::uint64_t>* head) noexcept;

  /// The complete record at the read position (padding skipped), if any. kBad
  /// when the writer broke the format; the pair must then be dropped.
  Peek peek(Record& out) noexcept {
    const std::uint64_t offset = pos_ & (capacity_ - 1);
    const auto* h = reinterpret_cast<const detail::RecordHeader*>(base_ + offset);
    if (h->stamp.load(std::memory_order_acquire) != pos_ + 1) return Peek::kEmpty;
    // Each field is read once: the writer (or a broken peer) could change it.
    const std::uint32_t length = h->length;
    const std::uint8_t kind = h->kind;
    const std::size_t header_size = h->header_size;
    if (kind != static_cast<std::uint8_t>(RecordKind::kEager) || length > capacity_ - offset ||
        header_size > kMaxHeader || kRecordHeader + header_size > length) [[unlikely]]
      return peek_other(out);
    const std::byte* p = base_ + offset + kRecordHeader;
    out.kind = RecordKind::kEager;
    out.header = {p, header_size};
    out.body = {p + header_size, length - kRecordHeader - header_size};
    current_ = detail::align_line(length);
    return Peek::kRecord;
  }
  /// Moves past the record peek() just returned; its bytes stay valid until release().
  void consume() noexcept { pos_ += current_; }
  /// Lets the writer reuse what was consumed; true when the head moved (then
  /// the writer may be waiting for room: notify it). A seq_cst store.
  bool release() noexcept {
    if (pos_ == released_) return false;
    released_ = pos_;
    head_->store(pos_, std::memory_order_seq_cst);
    return true;
  }
  /// Whether something is published at the read position (a cheap re-check).
  bool ready() const noexcept {
    const auto* stamp =
        reinterpret_cast<const Word<std::uint64_t>*>(base_ + (pos_ & (capacity_ - 1)));
    return stamp->load(std::memory_order_acquire) == pos_ + 1;
  }
  /// Nothing consumed that release() has not given back yet.
  bool all_released() const noexcept { return pos_ == released_; }

 private:
  /// peek() of anything but a well-formed eager record: padding, an
  /// announcement, or a broken record.
  Peek peek_other(Record& out) noexcept;

  const std::byte* base_ = nullptr;
  std::uint64_t capacity_ = 0;
  Word<std::uint64_t>* head_ = nullptr;
  std::uint64_t pos_ = 0;
  std::uint64_t released_ = 0;
  std::uint64_t current_ = 0;
};

}  // namespace cohort::transport::shm
