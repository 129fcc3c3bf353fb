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

namespace cohort::transport::shm {

enum class RecordKind : std::uint8_t { kPad = 1, kEager = 2, kAnnounce = 3 };
inline constexpr std::size_t kRecordHeader = 16;

/// The writer's end.
class RingWriter {
 public:
  void attach(std::byte* base, std::size_t capacity, const Word<std::uint64_t>* head) noexcept;

  /// Whether a record with `body` bytes (after its 16-byte header) can ever fit.
  bool fits(std::size_t body) const noexcept;
  /// Where to write the body of a record of `body` bytes, or nullptr when the
  /// ring has no room now. Fill it, then publish(); nothing else in between.
  std::byte* reserve(std::size_t body) noexcept;
  /// Completes the reserved record. The stamp is a seq_cst store, so a
  /// doorbell check that follows is ordered after it (shm_doorbell.hpp).
  void publish(RecordKind kind, std::size_t header_size) noexcept;
  /// True when a record of `body` bytes would fit now (re-reads the reader's head).
  bool has_room(std::size_t body) noexcept;

 private:
  bool room(std::size_t need) noexcept;

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
  Peek peek(Record& out) noexcept;
  /// Moves past the record peek() just returned; its bytes stay valid until release().
  void consume() noexcept { pos_ += current_; }
  /// Lets the writer reuse what was consumed; true when the head moved (then
  /// the writer may be waiting for room: notify it). A seq_cst store.
  bool release() noexcept;
  /// Whether something is published at the read position (a cheap re-check).
  bool ready() const noexcept;

 private:
  const std::byte* base_ = nullptr;
  std::uint64_t capacity_ = 0;
  Word<std::uint64_t>* head_ = nullptr;
  std::uint64_t pos_ = 0;
  std::uint64_t released_ = 0;
  std::uint64_t current_ = 0;
};

}  // namespace cohort::transport::shm
