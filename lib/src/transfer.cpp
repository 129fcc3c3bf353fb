// The Engine's data path: resolving and connecting peers, sending, and
// starting, waiting for and withdrawing receives. (progress.cpp has the
// polling and event handling they rely on.)
#include "lib/src/progress.hpp"

#include "base/log.hpp"
#include "lib/src/op_id.hpp"

namespace cohort::lib {
namespace {
constexpr const char* kLog = "lib.progress";
}  // namespace

// ---- sending ------------------------------------------------------------------------

Result<Peer*> Engine::peer_for_send(Tid dest) {
  if (Peer* p = peers_.find(dest); p && p->ready()) return p;
  if (!tid::valid(dest) || tid::is_daemon(dest))
    return Status(Errc::kInvalidArgument, tid_name(dest) + " is not a task id");
  COHORT_RETURN_IF_ERROR(open_endpoints());
  Peer& p = peers_.get(dest);
  for (;;) {
    if (p.dead()) return Peers::error(p);
    if (p.ready()) return &p;
    if (p.resolved) {
      COHORT_RETURN_IF_ERROR(peers_.connect(p));
      report_choices();  // before the first message: the daemon learns it early
      continue;
    }
    if (p.resolve_req == 0) {
      if (link_->lost()) return link_->lost_status();
      COHORT_RETURN_IF_ERROR(peers_.resolve(p, *link_));
    }
    ++calls_;  // the answer is awaited: read the daemon at every poll
    Status st = wait([&] { return p.dead() || p.ready() || p.resolve_req == 0; });
    --calls_;
    COHORT_RETURN_IF_ERROR(st);
  }
}

Status Engine::start_send(SendOp& op, Tid dest, int tag, std::uint32_t context, std::uint8_t flags,
                          std::span<const std::byte> payload) {
  op.done = false;
  op.status.reset();
  Peer* p = peers_.find(dest);
  if (p == nullptr || !p->ready()) [[unlikely]] {
    if (dest == self_) {
      deliver(Envelope{self_, tag, context, flags, payload.size()}, payload);
      op.done = true;
      return Status();
    }
    COHORT_ASSIGN_OR_RETURN(p, peer_for_send(dest));
  }
  encode(WireHeader{flags, self_, tag, context}, op.header);
  op.iov.iov_base = const_cast<std::byte*>(payload.data());
  op.iov.iov_len = payload.size();
  const transport::Frame frame{op.header, std::span<const iovec>(&op.iov, payload.empty() ? 0 : 1)};
  for (;;) {
    auto r = eps_[p->ep].endpoint->send(p->out, frame, op_id(&op, kOpSend));
    if (r.is_ok()) {
      if (*r == transport::Progress::kDone) {
        op.done = true;
      } else {
        ++pending_sends_;
        ++slots_[p->ep].in_flight;
      }
      return Status();
    }
    Status st = r.take_status();
    if (st.code() == Errc::kRetry) {  // back-pressure: make progress, then try again
      slots_[p->ep].last_event = polls_;  // hot: poll_once() must poll it
      poll_once();
      if (!p->ready()) return p->dead() ? Peers::error(*p) : Status(Errc::kPeerLost, st.message());
      continue;
    }
    if (st.code() == Errc::kPeerLost) {
      peers_.mark_dead(
          *p,
          Status(Errc::kPeerLost, "task " + tid_name(dest) + " has exited (" + st.message() + ")"),
          polls_);
      return Peers::error(*p);
    }
    return st.with_context("send to " + tid_name(dest));
  }
}

Status Engine::finish_send(SendOp& op) {
  if (!op.done) (void)wait([&] { return op.done; }, std::nullopt, false);
  return op.status;
}

Status Engine::send(Tid dest, int tag, std::uint32_t context, std::uint8_t flags,
                    std::span<const std::byte> payload) {
  SendOp op;
  COHORT_RETURN_IF_ERROR(start_send(op, dest, tag, context, flags, payload));
  if (op.done && op.status.is_ok()) [[likely]]
    return Status();
  return finish_send(op);
}

std::string Engine::transport_to(Tid dest) {
  if (dest == self_) return "self";
  auto p = peer_for_send(dest);
  if (!p.is_ok()) return {};
  return std::string(peers_.transport_name(**p));
}

// ---- receiving ----------------------------------------------------------------------

void Engine::start_recv(RecvOp& op) {
  op.state = RecvOp::State::kIdle;
  op.status = Status();
  op.from = nullptr;
  if (UnexpectedMsg* m = matcher_.find_unexpected(op.source, op.tag, op.context)) {
    if (m->complete) {
      matcher_.unlink(m);
      deliver_unexpected(op, *m);
      matcher_.release(m);
    } else {
      m->claimed_by = &op;  // still arriving: it completes the receive when it is whole
      op.from = m;
      op.state = RecvOp::State::kReceiving;
    }
    return;
  }
  matcher_.post(op);
  if (op.source != kAnyTid) watch(op.source);
}

void Engine::watch(Tid source) {
  // Known already (the usual case after the first message): nothing to do.
  if (const Peer* known = peers_.find(source);
      known && (known->ready() || known->resolved || known->resolve_req != 0 || known->dead()))
    return;
  if (source == self_ || !tid::valid(source) || tid::is_daemon(source) || link_->lost()) return;
  Peer& p = peers_.get(source);
  if (p.dead() || p.resolved || p.resolve_req != 0 || p.out != transport::kNoPeer) return;
  Status st = peers_.resolve(p, *link_);  // the daemon now tells us when it exits
  if (!st.is_ok()) {
    COHORT_LOG_DEBUG(kLog) << "cannot watch " << tid_name(source) << ": " << st.to_string();
  }
}

bool Engine::recv_source_gone_slow(RecvOp& op) {
  if (!peers_.gone_for_recv(op.source, polls_)) return false;
  Peer& p = *peers_.find(op.source);
  if (!p.swept) {
    // The daemon may report an exit before an endpoint that notices new
    // connections lazily (shm looks every 1024th poll) has shown us the
    // connection the peer made, and sent on, just before it exited. Make
    // every endpoint look now; what arrives completes the receive, and a
    // connection found keeps it waiting for that connection's end.
    p.swept = true;
    sweep_endpoints();
    if (op.state != RecvOp::State::kPosted || !peers_.gone_for_recv(op.source, polls_))
      return false;
  }
  matcher_.cancel(op);
  op.status = Peers::error(*peers_.find(op.source));
  op.env.source = op.source;
  op.state = RecvOp::State::kDone;
  return true;
}

Status Engine::recv(RecvOp& op, std::optional<Clock::time_point> deadline) {
  start_recv(op);
  if (op.done()) return Status();
  Status st = wait([&] { return op.done() || recv_source_gone(op); }, deadline);
  if (st.is_ok()) return st;
  abandon_recv(op);
  return op.done() ? Status() : st;
}

void Engine::abandon_recv(RecvOp& op) noexcept {
  if (op.state == RecvOp::State::kPosted) {
    matcher_.cancel(op);
  } else if (op.state == RecvOp::State::kReceiving) {
    if (op.from) {  // give the claimed message back to the queue, where it was
      op.from->claimed_by = nullptr;
      op.from = nullptr;
      op.state = RecvOp::State::kIdle;
    } else if (!closed_) {  // the transport is writing into op's buffer: let it finish
      (void)wait([&] { return op.done(); }, std::nullopt, false);
    }
  }
}

const UnexpectedMsg* Engine::probe(Tid source, int tag, std::uint32_t context) {
  poll_once();
  return matcher_.find_unexpected(source, tag, context);
}

}  // namespace cohort::lib
