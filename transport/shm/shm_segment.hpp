// transport/shm/shm_segment.hpp — the shared memory of one peer pair: what it
// holds, how it is created, handed over and checked.
//
// A pair of endpoints shares one segment. The side that connects ("side 0")
// creates it; the side that accepts ("side 1") maps it. It holds, for each
// side d:
//   * ring d      frames travelling INTO side d (shm_ring.hpp);
//   * slots d     the bounce buffers of large payloads travelling into side d,
//                 used when the receiver cannot (or does not alone) copy them
//                 with CMA (shm_cma.hpp);
//   * SideBlock d the control words of side d as a receiver: how far it has
//                 read ring d, whether it may sleep, whether it closed, and the
//                 state of the large payload it is receiving.
// Every word one side writes and the other polls sits on its own cache line.
//
// Creation and cleanup: a segment is a sealed memfd ("cohort-shm-<pid>-<n>"),
// never a file under /dev/shm. Its descriptor travels to the peer over the
// control socket (SCM_RIGHTS) and is closed by both sides once mapped, so the
// memory lives exactly as long as some process maps it: a task that dies,
// however it dies, leaves nothing behind for anyone to clean up. Seals
// (no shrink, no grow) let the receiver of a descriptor map it without fear of
// SIGBUS from a peer that truncates it.
//
// Trust: the accepting side checks every field of the header once, keeps its
// own copy (Layout) and never reads the header again. Values polled from the
// control words are checked where they are used (shm_ring.cpp, shm_cma.cpp).
//
// Lifetime: a Segment unmaps on destruction. Not thread-safe (nothing here is).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::transport::shm {

inline constexpr std::size_t kLine = 64;
inline constexpr std::size_t kPage = 4096;
/// Large payloads move in chunks of this size (and through slots of this size).
inline constexpr std::size_t kChunkSize = 64 * 1024;
inline constexpr std::size_t kSlotCount = 8;

/// A word of shared memory, only ever accessed atomically. A plain integer in
/// the mapping, reached through std::atomic_ref, so the mapping needs no
/// constructors and both processes see the same object.
template <class T>
struct Word {
  T raw;

  T load(std::memory_order o = std::memory_order_acquire) const noexcept {
    return std::atomic_ref<T>(const_cast<T&>(raw)).load(o);
  }
  void store(T v, std::memory_order o = std::memory_order_release) noexcept {
    std::atomic_ref<T>(raw).store(v, o);
  }
  T exchange(T v, std::memory_order o = std::memory_order_seq_cst) noexcept {
    return std::atomic_ref<T>(raw).exchange(v, o);
  }
  bool compare_exchange(T& expected, T desired) noexcept {
    return std::atomic_ref<T>(raw).compare_exchange_strong(expected, desired,
                                                           std::memory_order_acq_rel);
  }
};
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

/// Which chunk of which transfer a slot holds; written by the sender.
struct SlotMeta {
  Word<std::uint64_t> seq;
  Word<std::uint64_t> chunk;
};

/// The control words of side d as a receiver (see the header comment).
struct SideBlock {
  // Written by side d.
  alignas(kLine) Word<std::uint64_t> head;       // ring d is consumed up to here
  alignas(kLine) Word<std::uint32_t> sleeping;   // d may sleep: ring its doorbell (shm_doorbell.hpp)
  alignas(kLine) Word<std::uint32_t> closed;     // d has left the pair
  alignas(kLine) Word<std::uint64_t> start_seq;  // the transfer into d that d has started
  Word<std::uint32_t> start_flags;               // kNeedAssist: d cannot use CMA
  Word<std::uint64_t> slot_cons;                 // slots of d consumed (monotonic)
  Word<std::uint64_t> done_seq;                  // the last transfer into d that finished
  // Written by the other side, the sender of transfers into d.
  alignas(kLine) Word<std::uint64_t> slot_prod;  // slots of d filled (monotonic)
  SlotMeta meta[kSlotCount];
  // Written by both: which chunks of the current transfer are still unclaimed.
  alignas(kLine) Word<std::uint64_t> claim;
};

/// What a segment holds, as the creator asked and the acceptor checked.
struct Layout {
  std::uint64_t total_size = 0;
  std::uint64_t token = 0;             // the creator's name for the pair, echoed in the answer
  std::uint64_t side_offset[2] = {};
  std::uint64_t ring_offset[2] = {};
  std::uint64_t ring_capacity[2] = {};  // power of two
  std::uint64_t slot_offset[2] = {};
  std::uint64_t eager_limit[2] = {};    // largest eager payload side d accepts
  std::uint32_t hello_size = 0;
};

/// The ring capacity that carries frames of up to `eager_limit` bytes well.
std::size_t ring_capacity_for(std::size_t eager_limit);

class Segment {
 public:
  Segment() = default;
  Segment(Segment&& o) noexcept;
  Segment& operator=(Segment&& o) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  /// Side 0: a new sealed memfd holding rings sized for `eager_limit[d]` and
  /// the hello; returns the mapping and, in `fd`, the descriptor to hand over.
  static Result<Segment> create(std::uint64_t token, const std::size_t (&eager_limit)[2],
                                std::span<const std::byte> hello, UniqueFd& fd);
  /// Side 1: maps a descriptor received from a peer; checks seals, size and
  /// every header field. kProtocolError naming the problem otherwise.
  static Result<Segment> adopt(int fd);

  const Layout& layout() const noexcept { return layout_; }
  SideBlock& side(int d) const noexcept {
    return *reinterpret_cast<SideBlock*>(base_ + layout_.side_offset[d]);
  }
  std::byte* ring(int d) const noexcept { return base_ + layout_.ring_offset[d]; }
  std::byte* slot(int d, std::size_t i) const noexcept {
    return base_ + layout_.slot_offset[d] + (i % kSlotCount) * kChunkSize;
  }
  std::span<const std::byte> hello() const noexcept;

 private:
  void unmap() noexcept;

  std::byte* base_ = nullptr;
  Layout layout_;
};

}  // namespace cohort::transport::shm
