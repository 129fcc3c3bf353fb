#include "transport/shm/shm_peer.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "transport/base/options.hpp"

namespace cohort::transport::shm {

namespace {

// What the receiver copies per receive_payload() or poll(): enough for a few
// MiB to finish in one call, small enough that other peers are not starved.
constexpr std::size_t kReceiveBudget = 8 << 20;
// What the sender copies into slots per poll; the slots themselves bound it too.
constexpr std::size_t kAssistBudget = 1 << 20;

// The body of a kAnnounce record, after the frame header.
struct AnnounceBody {
  std::uint64_t seq;
  std::uint64_t size;
  std::uint32_t iov_count;
  std::uint32_t reserved;
};
struct WireIov {
  std::uint64_t base;
  std::uint64_t len;
};

}  // namespace

// Copies a frame's pieces into the ring: small ones inline (a call to memcpy
// costs more than moving a few words), larger ones with memcpy.
inline void copy_in(std::byte* dst, const void* src, std::size_t n) noexcept {
  const auto* s = static_cast<const std::byte*>(src);
  if (n > 32) {
    std::memcpy(dst, s, n);
  } else if (n >= 16) {  // two overlapping 16-byte moves
    std::memcpy(dst, s, 16);
    std::memcpy(dst + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, s, 8);
    std::memcpy(dst + n - 8, s + n - 8, 8);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = s[i];
  }
}

// ---- PendingQueue -----------------------------------------------------------

PendingSend& PendingQueue::push() {
  if (count_ == slots_.size()) {
    // Unroll into a bigger ring; the entries' iovec vectors move along.
    std::vector<PendingSend> bigger(slots_.empty() ? 8 : slots_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i)
      bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
    slots_ = std::move(bigger);
    head_ = 0;
  }
  PendingSend& e = slots_[(head_ + count_) % slots_.size()];
  ++count_;
  e.iov.clear();
  return e;
}

void PendingQueue::pop() noexcept {
  head_ = (head_ + 1) % slots_.size();
  --count_;
}

// ---- Peer -------------------------------------------------------------------

Peer::Peer(const Config& config, Segment segment, Doorbell bell)
    : id_(config.id),
      side_(config.side),
      remote_(config.remote),
      mode_(config.mode),
      seg_(std::move(segment)),
      bell_(std::move(bell)) {
  const Layout& l = seg_.layout();
  const int me = side_, them = 1 - side_;
  tx_.attach(seg_.ring(them), l.ring_capacity[them], &seg_.side(them).head);
  rx_.attach(seg_.ring(me), l.ring_capacity[me], &seg_.side(me).head);
  out_.attach(seg_, them);
  their_eager_ = l.eager_limit[them];
  my_eager_ = l.eager_limit[me];
  tx_ready_ = side_ == 0;
}

Status Peer::lost(std::string what) const {
  return Status(Errc::kPeerLost, "shm peer " + std::to_string(id_) + " (" + remote_ + "): " +
                                     std::move(what));
}

void Peer::close(Status why) {
  if (closing_) return;
  closing_ = true;
  reason_ = std::move(why);
}

void Peer::mark_dead() {
  dead_ = true;
}

void Peer::leave() noexcept {
  seg_.side(side_).closed.store(1, std::memory_order_seq_cst);
  bell_.ring();
}

bool Peer::peer_alive_for_cma() const noexcept {
  if (seg_.side(1 - side_).closed.load(std::memory_order_seq_cst) != 0 || dead_) return false;
  if (!pidfd || pid == ::getpid()) return true;
  pollfd p{pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;  // readable: the process has exited
}

// ---- sending ----------------------------------------------------------------

bool Peer::write_eager(std::span<const std::byte> header, std::span<const iovec> iov,
                       std::uint64_t size) noexcept {
  std::byte* p = tx_.reserve(header.size() + size);
  if (p == nullptr) return false;
  copy_in(p, header.data(), header.size());
  p += header.size();
  for (const iovec& v : iov) {
    copy_in(p, v.iov_base, v.iov_len);
    p += v.iov_len;
  }
  tx_.publish(RecordKind::kEager, header.size());
  return true;
}

bool Peer::write_announce(std::span<const std::byte> header, std::span<const iovec> iov,
                          std::uint64_t size, std::uint64_t seq) noexcept {
  const std::size_t body = header.size() + sizeof(AnnounceBody) + iov.size() * sizeof(WireIov);
  std::byte* p = tx_.reserve(body);
  if (p == nullptr) return false;
  if (!header.empty()) std::memcpy(p, header.data(), header.size());
  p += header.size();
  AnnounceBody a{seq, size, static_cast<std::uint32_t>(iov.size()), 0};
  std::memcpy(p, &a, sizeof a);
  p += sizeof a;
  for (const iovec& v : iov) {
    WireIov w{reinterpret_cast<std::uint64_t>(v.iov_base), v.iov_len};
    std::memcpy(p, &w, sizeof w);
    p += sizeof w;
  }
  tx_.publish(RecordKind::kAnnounce, header.size());
  return true;
}

void Peer::queue(const Frame& frame, OpId op, bool eager, std::uint64_t size) {
  PendingSend& e = backlog_.push();
  e.op = op;
  e.eager = eager;
  e.seq = 0;
  e.size = size;
  e.header = frame.header;
  e.iov.assign(frame.payload.begin(), frame.payload.end());
}

Result<Progress> Peer::send(const Frame& frame, OpId op) {
  if (closing_) [[unlikely]]
    return lost(reason_.message());
  const std::uint64_t size = payload_bytes(frame);
  const bool eager = size <= their_eager_;
  if (!eager && chunk_count(size) > kMaxChunks) [[unlikely]]
    return Status(Errc::kInvalidArgument, "shm payload of " + std::to_string(size) +
                                              " bytes exceeds the 1 TiB limit; split it");
  if (backlog_.empty() && tx_ready_) [[likely]] {
    if (eager) {
      if (write_eager(frame.header, frame.payload, size)) [[likely]] {
        bell_.notify();
        return Progress::kDone;
      }
    } else if (write_announce(frame.header, frame.payload, size, tx_seq_ + 1)) {
      PendingSend& e = inflight_.push();
      e.op = op;
      e.eager = false;
      e.seq = ++tx_seq_;
      e.size = size;
      e.header = frame.header;
      e.iov.assign(frame.payload.begin(), frame.payload.end());
      bell_.notify();
      return Progress::kPending;
    }
  }
  queue(frame, op, eager, size);
  return Progress::kPending;
}

void Peer::flush_backlog(EventSink& sink) {
  bool wrote = false;
  while (!backlog_.empty()) {
    PendingSend& e = backlog_.front();
    if (e.eager) {
      if (!write_eager(e.header, e.iov, e.size)) break;
      sink.emit(send_done(id_, e.op));
    } else {
      if (!write_announce(e.header, e.iov, e.size, tx_seq_ + 1)) break;
      PendingSend& f = inflight_.push();
      f.op = e.op;
      f.eager = false;
      f.seq = ++tx_seq_;
      f.size = e.size;
      f.header = e.header;
      std::swap(f.iov, e.iov);  // no copy, and both keep their storage
    }
    backlog_.pop();
    wrote = true;
  }
  if (wrote) bell_.notify();
}

void Peer::progress_sends(EventSink& sink) {
  while (!inflight_.empty() && out_.done(inflight_.front().seq)) {
    sink.emit(send_done(id_, inflight_.front().op));
    inflight_.pop();
  }
  if (!inflight_.empty()) {
    PendingSend& e = inflight_.front();
    if (out_.assist(e.seq, e.size, e.iov, mode_ != CopyMode::kCmaOnly, kAssistBudget))
      bell_.notify();
  }
  if (!backlog_.empty() && tx_ready_) flush_backlog(sink);
}

// ---- receiving --------------------------------------------------------------

void Peer::read_frames(EventSink& sink) {
  const bool gone = peer_left();
  while (sink.has_room()) {
    RingReader::Record r;
    RingReader::Peek p = rx_.peek(r);
    if (p == RingReader::Peek::kEmpty) return;
    if (p == RingReader::Peek::kBad) {
      close(Status(Errc::kProtocolError, "malformed record in the shm ring from " + remote_));
      return;
    }
    if (r.kind == RecordKind::kEager) {
      if (r.body.size() > my_eager_) {
        close(Status(Errc::kProtocolError, "eager frame above our limit from " + remote_));
        return;
      }
      Event& e = sink.next();
      e.kind = Event::Kind::kFrameArrived;
      e.peer = id_;
      e.op = 0;
      e.status.reset();
      e.header = r.header;
      e.payload = r.body;
      e.payload_size = r.body.size();
      rx_.consume();
      continue;
    }
    // A sender that left cannot serve its payload: stop before announcing it.
    if (gone) {
      close(lost(dead_ ? "its process ended" : "it closed the connection"));
      return;
    }
    // Check everything about the announcement before the user sees it.
    AnnounceBody a{};
    bool ok = r.body.size() >= sizeof a;
    if (ok) {
      std::memcpy(&a, r.body.data(), sizeof a);
      ok = a.iov_count <= kMaxPayloadIov &&
           r.body.size() == sizeof a + std::size_t{a.iov_count} * sizeof(WireIov) &&
           a.seq == rx_seq_ + 1 && a.size > my_eager_ && chunk_count(a.size) <= kMaxChunks;
    }
    if (ok) {
      std::uint64_t sum = 0;
      ann_iov_.resize(a.iov_count);
      for (std::uint32_t i = 0; i < a.iov_count && ok; ++i) {
        WireIov w;
        std::memcpy(&w, r.body.data() + sizeof a + i * sizeof w, sizeof w);
        ann_iov_[i] = {reinterpret_cast<void*>(w.base), static_cast<std::size_t>(w.len)};
        ok = w.len <= a.size;  // keeps the sum from wrapping
        sum += w.len;
      }
      ok = ok && sum == a.size;
    }
    if (!ok) {
      close(Status(Errc::kProtocolError, "malformed announcement from " + remote_));
      return;
    }
    rx_seq_ = a.seq;
    ann_size_ = a.size;
    Event& e = sink.next();
    e.kind = Event::Kind::kFrameAnnounced;
    e.peer = id_;
    e.op = 0;
    e.status.reset();
    e.header = r.header;
    e.payload = {};
    e.payload_size = a.size;
    rx_.consume();
    rx_state_ = Rx::kAnnounced;
    return;
  }
}

Result<Progress> Peer::receive_payload(std::span<std::byte> dest, OpId op) {
  if (rx_state_ != Rx::kAnnounced)
    return Status(Errc::kInvalidArgument, "receive_payload: no announced frame waits from shm peer " +
                                              std::to_string(id_) + " (" + remote_ + ")");
  if (dest.size() != ann_size_)
    return Status(Errc::kInvalidArgument, "receive_payload: buffer of " +
                                              std::to_string(dest.size()) +
                                              " bytes for a payload of " + std::to_string(ann_size_));
  if (closing_) return lost(reason_.message());
  if (peer_left()) {
    close(lost(dead_ ? "its process ended" : "it closed the connection"));
    rx_state_ = Rx::kFrames;
    return reason_;
  }
  const bool cma = mode_ != CopyMode::kNoCma && !cma_denied_ && pid > 0;
  in_.start(seg_, side_, rx_seq_, dest, ann_iov_, pid, cma);
  bell_.notify();
  rx_state_ = Rx::kTransfer;
  recv_op_ = op;
  bool notify = false;
  Inbound::Step step = in_.pump(kReceiveBudget, notify);
  if (notify) bell_.notify();
  return finish_transfer(step);
}

Result<Progress> Peer::finish_transfer(Inbound::Step step) {
  if (step == Inbound::Step::kPending) {
    if (!peer_left()) return Progress::kPending;
    close(lost(dead_ ? "its process ended during a transfer" : "it closed during a transfer"));
    rx_state_ = Rx::kFrames;
    return reason_;
  }
  cma_denied_ = cma_denied_ || (mode_ != CopyMode::kNoCma && !in_.cma() && pid > 0);
  if (step == Inbound::Step::kDone && !peer_alive_for_cma())
    step = Inbound::Step::kFailed;
  if (step == Inbound::Step::kFailed) {
    Status why = in_.error().is_ok() ? lost("it left during a transfer") : in_.error();
    if (why.code() == Errc::kProtocolError) why.with_context(remote_);
    close(why);
    rx_state_ = Rx::kFrames;  // the op ends here (an error now, or kRecvDone from service())
    return reason_;
  }
  seg_.side(side_).done_seq.store(in_.seq(), std::memory_order_seq_cst);
  bell_.notify();
  rx_state_ = Rx::kFrames;
  return Progress::kDone;
}

void Peer::service(EventSink& sink) {
  if (rx_.release()) bell_.notify();  // the sender may wait for room
  if (closing_) return;
  if (!inflight_.empty() || !backlog_.empty()) progress_sends(sink);
  if (!visible) {
    if (peer_left()) close(lost("it left before we accepted it"));
    return;
  }
  if (rx_state_ == Rx::kTransfer) {
    bool notify = false;
    Inbound::Step step = in_.pump(kReceiveBudget, notify);
    if (notify) bell_.notify();
    auto r = finish_transfer(step);
    if (!r.is_ok()) {
      sink.emit(recv_done(id_, recv_op_, r.status()));
      return;
    }
    if (*r == Progress::kPending) return;
    sink.emit(recv_done(id_, recv_op_));
  }
  if (rx_state_ == Rx::kFrames) read_frames(sink);
  // Frames published before the peer left have been handed out above.
  if (!closing_ && peer_left() && (rx_state_ != Rx::kFrames || !rx_.ready()))
    close(lost(dead_ ? "its process ended" : "it closed the connection"));
}

bool Peer::has_work() noexcept {
  if (closing_ || dead_) return true;
  if (seg_.side(1 - side_).closed.load(std::memory_order_seq_cst) != 0) return true;
  if (visible && rx_state_ == Rx::kFrames && rx_.ready()) return true;
  if (visible && rx_state_ == Rx::kTransfer && in_.has_work()) return true;
  if (!inflight_.empty()) {
    const PendingSend& e = inflight_.front();
    if (out_.done(e.seq) || out_.can_assist(e.seq, mode_ != CopyMode::kCmaOnly)) return true;
  }
  if (!backlog_.empty() && tx_ready_) {
    const PendingSend& e = backlog_.front();
    std::size_t body = e.header.size() + (e.eager ? e.size
                                                  : sizeof(AnnounceBody) +
                                                        e.iov.size() * sizeof(WireIov));
    if (tx_.has_room(body)) return true;
  }
  return false;
}

void Peer::fail_pending(EventSink& sink, const Status& status) {
  while (!inflight_.empty()) {
    sink.emit(send_done(id_, inflight_.front().op, status));
    inflight_.pop();
  }
  while (!backlog_.empty()) {
    sink.emit(send_done(id_, backlog_.front().op, status));
    backlog_.pop();
  }
  if (rx_state_ == Rx::kTransfer) sink.emit(recv_done(id_, recv_op_, status));
  rx_state_ = Rx::kFrames;
}

}  // namespace cohort::transport::shm
