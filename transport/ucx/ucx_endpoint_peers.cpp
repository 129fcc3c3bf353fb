// The ucx endpoint's peer failures and teardown, liveness, and waiting.
#include <unistd.h>

#include <cstring>

#include "base/log.hpp"
#include "transport/ucx/ucx_endpoint.hpp"

namespace cohort::transport::ucx {

namespace {
constexpr const char* kLog = "transport.ucx";
}  // namespace

void UcxEndpoint::on_ep_error(void* arg, ucp_ep_h /*ep*/, ucs_status_t status) {
  // Runs inside ucp_worker_progress() (or ucp_ep_close_nbx()): our thread, our call.
  auto* p = static_cast<Peer*>(arg);
  UcxEndpoint& self = *p->owner;
  if (self.closing_) {
    p->bye_acked = true;  // no acknowledgement will come: stop waiting for one
    return;
  }
  if (p->parked) {
    // Inside UCX this ep may carry a sibling's traffic (see park() in the header):
    // what broke it broke them too.
    for (auto& s : self.peers_) {
      if (s && s.get() != p && s->state == Peer::State::kOpen && s->worker == p->worker)
        self.fail(*s, Status(Errc::kPeerLost, "ucx peer " + s->remote + ": " +
                                                  ucs_status_string(status) +
                                                  " (reported by UCX on a sibling ep)"));
    }
    return;
  }
  if (p->state != Peer::State::kOpen) return;
  self.fail(*p, Status(Errc::kPeerLost, "ucx peer " + p->remote + ": " +
                                            ucs_status_string(status) + " (reported by UCX)"));
}

void UcxEndpoint::fail(Peer& p, Status why) {
  if (p.state != Peer::State::kOpen) return;
  p.state = Peer::State::kFailing;
  p.reason = std::move(why);
  failing_.push_back(p.id);
  COHORT_LOG_DEBUG(kLog) << log_name_ << " peer " << p.id << " failing: " << p.reason.to_string();
  // Whoever waits must come back to poll() to hear about it.
  wake();
}

void UcxEndpoint::watch(Peer& p) {
  if (!self_.owner.same_pid_space(p.identity) || p.identity.pid == self_.owner.pid ||
      p.identity.pid == 0)
    return;
  switch (liveness_.watch(p.id, p.identity.pid, p.identity.start_time)) {
    case Liveness::Watch::kWatching:
      p.watched = true;
      break;
    case Liveness::Watch::kGone:
      fail(p, Status(Errc::kPeerLost, "ucx peer " + p.remote + ": its process (pid " +
                                          std::to_string(p.identity.pid) + ") has exited"));
      break;
    case Liveness::Watch::kUnavailable:
      break;
  }
}

void UcxEndpoint::check_liveness() {
  // Only noted here: poll() first takes in everything the process sent before
  // it died (its last frames, the acks that complete our sends, its goodbye),
  // then fails it. A process that exits right after its last send is normal.
  liveness_.collect(dead_);
  if (!dead_.empty()) wake();
}

void UcxEndpoint::bury_dead() {
  for (PeerId id : dead_) {
    if (Peer* p = live(id)) {
      p->watched = false;
      fail(*p, Status(Errc::kPeerLost, "ucx peer " + p->remote + ": its process (pid " +
                                           std::to_string(p->identity.pid) + ") exited"));
    }
  }
  dead_.clear();
}

Status UcxEndpoint::peer_status(const Peer& p, ucs_status_t s) const {
  if (p.state != Peer::State::kOpen) {
    if (p.local_close) return Status(Errc::kCanceled, p.reason.message());
    return Status(Errc::kPeerLost, p.reason.message());
  }
  return Status(Errc::kPeerLost, "ucx peer " + p.remote + ": " + ucs_status_string(s));
}

void UcxEndpoint::drop_quietly(Peer& p, const std::string& why) {
  COHORT_LOG_WARN(kLog) << log_name_ << " dropped " << p.remote << ": " << why;
  p.local_close = true;
  p.close_by = std::chrono::steady_clock::now() + kByeGrace;
  fail(p, Status(Errc::kCanceled, why));
}

void UcxEndpoint::advance_failures(EventSink& sink) {
  failing_work_.swap(failing_);
  for (PeerId id : failing_work_) {
    Peer* p = live(id);
    if (p != nullptr && !finish_failure(*p, sink)) failing_.push_back(id);
  }
  failing_work_.clear();
}

bool UcxEndpoint::finish_failure(Peer& p, EventSink& sink) {
  if (!p.ep_closed) {
    // A goodbye (local close) or its ack leaves first (bounded: the peer may not read).
    if (p.internal_sends > 0 && std::chrono::steady_clock::now() < p.close_by) return false;
    if (p.ep != nullptr && has_open_sibling(p)) {
      // A sibling's frames may still travel on this ep inside UCX: park it.
      // Its receives UCX has not matched end now; what UCX already runs on it
      // finishes on the open connection (or is given up below).
      p.parked = true;
      for (RecvOp* r : posted_recvs_)
        if (r->peer == p.id && r->request != nullptr) ucp_request_cancel(worker_, r->request);
      COHORT_LOG_DEBUG(kLog) << log_name_ << " peer " << p.id
                             << ": ep parked while a sibling to the same worker is open";
    } else {
      // Force: every request on the ep ends (UCS_ERR_CANCELED) in the next
      // progress, and UCX lets go of the caller's buffers.
      close_ep(p);
      close_parked(p.worker);
    }
    p.ep_closed = true;
  }
  // Slots that finished before the failure are routed first (poll() takes a
  // bounded number per call).
  if (ring_[ring_head_].done) return false;
  if (p.pending > 0) {
    // Their kSendDone/kRecvDone come first. UCX normally ends them all when the
    // ep closes; one it keeps (a rendezvous from a process that died mid-way)
    // is given up once the close is done and a grace period has passed.
    if (p.close_request != nullptr && ucp_request_check_status(p.close_request) == UCS_INPROGRESS)
      return false;
    const auto now = std::chrono::steady_clock::now();
    if (p.abandon_at == std::chrono::steady_clock::time_point{}) p.abandon_at = now + kByeGrace;
    if (now < p.abandon_at) return false;
    abandon_ops(p, sink);
  }
  if (!p.local_close) {
    // What arrived before the failure is still reported, in order.
    while (head_ready(p)) {
      if (!sink.has_room()) return false;
      deliver(p, p.inbox.pop(), sink);
    }
  }
  while (!p.inbox.empty()) recycle(p.inbox.pop());
  if (RxMsg* m = std::exchange(p.announced_msg, nullptr)) lease(m);
  if (p.visible && !p.local_close) sink.emit(peer_down(p.id, p.reason));
  COHORT_LOG_DEBUG(kLog) << log_name_ << " peer " << p.id << " gone: " << p.reason.to_string();
  p.state = Peer::State::kGone;
  if (p.watched) {
    liveness_.unwatch(p.id);
    p.watched = false;
  }
  if (p.accepted) {
    if (auto it = keys_.find(p.rx_sender); it != keys_.end() && it->second == p.id)
      keys_.erase(it);
    if (cached_key_ == p.rx_sender) cached_key_ = 0;
  }
  if (p.ep != nullptr) ++parked_retired_;
  retired_.push_back(std::move(peers_[p.id]));
  return true;
}

void UcxEndpoint::close_ep(Peer& p) {
  if (p.ep == nullptr) return;
  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  param.flags = UCP_EP_CLOSE_FLAG_FORCE;
  ucs_status_ptr_t r = ucp_ep_close_nbx(p.ep, &param);
  if (UCS_PTR_IS_PTR(r)) p.close_request = r;
  p.ep = nullptr;
}

bool UcxEndpoint::has_open_sibling(const Peer& p) const {
  for (const auto& s : peers_) {
    if (s && s.get() != &p && s->ep != nullptr && !s->parked && !s->ep_closed &&
        s->worker == p.worker)
      return true;
  }
  return false;
}

void UcxEndpoint::close_parked(const std::string& worker) {
  auto close_if_parked = [&](Peer& s) {
    if (!s.parked || s.ep == nullptr || s.worker != worker) return false;
    close_ep(s);
    return true;
  };
  for (auto& s : peers_)
    if (s) close_if_parked(*s);
  for (auto& s : retired_)
    if (close_if_parked(*s)) --parked_retired_;
}

void UcxEndpoint::abandon_ops(Peer& p, EventSink& sink) {
  const Status why(Errc::kPeerLost, p.reason.message() + " (UCX did not end the operation)");
  for (std::size_t i = sends_in_flight_.size(); i-- > 0;) {
    SendOp* o = sends_in_flight_[i];
    if (o->peer != p.id) continue;
    forget(o);
    o->orphan = true;
    if (o->user) {
      sink.emit(send_done(p.id, o->op, p.local_close ? Status(Errc::kCanceled, why.message()) : why));
      --p.pending;
    } else if (p.internal_sends > 0) {
      --p.internal_sends;
    }
  }
  for (std::size_t i = posted_recvs_.size(); i-- > 0;) {
    RecvOp* r = posted_recvs_[i];
    if (r->peer != p.id) continue;
    forget(r);
    r->orphan = true;
    --p.pending;
    if (r->user) {
      sink.emit(recv_done(p.id, r->op, p.local_close ? Status(Errc::kCanceled, why.message()) : why));
    } else if (r->msg != nullptr) {
      // UCX may still write into the buffer: it leaves the message with the op.
      r->kept = std::move(r->msg->payload);
      r->msg->payload_state = RxMsg::Payload::kFailed;
      r->msg = nullptr;
    }
  }
  COHORT_LOG_WARN(kLog) << log_name_ << " gave up operations on " << p.remote
                        << " that UCX did not end after closing its ep";
  p.pending = 0;
}

void UcxEndpoint::remember(SendOp* o) {
  o->index = sends_in_flight_.size();
  sends_in_flight_.push_back(o);
}

void UcxEndpoint::forget(SendOp* o) {
  if (o->index >= sends_in_flight_.size() || sends_in_flight_[o->index] != o) return;
  sends_in_flight_[o->index] = sends_in_flight_.back();
  sends_in_flight_[o->index]->index = o->index;
  sends_in_flight_.pop_back();
}

void UcxEndpoint::remember(RecvOp* r) {
  r->index = posted_recvs_.size();
  posted_recvs_.push_back(r);
}

void UcxEndpoint::forget(RecvOp* r) {
  if (r->index >= posted_recvs_.size() || posted_recvs_[r->index] != r) return;
  posted_recvs_[r->index] = posted_recvs_.back();
  posted_recvs_[r->index]->index = r->index;
  posted_recvs_.pop_back();
}

void UcxEndpoint::reap_retired() {
  std::erase_if(retired_, [](std::unique_ptr<Peer>& p) {
    if (p->ep != nullptr) return false;  // parked: UCX's error callback holds its address
    if (p->close_request != nullptr) {
      if (ucp_request_check_status(p->close_request) == UCS_INPROGRESS) return false;
      ucp_request_free(p->close_request);
      p->close_request = nullptr;
    }
    return true;
  });
}

bool UcxEndpoint::has_work() const noexcept {
  return !ready_.empty() || !overflow_.empty() || !failing_.empty() ||
         retired_.size() > parked_retired_ ||
         !dead_.empty() ||
         !done_.sends.empty() || !done_.recvs.empty() || ring_[ring_head_].done;
}

void UcxEndpoint::wake() {
  if (wake_armed_) return;
  std::uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof one) == sizeof one) wake_armed_ = true;
}

void UcxEndpoint::arm_now() {
  check_liveness();
  if (has_work()) {
    wake();
    return;
  }
  ucs_status_t s = ucp_worker_arm(worker_);
  if (s == UCS_OK) {
    armed_ = true;
  } else {
    // UCS_ERR_BUSY: UCX has events we have not progressed yet. Poll again.
    if (s != UCS_ERR_BUSY) {
      COHORT_LOG_WARN(kLog) << log_name_ << ": ucp_worker_arm: " << ucs_status_string(s);
    }
    wake();
  }
}

bool UcxEndpoint::prepare_wait() {
  caller_prepares_ = true;
  if (has_work()) return false;
  check_liveness();
  if (!dead_.empty()) return false;
  // Always arm here (even if poll() did): arming also drains a signal that
  // fired for something poll() has since handled, so the sleep is not cut short.
  ucs_status_t s = ucp_worker_arm(worker_);
  if (s == UCS_OK) {
    armed_ = true;
    return true;
  }
  if (s == UCS_ERR_BUSY) return false;
  COHORT_LOG_WARN(kLog) << log_name_ << ": ucp_worker_arm: " << ucs_status_string(s);
  return true;
}

}  // namespace cohort::transport::ucx
