// The ucx endpoint's receive side: poll(), the posted slots, inboxes, completions.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "transport/ucx/ucx_endpoint.hpp"

namespace cohort::transport::ucx {

namespace {

constexpr const char* kLog = "transport.ucx";
// Slots taken per poll at most, so that a flood cannot keep poll() from returning.
constexpr std::size_t kMaxSlotsPerPoll = 2 * kRingSlots;
// poll() looks at the clock for the liveness check once per this many calls.
constexpr std::uint32_t kClockEvery = 256;
// ucp_worker_progress() calls at most to take in what a dead peer process left.
constexpr int kDrainRounds = 1024;

}  // namespace

std::size_t UcxEndpoint::poll(std::span<Event> out) {
  ++polls_;
  for (RxMsg* m : leased_) recycle(m);
  leased_.clear();
  if (wake_armed_) {
    std::uint64_t v;
    (void)::read(wake_fd_.get(), &v, sizeof v);
    wake_armed_ = false;
  }
  EventSink sink(out, overflow_);
  if (ucp_worker_progress(worker_) != 0) armed_ = false;
  // A peer process died: take in all it sent before that (bounded), so that
  // its last frames and acks are handled before its failure.
  const bool burying = !dead_.empty();
  for (int i = 0; burying && i < kDrainRounds && ucp_worker_progress(worker_) != 0; ++i) {
  }
  if (!done_.sends.empty()) finish_sends(sink);
  if (!done_.recvs.empty()) finish_recvs(sink);
  dispatch_ring(sink);
  if (!ready_.empty()) deliver_ready(sink);
  if (burying) bury_dead();
  if (polls_ % kClockEvery == 0 && !liveness_.empty()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_liveness_) {
      next_liveness_ = now + kLivenessPeriod;
      check_liveness();
    }
  }
  if (!failing_.empty()) advance_failures(sink);
  if (retired_.size() > parked_retired_) reap_retired();
  const std::size_t n = sink.used();
  if (n < out.size() && !caller_prepares_) {
    // A caller that does not use prepare_wait() may sleep now: make sure
    // wait_fd() wakes it for what is left. (One that does asks us first.)
    if (has_work())
      wake();
    else if (!armed_)
      arm_now();
  }
  return n;
}

void UcxEndpoint::post(Slot& s) {
  // NO_IMM_CMPL: UCX 1.13 does not fill recv_info when a receive completes in
  // the call, so we always take the callback — which then runs inside
  // ucp_tag_recv_nbx(), before it returns the (already freed) request.
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  param.cb.recv = &on_slot_done;
  param.user_data = &s;
  s.done = false;
  s.status = UCS_OK;
  s.request = nullptr;
  ucs_status_ptr_t r =
      ucp_tag_recv_nbx(worker_, s.buf.data.get(), kSlotBytes, kStartTag, kStartMask, &param);
  if (UCS_PTR_IS_ERR(r)) {
    s.posted = false;
    COHORT_LOG_ERROR(kLog) << log_name_ << ": cannot post a receive: "
                           << ucs_status_string(UCS_PTR_STATUS(r)) << "; will retry";
    return;
  }
  s.posted = true;
  if (!s.done) s.request = r;
}

void UcxEndpoint::dispatch_ring(EventSink& sink) {
  for (std::size_t taken = 0; taken < kMaxSlotsPerPoll; ++taken) {
    Slot& s = ring_[ring_head_];
    if (!s.posted) {
      post(s);
      if (!s.posted) return;
    }
    if (!s.done) return;
    RxMsg* m = msgs_.get();
    m->start = std::move(s.buf);
    m->length = s.info.length;
    m->tag = decode_start(s.info.sender_tag);
    const ucs_status_t status = s.status;
    s.buf = slot_buffers_.get(kSlotBytes);
    ring_head_ = (ring_head_ + 1) % kRingSlots;
    post(s);  // now the youngest receive, at the ring's tail
    if (status != UCS_OK) {
      if (status != UCS_ERR_CANCELED) {
        COHORT_LOG_WARN(kLog) << log_name_ << " dropped a message (kind "
                              << static_cast<int>(m->tag.kind) << ", " << m->length
                              << " bytes): " << ucs_status_string(status);
      }
      recycle(m);
      continue;
    }
    route(m, sink);
  }
}

void UcxEndpoint::take_goodbyes() {
  for (std::size_t taken = 0; taken < kMaxSlotsPerPoll; ++taken) {
    Slot& s = ring_[ring_head_];
    if (!s.posted || !s.done) return;
    const StartTag t = decode_start(s.info.sender_tag);
    const bool ok = s.status == UCS_OK;
    ring_head_ = (ring_head_ + 1) % kRingSlots;
    post(s);  // the bytes are not needed, only the kind
    Peer* p = ok && t.kind != Kind::kHello ? find_sender(t.sender) : nullptr;
    if (p == nullptr) continue;
    if (t.kind == Kind::kBye && p->ep != nullptr) send_control(*p, Kind::kByeAck);
    if (t.kind == Kind::kBye || t.kind == Kind::kByeAck) p->bye_acked = true;
  }
}

Peer* UcxEndpoint::find_sender(std::uint64_t sender) {
  if (!sender_is_key(sender)) {
    Peer* p = sender < peers_.size() ? peers_[sender].get() : nullptr;
    return p != nullptr && !p->accepted ? p : nullptr;
  }
  if (sender == cached_key_) {
    if (Peer* p = live(cached_key_peer_)) return p;
  }
  auto it = keys_.find(sender);
  if (it == keys_.end()) return nullptr;
  cached_key_ = sender;
  cached_key_peer_ = it->second;
  return live(it->second);
}

void UcxEndpoint::route(RxMsg* m, EventSink& sink) {
  const StartTag& t = m->tag;
  if (t.kind == Kind::kHello) {
    on_hello_start(m, sink);
    return;
  }
  Peer* p = find_sender(t.sender);
  if (p == nullptr || p->local_close) {
    COHORT_LOG_DEBUG(kLog) << log_name_ << " dropped a message from a closed or unknown sender"
                           << " (kind " << static_cast<int>(t.kind) << ", sender 0x" << std::hex
                           << t.sender << std::dec << ")";
    recycle(m);
    return;
  }
  bool ok = t.header_len <= kMaxHeader &&
            (t.split ? m->length == t.header_len + kSplitTrailer : m->length >= t.header_len);
  if (ok && t.split) ok = t.kind == Kind::kData && prepare_payload(*p, m);
  if (!ok) {
    fail(*p, Status(Errc::kProtocolError,
                    "ucx peer " + abbreviate(p->remote) + " sent a malformed message (kind " +
                        std::to_string(static_cast<int>(t.kind)) + ", header " +
                        std::to_string(t.header_len) + ", " + std::to_string(m->length) +
                        " bytes); connection dropped"));
    recycle(m);
    return;
  }
  enqueue(*p, m, sink);
}

bool UcxEndpoint::prepare_payload(Peer& p, RxMsg* m) {
  const std::byte* base = m->start.data.get() + m->tag.header_len;
  m->payload_size = get_u64(base);
  m->seq = get_u32(base + 8);
  if (m->seq > kSeqMask) return false;
  const bool hello = m->tag.kind == Kind::kHello;
  if (hello && m->payload_size > kAddressFixedBytes + kMaxWorkerAddress + kMaxHello) return false;
  if (!hello && m->payload_size > caps_.max_inline) {
    m->payload_state = RxMsg::Payload::kNone;  // announced; the caller picks the buffer
    return true;
  }
  m->payload = payload_buffers_.get(m->payload_size);
  RecvOp* r = recv_ops_.get();
  r->done = &done_;
  r->peer = p.id;
  r->msg = m;
  r->expected = m->payload_size;
  m->payload_state = RxMsg::Payload::kPending;
  if (Status st = post_payload(p, r, m->payload.data.get(), m->payload_size, m->seq); !st.is_ok()) {
    m->payload_state = RxMsg::Payload::kFailed;
    recv_ops_.put(r);
  }
  return true;
}

Status UcxEndpoint::post_payload(Peer& p, RecvOp* r, std::byte* dest, std::size_t size,
                                 std::uint32_t seq) {
  // NO_IMM_CMPL for the same reason as post(): the callback tells the length.
  ucp_request_param_t param{};
  param.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  param.cb.recv = &on_recv_done;
  param.user_data = r;
  ucs_status_ptr_t req = ucp_tag_recv_nbx(worker_, dest, size, payload_tag(seq, p.rx_sender),
                                          kExactMask, &param);
  if (UCS_PTR_IS_ERR(req)) return peer_status(p, UCS_PTR_STATUS(req));
  if (!r->finished) {
    r->request = req;
    remember(r);
  }
  ++p.pending;  // finish_recvs() gives it back, also when the callback already ran
  return Status();
}

bool UcxEndpoint::deliverable(const Peer& p) const noexcept {
  return !p.announced && !p.local_close && p.state != Peer::State::kGone;
}

bool UcxEndpoint::head_ready(Peer& p) noexcept {
  return !p.inbox.empty() && p.inbox.front()->payload_state != RxMsg::Payload::kPending &&
         deliverable(p);
}

void UcxEndpoint::mark_ready(Peer& p) {
  if (!p.in_ready) {
    p.in_ready = true;
    ready_.push_back(p.id);
  }
}

void UcxEndpoint::enqueue(Peer& p, RxMsg* m, EventSink& sink) {
  if (p.inbox.empty() && deliverable(p) && m->payload_state != RxMsg::Payload::kPending &&
      sink.has_room()) [[likely]] {
    deliver(p, m, sink);
    return;
  }
  p.inbox.push(m);
  if (head_ready(p)) mark_ready(p);
}

void UcxEndpoint::deliver_ready(EventSink& sink) {
  ready_work_.swap(ready_);
  for (PeerId id : ready_work_) {
    Peer* p = live(id);
    if (p == nullptr) continue;
    p->in_ready = false;
    while (sink.has_room() && head_ready(*p)) deliver(*p, p->inbox.pop(), sink);
    if (head_ready(*p)) mark_ready(*p);  // the span is full: the next poll goes on
  }
  ready_work_.clear();
}

void UcxEndpoint::deliver(Peer& p, RxMsg* m, EventSink& sink) {
  const std::byte* base = m->start.data.get();
  const std::size_t hlen = m->tag.header_len;
  switch (m->tag.kind) {
    case Kind::kHello:
      accept_hello(p, m, sink);
      return;
    case Kind::kBye:
      // Everything it sent before arrived before this: tell it so (it waits
      // for that before it closes, see ~UcxEndpoint), and let the ack leave
      // before our ep closes.
      if (p.ep != nullptr && send_control(p, Kind::kByeAck))
        p.close_by = std::chrono::steady_clock::now() + kByeGrace;
      fail(p, Status(Errc::kPeerLost, "ucx peer " + p.remote + " closed the connection"));
      recycle(m);
      return;
    case Kind::kByeAck:  // late: we are not closing
      recycle(m);
      return;
    case Kind::kRefuse:
      fail(p, Status(Errc::kPeerLost, "ucx peer at " + p.remote + " refused the connection: " +
                                          refuse_text(m->length >= 4 ? get_u32(base) : 0)));
      recycle(m);
      return;
    case Kind::kData:
      break;
    default:
      fail(p, Status(Errc::kProtocolError,
                     "ucx peer " + abbreviate(p.remote) + " sent a message of unknown kind " +
                         std::to_string(static_cast<int>(m->tag.kind))));
      recycle(m);
      return;
  }
  if (m->tag.split && m->payload_state == RxMsg::Payload::kFailed) {
    fail(p, Status(Errc::kPeerLost,
                   "the payload of a frame from ucx peer " + abbreviate(p.remote) + " was lost"));
    recycle(m);
    return;
  }
  Event& e = sink.next();
  e = Event{};
  e.peer = p.id;
  e.header = {base, hlen};
  if (!m->tag.split) {
    const std::size_t plen = m->length - hlen;
    if (plen <= caps_.max_inline) [[likely]] {
      e.kind = Event::Kind::kFrameArrived;
      e.payload = {base + hlen, plen};
      e.payload_size = plen;
      lease(m);
      return;
    }
    // The eager limit is below our slot size: announce it although it is here.
    e.kind = Event::Kind::kFrameAnnounced;
    e.payload_size = plen;
    p.announced = true;
    p.announced_size = plen;
    p.announced_msg = m;
    return;
  }
  if (m->payload_state == RxMsg::Payload::kDone) {
    e.kind = Event::Kind::kFrameArrived;
    e.payload = {m->payload.data.get(), m->payload_size};
    e.payload_size = m->payload_size;
  } else {  // kNone: the caller receives it (kPending never reaches here: head_ready())
    e.kind = Event::Kind::kFrameAnnounced;
    e.payload_size = m->payload_size;
    p.announced = true;
    p.announced_size = m->payload_size;
    p.announced_seq = m->seq;
  }
  lease(m);
}

void UcxEndpoint::finish_sends(EventSink& sink) {
  sends_work_.swap(done_.sends);
  for (SendOp* o : sends_work_) {
    if (o->orphan) {
      send_ops_.put(o);
      continue;
    }
    forget(o);
    Peer* p = live(o->peer);
    if (o->user) {
      Status st;
      if (o->status != UCS_OK)
        st = p != nullptr ? peer_status(*p, o->status)
                          : Status(Errc::kPeerLost, ucs_status_string(o->status));
      if (p != nullptr) {
        --p->pending;
        if (!st.is_ok()) fail(*p, st);
      }
      sink.emit(send_done(o->peer, o->op, std::move(st)));
    } else if (p != nullptr) {
      --p->internal_sends;
      if (o->status != UCS_OK) fail(*p, peer_status(*p, o->status));
    }
    send_ops_.put(o);
  }
  sends_work_.clear();
}

void UcxEndpoint::finish_recvs(EventSink& sink) {
  recvs_work_.swap(done_.recvs);
  for (RecvOp* r : recvs_work_) {
    if (r->orphan) {
      payload_buffers_.put(std::move(r->kept));
      recv_ops_.put(r);
      continue;
    }
    forget(r);
    Peer* p = live(r->peer);
    const bool ok = r->status == UCS_OK && r->length == r->expected;
    Status st;
    if (!ok) {
      st = r->status == UCS_OK
               ? Status(Errc::kProtocolError, "a payload arrived with " +
                                                  std::to_string(r->length) + " bytes, not " +
                                                  std::to_string(r->expected))
               : p != nullptr ? peer_status(*p, r->status)
                              : Status(Errc::kPeerLost, ucs_status_string(r->status));
    }
    if (p != nullptr) {
      --p->pending;
      if (!ok) fail(*p, st);
    }
    if (r->user) {
      sink.emit(recv_done(r->peer, r->op, std::move(st)));
    } else {
      r->msg->payload_state = ok ? RxMsg::Payload::kDone : RxMsg::Payload::kFailed;
      if (p != nullptr && head_ready(*p)) mark_ready(*p);
    }
    recv_ops_.put(r);
  }
  recvs_work_.clear();
}

void UcxEndpoint::recycle(RxMsg* m) {
  slot_buffers_.put(std::move(m->start));
  if (m->payload) payload_buffers_.put(std::move(m->payload));
  msgs_.put(m);
}

}  // namespace cohort::transport::ucx
