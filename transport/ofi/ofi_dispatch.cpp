// What arrives at an ofi endpoint: completions read from its completion
// queue (bounce messages, send and payload completions, errors), payload
// receives, and frames handed out in order. One of the four files of
// OfiEndpoint (ofi_endpoint.hpp).
#include "transport/ofi/ofi_endpoint.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.hpp"
#include "transport/base/options.hpp"
#include "transport/ofi/ofi_address.hpp"

namespace cohort::transport::ofi {

namespace {

constexpr const char* kLog = "transport.ofi";
constexpr std::size_t kBatch = 16;

}  // namespace

// ---- the completion queue -----------------------------------------------------

void OfiEndpoint::read_completions(EventSink& sink, bool& drained) {
  fi_cq_tagged_entry entries[kBatch];
  fi_addr_t sources[kBatch];
  // The source address is only logged (ofi_tags.hpp): asked for at trace level only.
  const bool with_source = trace_sources_;
  // Only while the span has room: a completion may need a slot, and what
  // stays in the queue costs nothing there.
  while (sink.has_room()) {
    long n = with_source ? fi_cq_readfrom(fabric_->cq(), entries, kBatch, sources)
                         : fi_cq_read(fabric_->cq(), entries, kBatch);
    if (n == -FI_EAGAIN) {
      drained = true;
      return;
    }
    if (n == -FI_EAVAIL) {
      on_error(sink);
      continue;
    }
    if (n < 0) [[unlikely]] {
      COHORT_LOG_WARN(kLog) << "ofi " << fabric_->provider() << ": " << fi_error("fi_cq_read", n);
      return;
    }
    for (long i = 0; i < n; ++i)
      on_completion(*static_cast<Ctx*>(entries[i].op_context), entries[i].tag, entries[i].len,
                    with_source ? sources[i] : FI_ADDR_NOTAVAIL, sink);
    // A short read means the queue is (nearly) empty: another read would cost
    // a progress round for little.
    if (static_cast<std::size_t>(n) < kBatch) return;
  }
}

void OfiEndpoint::on_completion(Ctx& ctx, std::uint64_t tag, std::size_t len, fi_addr_t src,
                                EventSink& sink) {
  switch (ctx.kind) {
    case CtxKind::kBounce:
      on_bounce(*static_cast<BouncePool::Slot*>(ctx.owner), tag, len, src, sink);
      return;
    case CtxKind::kSend: {
      SendOp& op = *static_cast<SendOp*>(ctx.owner);
      ++op.completed;
      if (op.orphaned ? op.completed == op.posted : op.finished()) finish_send(op, sink);
      return;
    }
    case CtxKind::kRecv:
      on_recv_part(*static_cast<RecvOp*>(ctx.owner), ctx.index, len, Status(), sink);
      return;
  }
}

void OfiEndpoint::on_error(EventSink& sink) {
  fi_cq_err_entry err{};
  long r = fi_cq_readerr(fabric_->cq(), &err, 0);
  if (r < 0) return;
  const char* text = fi_cq_strerror(fabric_->cq(), err.prov_errno, err.err_data, nullptr, 0);
  std::string why = fabric_strerror(err.err) + (text ? std::string(": ") + text : "");
  auto* ctx = static_cast<Ctx*>(err.op_context);
  if (ctx == nullptr) {
    COHORT_LOG_WARN(kLog) << address_ << ": completion error without context: " << why;
    return;
  }
  switch (ctx->kind) {
    case CtxKind::kBounce: {
      auto& slot = *static_cast<BouncePool::Slot*>(ctx->owner);
      // A message too big for a bounce buffer: its sender breaks the protocol.
      if (Peer* p = live(tag_peer(err.tag))) {
        mark_gone(*p, peer_status(*p, Errc::kProtocolError, "bad message: " + why), true);
      } else {
        COHORT_LOG_WARN(kLog) << address_ << ": bounce receive failed: " << why;
      }
      bounce_.done(slot, false);
      return;
    }
    case CtxKind::kSend: {
      SendOp& op = *static_cast<SendOp*>(ctx->owner);
      Peer* p = op.orphaned ? nullptr : live(op.peer);
      // RDM sends fail when the peer cannot be reached: the connection is lost.
      Status s = p ? peer_status(*p, Errc::kPeerLost, "send failed: " + why)
                   : Status(Errc::kPeerLost, why);
      if (op.status.is_ok()) op.status = s;
      if (p != nullptr) mark_gone(*p, s, true);
      ++op.completed;
      if (op.orphaned ? op.completed == op.posted : op.finished()) finish_send(op, sink);
      return;
    }
    case CtxKind::kRecv: {
      // Ours to cancel only once orphaned (already reported); otherwise the
      // provider gave up on the sender: rxm cancels receives with
      // FI_ECANCELED when the connection under them breaks.
      auto& op = *static_cast<RecvOp*>(ctx->owner);
      Peer* p = op.orphaned ? nullptr : live(op.peer);
      Status s = p ? peer_status(*p, Errc::kPeerLost, "payload receive failed: " + why)
                   : Status(Errc::kPeerLost, "payload receive failed: " + why);
      on_recv_part(op, ctx->index, 0, std::move(s), sink);
      return;
    }
  }
}

void OfiEndpoint::on_recv_part(RecvOp& op, std::uint8_t part, std::size_t len, Status status,
                               EventSink& sink) {
  ++op.completed;
  --recv_parts_posted_;
  if (status.is_ok() && len != op.sizes[part])
    status = Status(Errc::kProtocolError, "payload part " + std::to_string(part) + " of " +
                                              std::to_string(len) + " bytes, expected " +
                                              std::to_string(op.sizes[part]));
  if (!status.is_ok() && op.status.is_ok()) op.status = std::move(status);
  if (op.orphaned) {
    if (op.completed == op.posted && std::find(unposted_recvs_.begin(), unposted_recvs_.end(),
                                               &op) == unposted_recvs_.end())
      pools_->put(&op);
    return;
  }
  if (!op.finished()) return;
  if (Peer* p = live(op.peer)) p->receiving.erase(&op);
  sink.emit(recv_done(op.peer, op.op, op.status));
  pools_->put(&op);
}

void OfiEndpoint::post_receives(EventSink& sink) {
  std::size_t keep = 0;
  for (RecvOp* r : unposted_recvs_) {
    bool again = false;
    while (!r->orphaned && r->posted < r->parts) {
      long ret = post_next(*r, fabric_->ep());
      if (ret == 0) ++recv_parts_posted_;
      if (ret == -FI_EAGAIN) {
        again = true;
        break;
      }
      if (ret != 0) {
        if (r->status.is_ok()) r->status = Status(Errc::kIoError, fi_error("fi_trecv", ret));
        r->parts = r->posted;
        break;
      }
    }
    if (!again && !r->orphaned && r->posted != 0) {
      // Every part has its receive now: the sender may send the payload.
      if (Peer* p = live(r->peer)) clear_to_send(*p, r->seq);
    }
    if (again) {
      unposted_recvs_[keep++] = r;
    } else if (r->completed == r->posted && (r->orphaned || r->finished())) {
      if (!r->orphaned) {
        if (Peer* p = live(r->peer)) p->receiving.erase(r);
        sink.emit(recv_done(r->peer, r->op, r->status));
      }
      pools_->put(r);
    }
  }
  unposted_recvs_.resize(keep);
}

// ---- receiving payloads --------------------------------------------------------

Result<Progress> OfiEndpoint::receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr) return bad_peer(peer, peer < peers_.size(), address_);
  if (p->local_gone()) {
    // Its endpoint, in this process, has closed and unmapped what the
    // payload would be read from: shm would fault on it.
    mark_gone(*p, peer_status(*p, Errc::kPeerLost, "its endpoint closed"), true);
    return p->eof_reason;
  }
  if (!p->blocked)
    return Status(Errc::kInvalidArgument, "receive_payload: no announced frame waits from peer " +
                                              std::to_string(peer) + " (" + p->remote + ")");
  if (dest.size() != p->announced.size)
    return Status(Errc::kInvalidArgument,
                  "receive_payload: buffer of " + std::to_string(dest.size()) +
                      " bytes for a payload of " + std::to_string(p->announced.size));
  RecvOp* r = pools_->get_recv();
  r->peer = p->id;
  r->op = op;
  r->seq = p->announced.seq;
  r->self_id = p->id;
  if (Status s = prepare_recv(*r, *memory_, dest, p->announced.parts); !s.is_ok()) {
    pools_->put(r);
    return s;
  }
  p->blocked = false;
  p->receiving.push_back(r);
  if (!p->held.empty()) {
    make_ready(*p);  // frames that came behind the announcement go out next poll
    wake();
  }
  while (r->posted < r->parts) {
    long ret = post_next(*r, fabric_->ep());
    if (ret == 0) ++recv_parts_posted_;
    if (ret == -FI_EAGAIN) {
      unposted_recvs_.push_back(r);
      wake();
      break;
    }
    if (ret != 0) {
      // What was posted completes normally; the op then reports this failure.
      r->status = peer_status(*p, Errc::kIoError, fi_error("fi_trecv", ret));
      r->parts = r->posted;
      if (r->posted == 0) {
        p->receiving.erase(r);
        pools_->put(r);
        return peer_status(*p, Errc::kIoError, fi_error("fi_trecv", ret));
      }
      break;
    }
  }
  // Every part has its receive (or what could be posted of them): only now
  // may the sender post the payload (ofi_tags.hpp, kClear).
  if (r->posted == r->parts) clear_to_send(*p, r->seq);
  return Progress::kPending;
}

// ---- frames, in order -----------------------------------------------------------

void OfiEndpoint::on_bounce(BouncePool::Slot& slot, std::uint64_t tag, std::size_t len,
                            fi_addr_t src, EventSink& sink) {
  const PeerId to = tag_peer(tag);
  Peer* p = live(to);
  if (p == nullptr) {
    // A late message for a peer already retired: nobody waits for it.
    COHORT_LOG_TRACE(kLog) << "ofi message for retired peer " << to << " dropped";
    bounce_.done(slot, false);
    return;
  }
  if (len < kPrefixSize) {
    mark_gone(*p, peer_status(*p, Errc::kProtocolError, "message without a prefix"), true);
    bounce_.done(slot, false);
    return;
  }
  if (src != FI_ADDR_NOTAVAIL && src != p->addr) {
    // The tag decides (ofi_tags.hpp); providers differ in what they report here.
    COHORT_LOG_TRACE(kLog) << "ofi peer " << to << ": message from fi_addr " << src
                           << ", expected " << p->addr;
  }
  const auto prefix = load<WirePrefix>(slot.buf);
  if (prefix.type == WireType::kCredit) {
    // Uncredited control: its buffer earns the sender nothing back.
    bounce_.done(slot, false);
    if (len != kPrefixSize)
      mark_gone(*p, peer_status(*p, Errc::kProtocolError, "credit return with a body"), true);
    else
      on_credits(*p, prefix.seq);
    return;
  }
  // Everything else was credited: its sender gets the buffer back as a credit
  // once it is posted again (ofi_tags.hpp).
  slot.from = p->id;
  if (prefix.type == WireType::kEager || prefix.type == WireType::kClear) {
    on_credits(*p, prefix.parts);
    if (p->eof && p->retire_now) {
      bounce_.done(slot, false);
      return;
    }
  }
  if (prefix.type == WireType::kClear) {
    // Control, not a frame: unnumbered, acted on at once.
    bounce_.done(slot, false);
    if (len != kPrefixSize)
      mark_gone(*p, peer_status(*p, Errc::kProtocolError, "clear to send with a body"), true);
    else
      on_clear(*p, prefix.seq);
    return;
  }
  arrive(*p, Parked{prefix.seq, &slot, len, {}}, sink);
}

void OfiEndpoint::on_credits(Peer& p, std::uint32_t n) {
  if (n == 0) return;
  if (n > kCredits - p.credits) {
    mark_gone(p, peer_status(p, Errc::kProtocolError,
                             "it returned " + std::to_string(n) + " credits, " +
                                 std::to_string(kCredits - p.credits) + " were out"),
              true);
    return;
  }
  const bool was_out = p.credits == 0;
  p.credits += n;
  // Frames or clears that waited for a credit go in the next round of poll().
  if (was_out && (!p.queue.empty() || !p.clears.empty())) make_ready(p);
}

void OfiEndpoint::arrive(Peer& p, Parked&& msg, EventSink& sink) {
  if (seq_before(msg.seq, p.rx_next)) {
    // Numbers run forward only: a repeat is the peer's bug. Drop it.
    COHORT_LOG_WARN(kLog) << "ofi peer " << p.id << " (" << p.remote << "): frame " << msg.seq
                          << " again, expected " << p.rx_next << "; dropped";
    if (msg.slot != nullptr) bounce_.done(*msg.slot, false);
    return;
  }
  // The common case, its turn and room for it, skips the parking lot.
  if (msg.seq == p.rx_next && p.parked.empty() && p.held.empty() && !p.blocked &&
      sink.has_room()) {
    if (process(p, msg, sink)) advance(p, sink);
    return;
  }
  auto at = std::upper_bound(p.parked.begin(), p.parked.end(), msg.seq,
                             [](std::uint32_t s, const Parked& m) { return seq_before(s, m.seq); });
  p.parked.insert(at, std::move(msg));
  advance(p, sink);
}

void OfiEndpoint::advance(Peer& p, EventSink& sink) {
  for (;;) {
    if (!p.blocked && !p.held.empty()) {
      // Frames that waited behind an announcement the caller has now taken.
      if (!sink.has_room()) return make_ready(p);
      auto h = std::make_unique<HeldFrame>(std::move(p.held.front()));
      p.held.pop_front();
      emit_frame(p, h->type, h->header, h->payload, h->payload_size, sink);
      if (h->type == WireType::kAnnounce) {
        p.blocked = true;
        p.announced = {h->seq, h->payload_size, h->parts};
      }
      handed_held_.push_back(std::move(h));  // its spans live until the next poll
      continue;
    }
    if (p.parked.empty() || p.parked.front().seq != p.rx_next) return;
    if (!p.blocked && !sink.has_room()) return make_ready(p);
    Parked msg = std::move(p.parked.front());
    p.parked.erase(p.parked.begin());
    if (!process(p, msg, sink)) return;  // retired
  }
}

bool OfiEndpoint::process(Peer& p, Parked& msg, EventSink& sink) {
  const std::byte* bytes = msg.slot ? msg.slot->buf : msg.record.data();
  const std::size_t len = msg.slot ? msg.len : msg.record.size();
  ++p.rx_next;
  bool handed_out = false;
  bool alive = true;
  auto d = decode(bytes, len);
  if (!d.is_ok()) {
    COHORT_LOG_WARN(kLog) << "ofi peer " << p.id << " (" << p.remote
                          << "): bad message: " << d.status().message();
    mark_gone(p, peer_status(p, Errc::kProtocolError, d.status().message()), true);
  } else if (d->prefix.type == WireType::kBye) {
    Status why = peer_status(p, Errc::kPeerLost, "the other side closed the connection");
    finish_taken_sends(p, sink);
    if (!p.receiving.empty()) {
      // A payload it sent before closing may have landed with its completion
      // not read yet: retire once the completion queue has been found empty,
      // as after an end of file.
      mark_gone(p, std::move(why), false);
    } else {
      retire(p, why, /*report=*/true, sink);
      alive = false;
    }
  } else if (d->prefix.type != WireType::kEager && d->prefix.type != WireType::kAnnounce) {
    mark_gone(p, peer_status(p, Errc::kProtocolError, "unexpected message on a connection"), true);
  } else if (p.blocked) {
    // Behind an announcement the caller has not taken: copied aside, in order.
    HeldFrame h;
    h.type = d->prefix.type;
    h.header.assign(d->header.begin(), d->header.end());
    h.payload.assign(d->payload.begin(), d->payload.end());
    h.payload_size = d->prefix.payload_size;
    h.seq = d->prefix.seq;
    for (std::size_t i = 0; i < d->parts; ++i) h.parts.push_back(d->part_size(i));
    p.held.push_back(std::move(h));
  } else {
    emit_frame(p, d->prefix.type, d->header, d->payload, d->prefix.payload_size, sink);
    handed_out = true;
    if (d->prefix.type == WireType::kAnnounce) {
      p.blocked = true;
      p.announced.seq = d->prefix.seq;
      p.announced.size = d->prefix.payload_size;
      p.announced.parts.clear();
      for (std::size_t i = 0; i < d->parts; ++i) p.announced.parts.push_back(d->part_size(i));
    }
  }
  if (msg.slot != nullptr)
    bounce_.done(*msg.slot, handed_out);
  else if (handed_out)
    handed_records_.push_back(std::move(msg.record));  // spans into it live until the next poll
  return alive;
}

void OfiEndpoint::finish_taken_sends(Peer& p, EventSink& sink) {
  // A frame the provider has every message of is as good as sent: the peer
  // asked for its payload (cleared it) and then closed on purpose, which it
  // does once its receives are done. Its completion may never come (shm
  // completes a payload send only after the receiver answers, and a closed
  // receiver does not), so it ends now, as an eager frame would have; the
  // provider may still finish it, and then it only recycles the op.
  for (SendOp* op = p.sending.front(); op != nullptr;) {
    SendOp* next = op->next;
    if (op->prepared && op->posted == op->messages) {
      p.sending.erase(op);
      if (op->report)
        sink.emit(send_done(p.id, op->op));
      else
        --unreported_sends_;
      if (op->outstanding() == 0)
        pools_->put(op);
      else
        op->orphaned = true;
    }
    op = next;
  }
}

void OfiEndpoint::emit_frame(Peer& p, WireType type, std::span<const std::byte> header,
                             std::span<const std::byte> payload, std::uint64_t payload_size,
                             EventSink& sink) {
  Event& e = sink.next();
  e.kind = type == WireType::kEager ? Event::Kind::kFrameArrived : Event::Kind::kFrameAnnounced;
  e.peer = p.id;
  e.op = 0;
  e.status.reset();
  e.header = header;
  e.payload = type == WireType::kEager ? payload : std::span<const std::byte>();
  e.payload_size = static_cast<std::size_t>(payload_size);
}

}  // namespace cohort::transport::ofi
