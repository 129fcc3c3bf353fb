// transport/shm/shm_cma.hpp — moving a large payload (above the eager limit)
// from the sender's buffers into the receiver's destination.
//
// The sender announces the frame in the ring (header, size, its iovecs) and
// keeps its buffers borrowed. When the receiver calls receive_payload() it
// starts the transfer in its SideBlock: the payload is cut into kChunkSize
// chunks, all "unclaimed" in the claim word, and then two workers take chunks:
//   * the receiver claims from the back and copies each batch with one
//     process_vm_readv (CMA) straight from the sender's memory into the
//     destination: one copy, no help needed, the sender may be computing;
//   * the sender, whenever it polls, claims from the front and copies chunks
//     into the pair's slots (bounce buffers), which the receiver copies out —
//     a pipelined two-copy that runs on the sender's core in parallel.
// Whoever is faster takes more; on an idle sender it is pure CMA, on two
// busy cores both copy at once (that beats one CMA stream on this kind of
// VM, where process_vm_readv pins pages one by one).
//
// Where CMA is not permitted (EPERM: yama ptrace_scope, another user, a
// non-dumpable sender; or no pid visible in our namespace) or is turned off
// (COHORT_SHM_CMA=0) the receiver sets kNeedAssist and takes only slots: the
// sender then copies every chunk. COHORT_SHM_CMA=only makes a sender copy
// nothing unless asked (the single-copy path alone, for tests and benches).
//
// The claim word packs (transfer seq mod 2^16, front, back), so a claim cannot
// land on a later transfer; a payload has at most 2^24 - 1 chunks (1 TiB).
//
// Validity of CMA bytes: the sender's buffers stay valid until it either sees
// done_seq (so after the last read) or closes (it sets SideBlock::closed before
// releasing them), and a pid names the sender until it dies. So the peer,
// after the last read and before it publishes done_seq, checks the sender's
// closed flag and its pidfd: if both still say "alive", every byte read was
// the sender's. Slot bytes are always good: the sender copied them itself.
//
// Threading: each object is used by one thread of one side.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.hpp"
#include "transport/shm/shm_segment.hpp"

namespace cohort::transport::shm {

/// COHORT_SHM_CMA: unset or "1" = kAuto, "0" = kNoCma, "only" = kCmaOnly.
enum class CopyMode : std::uint8_t { kAuto, kNoCma, kCmaOnly };
inline constexpr const char* kEnvCma = "COHORT_SHM_CMA";
CopyMode copy_mode_from_env();

inline constexpr std::uint32_t kNeedAssist = 1;  // SideBlock::start_flags
inline constexpr std::uint64_t kMaxChunks = (std::uint64_t{1} << 24) - 1;

inline std::uint64_t chunk_count(std::uint64_t size) noexcept {
  return (size + kChunkSize - 1) / kChunkSize;
}

/// Copies payload bytes [lo, hi) of the iovecs `src` to `dst`.
void gather(std::span<const iovec> src, std::uint64_t lo, std::uint64_t hi, std::byte* dst) noexcept;

/// The receiving side of one large payload.
class Inbound {
 public:
  enum class Step : std::uint8_t { kDone, kPending, kFailed };

  /// Publishes the start of transfer `seq` into `dest` (the caller notifies
  /// the sender). `remote` are the sender's iovecs, `pid` its pid here (0:
  /// unknown), `cma` whether CMA may be tried.
  void start(Segment& seg, int side, std::uint64_t seq, std::span<std::byte> dest,
             std::span<const iovec> remote, pid_t pid, bool cma) noexcept;
  /// Copies what can be copied now, about `budget` bytes at most. `notify`
  /// tells the caller to wake the sender (slots were freed, help was asked for).
  Step pump(std::size_t budget, bool& notify);
  /// Why pump() said kFailed.
  const Status& error() const noexcept { return error_; }
  /// Whether pump() would copy something now (for the sleep re-check).
  bool has_work() const noexcept;
  /// Whether CMA is still in use (false after EPERM).
  bool cma() const noexcept { return cma_; }
  std::uint64_t seq() const noexcept { return seq_; }

 private:
  Step fail(Errc code, std::string why);
  /// One CMA batch from the back; false when nothing is left to claim.
  bool read_batch(std::size_t& budget, bool& notify);

  SideBlock* blk_ = nullptr;
  const Segment* seg_ = nullptr;
  int side_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t chunks_ = 0;
  std::uint64_t done_ = 0;
  std::uint64_t cons_ = 0;
  std::uint64_t last_prod_ = 0;
  std::uint64_t batch_ = 1;
  std::byte* dest_ = nullptr;
  std::vector<iovec> remote_;
  pid_t pid_ = 0;
  bool cma_ = false;
  Status error_;
};

/// The sending side's help with the transfer the receiver has started.
class Outbound {
 public:
  void attach(Segment& seg, int their_side) noexcept;
  /// If the receiver has started transfer `seq` and helping is wanted (or
  /// needed), copies chunks into free slots, about `budget` bytes at most.
  /// True when it published a slot (the caller notifies the receiver).
  bool assist(std::uint64_t seq, std::uint64_t size, std::span<const iovec> iov, bool want,
              std::size_t budget) noexcept;
  /// Whether assist() would do something now (for the sleep re-check).
  bool can_assist(std::uint64_t seq, bool want) const noexcept;
  /// Whether the receiver has finished transfer `seq`.
  bool done(std::uint64_t seq) const noexcept {
    return blk_->done_seq.load(std::memory_order_acquire) >= seq;
  }

 private:
  SideBlock* blk_ = nullptr;
  const Segment* seg_ = nullptr;
  int side_ = 0;
  std::uint64_t prod_ = 0;
  std::uint64_t cons_cache_ = 0;
};

}  // namespace cohort::transport::shm
