#include "lib/src/progress.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/env.hpp"
#include "base/log.hpp"
#include "lib/src/op_id.hpp"
#include "transport/registry.hpp"

namespace cohort::lib {
namespace {

constexpr const char* kLog = "lib.progress";

}  // namespace

Engine::Engine(std::unique_ptr<DaemonLink> link, Tid self, std::uint32_t host, Options options)
    : link_(std::move(link)),
      self_(self),
      host_(host),
      options_(options),
      peers_(eps_, self, host, SelectionPolicy::from_env()) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) {
    COHORT_LOG_WARN(kLog) << "epoll_create1 failed; waits will poll";
    can_sleep_ = false;
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = link_->fd();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, link_->fd(), &ev);
}

Engine::~Engine() {
  close();
}

Status Engine::open_endpoints() {
  if (opened_) return Status();
  if (closed_) return Status(Errc::kNotEnrolled, "the session has left the VM");
  COHORT_ASSIGN_OR_RETURN(auto enabled, transport::enabled());
  transport::EndpointOptions eo;
  // Every interface: peers on other hosts must reach us too. The hello carries
  // our token; connections without a valid one are dropped (on_event()).
  eo.bind_host = "";
  eo.hello = Peers::hello_bytes(self_, link_->cookie());
  eo.eager_limit = options_.eager_limit;
  std::string failures;
  const SelectionPolicy policy = SelectionPolicy::from_env();
  for (transport::Transport* t : enabled) {
    if (eps_.size() == kMaxEndpoints) break;
    // A fabric with no device here would never be chosen unless named, and
    // loading its library can cost more than the task's whole start-up.
    if (!t->native_hardware() && !policy.names(t->name())) {
      COHORT_LOG_DEBUG(kLog) << "not opening " << t->name()
                             << ": no device for it here (name it in " << env::kTransports
                             << " to use it anyway)";
      continue;
    }
    auto ep = t->open(eo);
    if (!ep.is_ok()) {
      COHORT_LOG_WARN(kLog) << "cannot open transport " << t->name() << ": "
                            << ep.status().to_string();
      failures += " " + std::string(t->name()) + ": " + ep.status().to_string() + ";";
      continue;
    }
    LocalEndpoint le;
    le.transport = t;
    le.endpoint = std::move(*ep);
    le.address = le.endpoint->address();
    le.native_fabric = native_fabric(le);
    if (le.endpoint->caps().wait_fd) {
      auto fd = le.endpoint->wait_fd();
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd.is_ok() ? *fd : -1;
      if (!fd.is_ok() || !epoll_ || ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, *fd, &ev) != 0)
        can_sleep_ = false;
    } else {
      can_sleep_ = false;
    }
    eps_.push_back(std::move(le));
  }
  if (eps_.empty())
    return Status(Errc::kUnsupported,
                  "no transport could be opened (" + std::string(env::kTransports) + " allows " +
                      std::to_string(enabled.size()) + "):" + failures +
                      " fix the cause or name other transports in " + env::kTransports);
  plan_polling();
  proto::Publish pub;
  for (const auto& le : eps_)
    pub.addresses.push_back({std::string(le.transport->name()), le.address});
  COHORT_ASSIGN_OR_RETURN(proto::Ack ack, call<proto::Ack>(pub));
  COHORT_RETURN_IF_ERROR(from_wire(ack.status).with_context("publishing our addresses"));
  opened_ = true;
  return Status();
}

void Engine::close() noexcept {
  if (closed_) return;
  if (pending_sends_ > 0) {
    // Sends the user already saw complete (isend without wait) get a chance to leave.
    Status st =
        wait([&] { return pending_sends_ == 0; }, Clock::now() + std::chrono::seconds(10), false);
    if (!st.is_ok()) {
      COHORT_LOG_WARN(kLog) << pending_sends_ << " send(s) still pending at exit were dropped";
    }
  }
  closed_ = true;
  nslots_ = 0;
  cold_epoll_.reset();
  eps_.clear();
  link_->close(0);
}

Status Engine::usable() const {
  if (closed_) return Status(Errc::kNotEnrolled, "the session has left the VM");
  if (halted_) return Status(Errc::kVmHalted, "the virtual machine has been halted");
  if (link_->lost()) return link_->lost_status();
  return Status();
}

// ---- events ---------------------------------------------------------------------------

void Engine::handle(std::uint8_t ep, transport::Event& ev) {
  using K = transport::Event::Kind;
  switch (ev.kind) {
    case K::kFrameArrived:
      on_frame(ep, ev, false);
      return;
    case K::kFrameAnnounced:
      on_frame(ep, ev, true);
      return;
    case K::kSendDone: {
      SendOp* op = op_ptr<SendOp>(ev.op);
      op->status = std::move(ev.status);
      op->done = true;
      if (pending_sends_ > 0) --pending_sends_;
      if (slots_[ep].in_flight > 0) --slots_[ep].in_flight;
      return;
    }
    case K::kRecvDone:
      if (slots_[ep].in_flight > 0) --slots_[ep].in_flight;
      if ((ev.op & kOpMask) == kOpRecv)
        on_recv_done(*op_ptr<RecvOp>(ev.op), ev.status);
      else
        on_unexpected_done(*op_ptr<UnexpectedMsg>(ev.op), ev.status);
      return;
    case K::kPeerAccepted: {
      Tid t = Peers::tid_from_hello(ev.payload, link_->cookie());
      if (t == kNoTid) {
        // Logged once per endpoint: a scanner must not fill the task's stderr.
        if (!eps_[ep].warned_stranger)
          COHORT_LOG_WARN(kLog) << "dropping a connection over " << eps_[ep].transport->name()
                                << " that is not from a task of this VM (no valid token); "
                                   "further ones are dropped silently";
        eps_[ep].warned_stranger = true;
        eps_[ep].endpoint->disconnect(ev.peer);
        return;
      }
      peers_.on_accepted(ep, ev.peer, t);
      return;
    }
    case K::kPeerDown:
      peers_.on_down(ep, ev.peer, ev.status, polls_);
      return;
  }
}

void Engine::on_frame(std::uint8_t ep, transport::Event& ev, bool announced) {
  WireHeader h;
  const std::size_t size = announced ? ev.payload_size : ev.payload.size();
  // A frame must come over a connection we know, from the task that proved
  // itself on it: not one refused for its hello (whose frames may be in the
  // same poll as its kPeerAccepted), and not one that names another sender.
  if (!parse(ev.header, h) || h.source != peers_.conn_tid(ep, ev.peer)) [[unlikely]]
    return drop_bad_frame(ep, ev);
  const Envelope e{h.source, h.tag, h.context, h.flags, size};
  if (!announced) {
    RecvOp* op = matcher_.match_posted(e);
    if (op != nullptr && op->has_buffer && size <= op->buffer.size()) [[likely]] {
      // The common case, a posted receive into a buffer that fits: one copy.
      op->env = e;
      if (size != 0) std::memcpy(op->buffer.data(), ev.payload.data(), size);
      op->state = RecvOp::State::kDone;
      return;
    }
    if (op != nullptr) return deliver_bytes(*op, e, ev.payload);
    UnexpectedMsg* m = matcher_.add_unexpected(e);
    m->data.assign(ev.payload.begin(), ev.payload.end());
    m->complete = true;
    return;
  }
  // The payload is still on the wire: receive it where it belongs.
  transport::Endpoint& endpoint = *eps_[ep].endpoint;
  if (RecvOp* op = matcher_.match_posted(e)) {
    auto r = endpoint.receive_payload(ev.peer, payload_target(*op, e), op_id(op, kOpRecv));
    if (!r.is_ok())
      finish_receive(*op, r.take_status());
    else if (*r == transport::Progress::kDone)
      finish_receive(*op, Status());
    else
      ++slots_[ep].in_flight;
    return;
  }
  UnexpectedMsg* m = matcher_.add_unexpected(e);
  m->data.resize(size);
  auto r = endpoint.receive_payload(ev.peer, m->data, op_id(m, kOpUnexpected));
  if (!r.is_ok())
    on_unexpected_done(*m, r.take_status());
  else if (*r == transport::Progress::kDone)
    on_unexpected_done(*m, Status());
  else
    ++slots_[ep].in_flight;
}

void Engine::drop_bad_frame(std::uint8_t ep, transport::Event& ev) {
  WireHeader h;
  Status st = decode(ev.header, h);
  if (const Tid from = peers_.conn_tid(ep, ev.peer); st.is_ok() && from == kNoTid) {
    // Refused at its hello (and warned about then): its frames go with it, quietly.
    eps_[ep].endpoint->disconnect(ev.peer);
    return;
  } else if (st.is_ok()) {
    st = Status(Errc::kProtocolError, "message that says it is from " + tid_name(h.source) +
                                          " came over the connection of " + tid_name(from));
  }
  COHORT_LOG_ERROR(kLog) << "dropping the connection of a peer that sent a bad frame: "
                         << st.to_string();
  eps_[ep].endpoint->disconnect(ev.peer);
}

void Engine::on_recv_done(RecvOp& op, const Status& st) {
  finish_receive(op, st);
}

void Engine::on_unexpected_done(UnexpectedMsg& m, const Status& st) {
  m.complete = true;
  m.status = st;
  if (RecvOp* op = m.claimed_by) {
    matcher_.unlink(&m);
    deliver_unexpected(*op, m);
    matcher_.release(&m);
  } else if (!st.is_ok()) {
    COHORT_LOG_WARN(kLog) << "lost a message from " << tid_name(m.env.source) << ": "
                          << st.to_string();
    matcher_.release(&m);
  }
}

void Engine::deliver(const Envelope& e, std::span<const std::byte> payload) {
  if (RecvOp* op = matcher_.match_posted(e)) {
    deliver_bytes(*op, e, payload);
    return;
  }
  UnexpectedMsg* m = matcher_.add_unexpected(e);
  m->data.assign(payload.begin(), payload.end());
  m->complete = true;
}

// ---- daemon events ------------------------------------------------------------------

void Engine::set_output_sink(Tid tid, std::shared_ptr<OutputFn> fn) {
  sinks_[tid] = std::move(fn);
}

void Engine::end_spawn() {
  if (spawns_in_flight_ > 0) --spawns_in_flight_;
  if (held_.empty()) return;
  auto lines = std::move(held_);
  held_.clear();
  for (auto& l : lines) on_output(l);
}

void Engine::on_output(proto::Output& out) {
  auto it = sinks_.find(out.tid);
  if (it == sinks_.end() && spawns_in_flight_ > 0) {
    held_.push_back(std::move(out));  // its spawn's reply (and callback) may be on its way
    return;
  }
  if (it == sinks_.end() || !it->second) {
    write_default_output(out);
    return;
  }
  std::shared_ptr<OutputFn> fn = it->second;
  try {
    (*fn)(out.tid, static_cast<OutputStream>(out.stream), out.data);
  } catch (const std::exception& e) {
    COHORT_LOG_ERROR(kLog) << "the on_output callback threw (ignored): " << e.what();
  } catch (...) {
    COHORT_LOG_ERROR(kLog) << "the on_output callback threw (ignored)";
  }
}

void Engine::write_default_output(const proto::Output& out) {
  char prefix[24];
  int n = std::snprintf(prefix, sizeof prefix, "[t%x] ", static_cast<unsigned>(out.tid));
  std::string line;
  line.reserve(static_cast<std::size_t>(n) + out.data.size() + 1);
  line.append(prefix, static_cast<std::size_t>(n)).append(out.data).push_back('\n');
  const int fd = out.stream == proto::Stream::kStderr ? 2 : 1;
  std::fflush(fd == 2 ? stderr : stdout);  // keep order with what this process printed
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t k = ::write(fd, p, left);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    p += k;
    left -= static_cast<std::size_t>(k);
  }
}

void Engine::on_notify(const proto::NotifyEvent& ev) {
  switch (ev.kind) {
    case proto::NotifyKind::kPeerExit:
      peers_.on_exit(ev.subject, polls_);
      return;
    case proto::NotifyKind::kVmHalt:
      COHORT_LOG_INFO(kLog) << "the VM is halting";
      halted_ = true;
      return;
    case proto::NotifyKind::kTaskExit:
      peers_.on_exit(ev.subject, polls_);
      break;
    case proto::NotifyKind::kHostAdd:
    case proto::NotifyKind::kHostDelete:
      break;
    default:
      COHORT_LOG_WARN(kLog) << "ignoring a notification of unknown kind "
                            << static_cast<int>(ev.kind);
      return;
  }
  // An ordinary message from our daemon, unpacked by Session::decode_notification().
  Message m;
  m.pack(static_cast<std::uint8_t>(ev.kind)).pack(std::int32_t{ev.subject});
  m.pack(std::int32_t{ev.exit_code}).pack(std::int32_t{ev.signal});
  deliver(Envelope{tid::daemon_of(host_), ev.tag, 0, kNativeOrderFlag, m.size()}, m.bytes());
}

}  // namespace cohort::lib
