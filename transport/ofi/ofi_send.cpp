// The ofi endpoint's send path: send(), the frames that wait in a peer's
// queue, and their completions. One of the four files of OfiEndpoint
// (ofi_endpoint.hpp).
#include "transport/ofi/ofi_endpoint.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "base/log.hpp"
#include "transport/base/options.hpp"
#include "transport/ofi/ofi_address.hpp"

namespace cohort::transport::ofi {

namespace {
constexpr const char* kLog = "transport.ofi";
}  // namespace

// ---- sending ------------------------------------------------------------------

Result<Progress> OfiEndpoint::send(PeerId peer, const Frame& frame, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr) [[unlikely]]
    return bad_peer(peer, peer < peers_.size(), address_);
  if (Status s = check_frame(frame, caps_.max_iov); !s.is_ok()) [[unlikely]]
    return s;
  if (p->local_gone()) [[unlikely]]
    mark_gone(*p, peer_status(*p, Errc::kPeerLost, "its endpoint closed"), true);
  if (p->eof) [[unlikely]]
    return p->eof_reason;

  const std::size_t n = payload_bytes(frame);
  const std::size_t len = kPrefixSize + frame.header.size() + n;
  if (p->queue.empty() && n <= p->remote_eager) {
    if (len <= inject_size_ && p->open() && p->credits != 0) [[likely]] {
      // The fast path: one fi_tinject from the stack. No completion follows
      // and the caller's buffers are free at once.
      alignas(16) std::byte buf[kInjectMax];
      const std::uint8_t back = owed_now(*p);
      WirePrefix prefix{WireType::kEager, back, static_cast<std::uint16_t>(frame.header.size()),
                        p->tx_seq, n};
      std::memcpy(buf, &prefix, kPrefixSize);
      std::byte* at = buf + kPrefixSize;
      if (!frame.header.empty()) std::memcpy(at, frame.header.data(), frame.header.size());
      at += frame.header.size();
      for (const iovec& v : frame.payload) {
        if (v.iov_len != 0) std::memcpy(at, v.iov_base, v.iov_len);
        at += v.iov_len;
      }
      long ret = fi_tinject(fabric_->ep(), buf, len, p->addr, bounce_tag(p->remote_id));
      if (ret == 0) [[likely]] {
        ++p->tx_seq;
        --p->credits;
        p->owed -= back;
        return Progress::kDone;
      }
      if (ret != -FI_EAGAIN) {
        mark_gone(*p, peer_status(*p, Errc::kPeerLost, fi_error("fi_tinject", ret)), true);
        return p->eof_reason;
      }
    } else if (p->state == Peer::State::kGreeting && n <= kCopyLimit) {
      // Before the welcome: on the watch, which the kernel delivers.
      Status s = write_early(*p, frame.header, frame.payload);
      if (s.is_ok()) return Progress::kDone;
      mark_gone(*p, peer_status(*p, Errc::kPeerLost, s.message()), true);
      return p->eof_reason;
    }
  }
  COHORT_ASSIGN_OR_RETURN(SendOp * s, pools_->get_send());
  capture_frame(*s, frame);
  s->peer = p->id;
  s->op = op;
  s->report = true;
  p->queue.push_back(s);
  if (p->open() && p->queue.front() == s) {
    EventSink later({}, overflow_);
    drive(*p, later);
    if (!overflow_.empty()) wake();
    // A copied frame the provider took during this call has left: the caller
    // hears nothing more of it. Anything else ends with kSendDone.
    if (s->copied && s->prepared && s->posted == s->messages && s->messages != 0) {
      s->report = false;
      ++unreported_sends_;
      return Progress::kDone;
    }
  }
  return Progress::kPending;
}

Status OfiEndpoint::write_early(Peer& p, std::span<const std::byte> header,
                                std::span<const iovec> payload) {
  std::uint64_t n = 0;
  for (const iovec& v : payload) n += v.iov_len;
  WirePrefix prefix{WireType::kEager, 0, static_cast<std::uint16_t>(header.size()), p.tx_seq, n};
  const std::span<const std::byte> parts[] = {
      {reinterpret_cast<const std::byte*>(&prefix), sizeof prefix}, header};
  COHORT_RETURN_IF_ERROR(watch_->write(p.watch, parts, payload));
  ++p.tx_seq;
  return Status();
}

void OfiEndpoint::drive(Peer& p, EventSink& sink) {
  if ((!p.clears.empty() || p.cleared_unposted != 0) && !send_control(p)) return;
  while (SendOp* op = p.queue.front()) {
    if (p.local_gone()) {
      mark_gone(p, peer_status(p, Errc::kPeerLost, "its endpoint closed"), true);
      return;
    }
    if (p.eof || p.state == Peer::State::kConnecting) return;
    if (p.state == Peer::State::kGreeting) {
      // Before the welcome only small frames can go, on the watch.
      if (!op->copied || op->payload_size > p.remote_eager) return;
      std::span<const std::byte> header(op->stage.get() + kPrefixSize, op->header_size);
      iovec payload{op->stage.get() + kPrefixSize + op->header_size, op->payload_size};
      Status s = write_early(p, header, {&payload, 1});
      if (!s.is_ok()) return mark_gone(p, peer_status(p, Errc::kPeerLost, s.message()), true);
      p.queue.pop_front();
      if (op->report) sink.emit(send_done(p.id, op->op));
      pools_->put(op);
      continue;
    }
    if (!op->prepared) {
      Status s = prepare(*op, *memory_, p.remote_id, p.remote_eager, p.tx_seq, iov_limit_);
      if (!s.is_ok()) {
        p.queue.pop_front();
        if (op->report) sink.emit(send_done(p.id, op->op, std::move(s)));
        pools_->put(op);
        continue;
      }
      ++p.tx_seq;
    }
    // An announced frame's payload waits in `sending` for its kClear.
    while (op->posted < op->postable()) {
      const bool bounce = op->posted == 0;
      std::uint8_t back = 0;
      if (bounce) {
        // The bounce message needs a credit (ofi_tags.hpp); without one the
        // frame waits, and the credit's arrival makes p ready again.
        if (p.credits == 0) return;
        if (op->type == WireType::kEager) {
          back = owed_now(p);
          // The prefix leads the first piece, in our staging (or `big`).
          static_cast<std::uint8_t*>(op->iov[0].iov_base)[offsetof(WirePrefix, parts)] = back;
        }
      }
      long ret = post_next(*op, fabric_->ep(), p.addr);
      if (ret == -FI_EAGAIN) {
        make_ready(p);  // try again in the next poll, after reading the CQ
        return;
      }
      if (ret != 0) {
        mark_gone(p, peer_status(p, Errc::kPeerLost, fi_error("fi_tsendv", ret)), true);
        return;
      }
      if (bounce) {
        --p.credits;
        p.owed -= back;
      }
    }
    p.queue.pop_front();
    p.sending.push_back(op);
  }
}

// ---- clear to send (ofi_tags.hpp) -----------------------------------------------

bool OfiEndpoint::send_control(Peer& p) {
  if (p.eof) return false;
  if (!p.open()) return true;  // kClear needs the other side's PeerId: after the welcome
  if (p.local_gone()) {
    mark_gone(p, peer_status(p, Errc::kPeerLost, "its endpoint closed"), true);
    return false;
  }
  // Each kClear is credited (ofi_tags.hpp) and carries credits back.
  std::size_t sent = 0;
  bool refused = false;
  for (; sent < p.clears.size() && p.credits != 0; ++sent) {
    const std::uint8_t back = owed_now(p);
    WirePrefix prefix{WireType::kClear, back, 0, p.clears[sent], 0};
    long ret = fi_tinject(fabric_->ep(), &prefix, sizeof prefix, p.addr, bounce_tag(p.remote_id));
    if (ret == -FI_EAGAIN) {
      refused = true;
      break;
    }
    if (ret != 0) {
      mark_gone(p, peer_status(p, Errc::kPeerLost, fi_error("fi_tinject (clear to send)", ret)),
                true);
      return false;
    }
    --p.credits;
    p.owed -= back;
  }
  p.clears.erase(p.clears.begin(), p.clears.begin() + static_cast<std::ptrdiff_t>(sent));
  // Out of credits: a credit's arrival makes p ready (on_credits()); refused
  // by the provider: the next poll tries again. Payloads the peer cleared
  // need no credit: they go either way.
  if (refused) make_ready(p);
  for (SendOp* op = p.sending.front(); op != nullptr && p.cleared_unposted != 0; op = op->next) {
    if (!op->cleared || op->posted == op->messages) continue;
    while (op->posted < op->messages) {
      long ret = post_next(*op, fabric_->ep(), p.addr);
      if (ret == -FI_EAGAIN) {
        make_ready(p);  // try again in the next poll, after reading the CQ
        return false;
      }
      if (ret != 0) {
        mark_gone(p, peer_status(p, Errc::kPeerLost, fi_error("fi_tsendv", ret)), true);
        return false;
      }
    }
    --p.cleared_unposted;
  }
  return p.clears.empty();
}

void OfiEndpoint::clear_to_send(Peer& p, std::uint32_t seq) {
  p.clears.push_back(seq);
  // Refused: p is ready and the next poll tries again; out of credits: the
  // kCredit that brings one makes it ready.
  if (!send_control(p) && !p.eof && p.credits != 0) wake();
}

void OfiEndpoint::on_clear(Peer& p, std::uint32_t seq) {
  for (SendOp* op = p.sending.front(); op != nullptr; op = op->next) {
    if (op->type != WireType::kAnnounce || op->cleared || op->seq != (seq & kSeqMask)) continue;
    op->cleared = true;
    ++p.cleared_unposted;
    if (!send_control(p) && !p.eof) wake();
    return;
  }
  // Ours failed or was let go already (or the peer breaks the protocol): nothing waits for it.
  COHORT_LOG_DEBUG(kLog) << "ofi peer " << p.id << " (" << p.remote << "): clear to send for "
                         << seq << ", which is not waiting; ignored";
}

void OfiEndpoint::finish_send(SendOp& op, EventSink& sink) {
  if (!op.orphaned) {
    if (!op.report) --unreported_sends_;
    if (Peer* p = live(op.peer)) p->sending.erase(&op);
    if (op.report) sink.emit(send_done(op.peer, op.op, op.status));
  }
  pools_->put(&op);
}

}  // namespace cohort::transport::ofi
