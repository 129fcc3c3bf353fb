#include "transport/shm/shm_cma.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include "base/env.hpp"
#include "transport/base/options.hpp"

namespace cohort::transport::shm {

namespace {

// Largest CMA batch: big enough to amortise the call, small enough that a
// sender that starts helping finds chunks left.
constexpr std::uint64_t kMaxBatch = 16;

constexpr std::uint64_t pack(std::uint64_t seq, std::uint64_t front, std::uint64_t back) {
  return (seq & 0xffff) << 48 | (front & 0xffffff) << 24 | (back & 0xffffff);
}
constexpr std::uint64_t claim_seq(std::uint64_t w) { return w >> 48; }
constexpr std::uint64_t claim_front(std::uint64_t w) { return (w >> 24) & 0xffffff; }
constexpr std::uint64_t claim_back(std::uint64_t w) { return w & 0xffffff; }

std::uint64_t chunk_bytes(std::uint64_t size, std::uint64_t chunk) {
  std::uint64_t lo = chunk * kChunkSize;
  return std::min<std::uint64_t>(kChunkSize, size - lo);
}

// The pieces of `src` that hold payload bytes [lo, hi), in `out`; returns how many.
std::size_t slice(std::span<const iovec> src, std::uint64_t lo, std::uint64_t hi,
                  std::span<iovec> out) noexcept {
  std::size_t n = 0;
  std::uint64_t at = 0;
  for (const iovec& v : src) {
    std::uint64_t end = at + v.iov_len;
    if (end > lo && at < hi && n < out.size()) {
      std::uint64_t from = std::max(at, lo), to = std::min(end, hi);
      out[n++] = {static_cast<std::byte*>(v.iov_base) + (from - at), to - from};
    }
    if (end >= hi) break;
    at = end;
  }
  return n;
}

}  // namespace

CopyMode copy_mode_from_env() {
  auto v = env::get(kEnvCma);
  if (!v || v->empty() || *v == "1" || *v == "auto") return CopyMode::kAuto;
  if (*v == "0" || *v == "off" || *v == "no") return CopyMode::kNoCma;
  if (*v == "only") return CopyMode::kCmaOnly;
  return CopyMode::kAuto;
}

void gather(std::span<const iovec> src, std::uint64_t lo, std::uint64_t hi,
            std::byte* dst) noexcept {
  iovec pieces[kMaxPayloadIov];
  std::size_t n = slice(src, lo, hi, pieces);
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(dst, pieces[i].iov_base, pieces[i].iov_len);
    dst += pieces[i].iov_len;
  }
}

// ---- receiver ---------------------------------------------------------------

void Inbound::start(Segment& seg, int side, std::uint64_t seq, std::span<std::byte> dest,
                    std::span<const iovec> remote, pid_t pid, bool cma) noexcept {
  seg_ = &seg;
  side_ = side;
  blk_ = &seg.side(side);
  seq_ = seq;
  size_ = dest.size();
  chunks_ = chunk_count(size_);
  done_ = 0;
  dest_ = dest.data();
  remote_.assign(remote.begin(), remote.end());
  pid_ = pid;
  cma_ = cma && pid > 0;
  batch_ = 1;
  error_ = Status();
  cons_ = blk_->slot_cons.load(std::memory_order_relaxed);  // we are its only writer
  last_prod_ = blk_->slot_prod.load(std::memory_order_acquire);
  blk_->claim.store(pack(seq, 0, chunks_), std::memory_order_relaxed);
  blk_->start_flags.store(cma_ ? 0 : kNeedAssist, std::memory_order_relaxed);
  // The sender reads the claim word and flags only after it sees start_seq.
  blk_->start_seq.store(seq, std::memory_order_seq_cst);
}

Inbound::Step Inbound::fail(Errc code, std::string why) {
  error_ = Status(code, std::move(why));
  return Step::kFailed;
}

bool Inbound::has_work() const noexcept {
  if (blk_->slot_prod.load(std::memory_order_seq_cst) != cons_) return true;
  if (!cma_) return false;
  std::uint64_t w = blk_->claim.load(std::memory_order_seq_cst);
  return claim_front(w) < claim_back(w);
}

Inbound::Step Inbound::pump(std::size_t budget, bool& notify) {
  while (done_ < chunks_) {
    // Slots first: those bytes are already here, and freeing a slot lets the
    // sender go on.
    const std::uint64_t prod = blk_->slot_prod.load(std::memory_order_acquire);
    if (prod - cons_ > kSlotCount)
      return fail(Errc::kProtocolError, "peer filled more shm slots than exist");
    if (prod != last_prod_) {
      batch_ = 1;  // the sender is helping: leave it chunks to take
      last_prod_ = prod;
    }
    bool copied = false;
    while (cons_ != prod) {
      const SlotMeta& m = blk_->meta[cons_ % kSlotCount];
      const std::uint64_t s = m.seq.load(std::memory_order_relaxed);
      const std::uint64_t c = m.chunk.load(std::memory_order_relaxed);
      if (s != seq_ || c >= chunks_)
        return fail(Errc::kProtocolError, "peer put a foreign chunk in an shm slot");
      const std::uint64_t len = chunk_bytes(size_, c);
      std::memcpy(dest_ + c * kChunkSize, seg_->slot(side_, cons_), len);
      ++cons_;
      ++done_;
      blk_->slot_cons.store(cons_, std::memory_order_seq_cst);
      notify = true;
      copied = true;
      budget -= std::min<std::size_t>(budget, len);
    }
    if (done_ == chunks_ || budget == 0) break;
    if (copied) continue;
    if (!cma_ || !read_batch(budget, notify)) break;
    if (!error_.is_ok()) return Step::kFailed;
  }
  if (done_ > chunks_) return fail(Errc::kProtocolError, "more chunks than the payload has");
  return done_ == chunks_ ? Step::kDone : Step::kPending;
}

bool Inbound::read_batch(std::size_t& budget, bool& notify) {
  std::uint64_t w = blk_->claim.load(std::memory_order_acquire);
  std::uint64_t front, back, k;
  for (;;) {
    if (claim_seq(w) != (seq_ & 0xffff)) {
      fail(Errc::kProtocolError, "peer changed the claim word of a transfer it does not own");
      return true;
    }
    front = claim_front(w);
    back = claim_back(w);
    if (front >= back) return false;
    k = std::min(batch_, back - front);
    if (blk_->claim.compare_exchange(w, pack(seq_, front, back - k))) break;
  }
  const std::uint64_t lo = (back - k) * kChunkSize;
  const std::uint64_t hi = std::min<std::uint64_t>(back * kChunkSize, size_);
  iovec remote[kMaxPayloadIov];
  std::size_t n = slice(remote_, lo, hi, remote);
  iovec local{dest_ + lo, hi - lo};
  ssize_t got = ::process_vm_readv(pid_, &local, 1, remote, n, 0);
  if (got == static_cast<ssize_t>(hi - lo)) {
    done_ += k;
    budget -= std::min<std::size_t>(budget, hi - lo);
    batch_ = std::min(batch_ * 2, kMaxBatch);
    return true;
  }
  int err = got < 0 ? errno : EFAULT;
  if (err == EPERM || err == ENOSYS || err == EACCES) {
    // Not permitted after all (a setuid or non-dumpable sender, seccomp):
    // give the chunks back and ask the sender to copy everything.
    std::uint64_t cur = blk_->claim.load(std::memory_order_acquire);
    while (!blk_->claim.compare_exchange(
        cur, pack(seq_, claim_front(cur), claim_back(cur) + k))) {
    }
    cma_ = false;
    blk_->start_flags.store(kNeedAssist, std::memory_order_seq_cst);
    notify = true;
    return true;
  }
  if (err == ESRCH)
    fail(Errc::kPeerLost, "sender process " + std::to_string(pid_) + " is gone");
  else
    fail(Errc::kPeerLost, "process_vm_readv from process " + std::to_string(pid_) + ": " +
                              std::strerror(err) + " (the sender released its buffer)");
  return true;
}

// ---- sender -----------------------------------------------------------------

void Outbound::attach(Segment& seg, int their_side) noexcept {
  seg_ = &seg;
  side_ = their_side;
  blk_ = &seg.side(their_side);
  prod_ = blk_->slot_prod.load(std::memory_order_relaxed);  // we are its only writer
  cons_cache_ = blk_->slot_cons.load(std::memory_order_acquire);
}

bool Outbound::can_assist(std::uint64_t seq, bool want) const noexcept {
  if (blk_->start_seq.load(std::memory_order_seq_cst) != seq || done(seq)) return false;
  if (!want && (blk_->start_flags.load(std::memory_order_seq_cst) & kNeedAssist) == 0) return false;
  std::uint64_t w = blk_->claim.load(std::memory_order_seq_cst);
  if (claim_seq(w) != (seq & 0xffff) || claim_front(w) >= claim_back(w)) return false;
  return prod_ - blk_->slot_cons.load(std::memory_order_seq_cst) < kSlotCount;
}

bool Outbound::assist(std::uint64_t seq, std::uint64_t size, std::span<const iovec> iov,
                      bool want, std::size_t budget) noexcept {
  if (blk_->start_seq.load(std::memory_order_acquire) != seq) return false;
  if (!want && (blk_->start_flags.load(std::memory_order_acquire) & kNeedAssist) == 0)
    return false;
  const std::uint64_t chunks = chunk_count(size);
  bool published = false;
  while (budget > 0) {
    if (prod_ - cons_cache_ >= kSlotCount) {
      cons_cache_ = blk_->slot_cons.load(std::memory_order_acquire);
      if (prod_ - cons_cache_ >= kSlotCount) break;
    }
    std::uint64_t w = blk_->claim.load(std::memory_order_acquire);
    if (claim_seq(w) != (seq & 0xffff)) break;
    std::uint64_t front = claim_front(w), back = claim_back(w);
    if (front >= back || back > chunks) break;
    if (!blk_->claim.compare_exchange(w, pack(seq, front + 1, back))) continue;
    const std::uint64_t lo = front * kChunkSize;
    const std::uint64_t len = chunk_bytes(size, front);
    gather(iov, lo, lo + len, seg_->slot(side_, prod_));
    SlotMeta& m = blk_->meta[prod_ % kSlotCount];
    m.seq.store(seq, std::memory_order_relaxed);
    m.chunk.store(front, std::memory_order_relaxed);
    ++prod_;
    blk_->slot_prod.store(prod_, std::memory_order_seq_cst);
    published = true;
    budget -= std::min<std::size_t>(budget, len);
  }
  return published;
}

}  // namespace cohort::transport::shm
