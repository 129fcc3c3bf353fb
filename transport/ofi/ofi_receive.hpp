// transport/ofi/ofi_receive.hpp — the bounce buffers every frame lands in, and
// decoding what landed.
//
// An endpoint keeps a pool of equal buffers posted with fi_trecv for any
// bounce tag (ofi_tags.hpp), each big enough for the largest eager frame.
// A completed buffer is re-posted at once when nothing of it was handed out,
// or at the start of the next poll() when an event's spans point into it
// (they are valid until then); one whose frame came early stays out until
// its turn. The buffers come in chunks, each one allocation registered once
// (pages are only touched by what arrives): the first of about 4 MiB (4 to
// 64 buffers), and more as connections need them (grow()).
//
// Credits (ofi_tags.hpp): each connection may have kCredits credited bounce
// messages of its peer's in flight towards us, plus kCreditReserve credit
// returns, so the endpoint keeps at least that many buffers per connection
// and no bounce message ever finds the provider without a buffer for it
// (libfabric 1.17's shm loses small messages that do, under load). A buffer
// that held a credited message remembers its sender (Slot::from); when it is
// re-posted the sender is owed a credit back (take_reposted()).
//
// decode() checks a landed message against its length before anything reads
// it: bad input from the wire is a Status, never a crash.
//
// Not thread-safe: used by its endpoint's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "transport/ofi/ofi_memory.hpp"
#include "transport/ofi/ofi_ops.hpp"
#include "transport/ofi/ofi_tags.hpp"

namespace cohort::transport::ofi {

/// Longest address text a hello may carry.
inline constexpr std::size_t kMaxAddressText = 4096;

class BouncePool {
 public:
  struct Slot {
    Ctx ctx;
    std::byte* buf = nullptr;
    void* desc = nullptr;     // its chunk's registration
    bool posted = false;
    PeerId from = kNoPeer;    // the sender of the credited message it held
  };

  /// Buffer size for an eager limit: prefix, header and the larger of the
  /// eager payload and the biggest hello.
  static std::size_t buffer_size(std::size_t eager_limit);

  /// Allocates and registers the first chunk of buffers; posts nothing yet.
  Status init(Memory& memory, std::size_t eager_limit);
  /// At least `total` buffers in all: a new chunk when there are fewer
  /// (posted by the next post()).
  Status grow_to(Memory& memory, std::size_t total);
  std::size_t buffer_bytes() const noexcept { return size_; }
  std::size_t count() const noexcept { return slots_.size(); }

  /// A completed slot: `handed_out` when an event's spans point into it.
  void done(Slot& slot, bool handed_out) {
    (handed_out ? out_ : to_post_).push_back(&slot);
  }
  /// Start of poll(): slots handed out by the previous poll may be reused.
  void release_handed_out() {
    to_post_.insert(to_post_.end(), out_.begin(), out_.end());
    out_.clear();
  }
  /// Posts every slot waiting; stops at -FI_EAGAIN (retried next time).
  /// Returns 0 or the first other error.
  long post(fid_ep* ep);
  bool waiting() const noexcept { return !to_post_.empty(); }
  /// The senders of the credited messages whose buffers post() has made
  /// ready again since the last call, one entry per buffer.
  std::vector<PeerId>& reposted() noexcept { return reposted_; }

 private:
  struct Chunk {
    std::unique_ptr<std::byte[]> mem;
    Registration reg;
  };
  Status add_chunk(Memory& memory, std::size_t n);

  std::vector<Chunk> chunks_;
  std::deque<Slot> slots_;  // a deque: slots never move (their ctx is posted)
  std::vector<Slot*> to_post_, out_;
  std::vector<PeerId> reposted_;
  std::size_t size_ = 0;
};

/// A bounce message, checked and taken apart. Spans point into the buffer.
struct Decoded {
  WirePrefix prefix{};
  std::span<const std::byte> header;
  std::span<const std::byte> payload;  // kEager
  std::uint8_t parts = 0;              // kAnnounce
  const std::byte* part_sizes = nullptr;  // kAnnounce: `parts` unaligned uint64s
  WireHello hello{};                   // kHello
  std::string_view address;            // kHello: the connector's address text
  std::span<const std::byte> hello_bytes;
  WireWelcome welcome{};               // kWelcome

  std::uint64_t part_size(std::size_t i) const { return load<std::uint64_t>(part_sizes + 8 * i); }
};

/// Checks `len` bytes at `buf` (a whole bounce message) and takes them apart;
/// kProtocolError saying what is wrong.
Result<Decoded> decode(const std::byte* buf, std::size_t len);

}  // namespace cohort::transport::ofi
