// Non-blocking sends and receives: Request, isend/irecv and test/wait.
//
// A request's operation lives in its Request::State (the transport borrows its
// address), linked into the session until the Request is destroyed. Once test,
// wait, wait_any or wait_all has returned a request's completion (or thrown its
// error) it is "reported": wait_any skips it, later test/wait return at once.
#include "lib/src/session_impl.hpp"

namespace cohort {
namespace {

constexpr std::uint32_t kUserContext = 0;

void release(std::shared_ptr<Request::State>& sp) noexcept {
  if (!sp) return;
  Request::State& s = *sp;
  if (s.impl && sp.use_count() == 1) {
    if (!s.done()) s.impl->abandon(s);
    if (s.linked()) s.impl->requests.erase(&s);
    s.impl = nullptr;
  }
  sp.reset();
}

}  // namespace

// ---- Request --------------------------------------------------------------------------

Request::Request(Request&& o) noexcept : state_(std::move(o.state_)) {}

Request& Request::operator=(Request&& o) noexcept {
  if (this != &o) {
    release(state_);
    state_ = std::move(o.state_);
  }
  return *this;
}

Request::~Request() {
  release(state_);
}

MessageInfo Request::info() const {
  if (!state_) throw Error(Errc::kInvalidArgument, "info() of an empty request");
  const State& s = *state_;
  if (s.kind == State::Kind::kSend || !s.recv.done()) return {};
  return {s.recv.env.source, s.recv.env.tag, s.recv.env.size};
}

Message& Request::message() {
  if (!state_ || state_->kind != State::Kind::kRecv || state_->recv.has_buffer)
    throw Error(Errc::kInvalidArgument,
                "message() is for a request from irecv(source, tag) without a buffer");
  return state_->message;
}

// ---- Session::Impl helpers --------------------------------------------------------------

std::shared_ptr<Request::State> Session::Impl::new_request(Request::State::Kind kind) {
  auto s = std::make_shared<Request::State>();
  s->kind = kind;
  return s;
}

void Session::Impl::raise(const Request::State& s) {
  if (!s.status().is_ok()) throw Error(s.status().code(), s.status().message());
}

void Session::Impl::abandon(Request::State& s) noexcept {
  if (s.kind == Request::State::Kind::kSend) {
    if (!s.send.done) (void)engine->finish_send(s.send);
  } else {
    engine->abandon_recv(s.recv);
  }
}

bool Session::Impl::ready(Request::State& s) {
  if (s.done()) return true;
  if (s.kind == Request::State::Kind::kRecv && engine->recv_source_gone(s.recv)) return true;
  return false;
}

// ---- starting -------------------------------------------------------------------------

namespace {

Request::State& checked(Session::Impl* impl, std::shared_ptr<Request::State>& sp) {
  if (!sp)
    throw Error(Errc::kInvalidArgument, "the request is empty (never started or moved from)");
  if (sp->impl != impl)
    throw Error(Errc::kInvalidArgument, "the request belongs to another (or a closed) session");
  return *sp;
}

}  // namespace

Request Session::isend(Tid dest, int tag, const Message& m) {
  Impl& s = *impl_;
  s.check_usable();
  if (tag < 0) throw Error(Errc::kInvalidArgument, "tag " + std::to_string(tag) + " is negative");
  auto st = s.new_request(Request::State::Kind::kSend);
  throw_if_error(s.engine->start_send(st->send, dest, tag, kUserContext, wire_flags(m), m.bytes()));
  st->impl = &s;
  s.requests.push_back(st.get());
  return Request(std::move(st));
}

Request Session::isend(Tid dest, int tag, std::span<const std::byte> bytes) {
  Impl& s = *impl_;
  s.check_usable();
  if (tag < 0) throw Error(Errc::kInvalidArgument, "tag " + std::to_string(tag) + " is negative");
  auto st = s.new_request(Request::State::Kind::kSend);
  throw_if_error(s.engine->start_send(st->send, dest, tag, kUserContext, lib::kFlagRaw, bytes));
  st->impl = &s;
  s.requests.push_back(st.get());
  return Request(std::move(st));
}

Request Session::irecv(Tid source, int tag) {
  Impl& s = *impl_;
  s.check_usable();
  if (source != kAnyTid && source <= 0)
    throw Error(Errc::kInvalidArgument, "irecv from " + std::to_string(source) + ": not a task id");
  auto st = s.new_request(Request::State::Kind::kRecv);
  st->recv.source = source;
  st->recv.tag = tag;
  st->recv.context = kUserContext;
  st->recv.message = &st->message;
  st->impl = &s;
  s.engine->start_recv(st->recv);
  s.requests.push_back(st.get());
  return Request(std::move(st));
}

Request Session::irecv(Tid source, int tag, std::span<std::byte> buffer) {
  Impl& s = *impl_;
  s.check_usable();
  if (source != kAnyTid && source <= 0)
    throw Error(Errc::kInvalidArgument, "irecv from " + std::to_string(source) + ": not a task id");
  auto st = s.new_request(Request::State::Kind::kRecv);
  st->recv.source = source;
  st->recv.tag = tag;
  st->recv.context = kUserContext;
  st->recv.has_buffer = true;
  st->recv.buffer = buffer;
  st->impl = &s;
  s.engine->start_recv(st->recv);
  s.requests.push_back(st.get());
  return Request(std::move(st));
}

// ---- completing -----------------------------------------------------------------------

bool Session::test(Request& r) {
  Request::State& s = checked(impl_.get(), r.state_);
  if (s.reported) return true;
  if (!impl_->ready(s)) {
    impl_->engine->poll_once();
    if (!impl_->ready(s)) return false;
  }
  s.reported = true;
  Impl::raise(s);
  return true;
}

void Session::wait(Request& r) {
  Request::State& s = checked(impl_.get(), r.state_);
  if (s.reported) return;
  // A send's buffers are borrowed until it is done: only a receive may give up early.
  const bool interruptible = s.kind == Request::State::Kind::kRecv;
  throw_if_error(impl_->engine->wait([&] { return impl_->ready(s); }, std::nullopt, interruptible));
  s.reported = true;
  Impl::raise(s);
}

std::size_t Session::wait_any(std::span<Request> rs) {
  Impl& impl = *impl_;
  bool any = false;
  for (auto& r : rs)
    if (r.valid()) {
      checked(&impl, r.state_);
      any = any || !r.state_->reported;
    }
  if (!any) throw Error(Errc::kInvalidArgument, "wait_any: no request is left to wait for");
  std::size_t hit = rs.size();
  auto pred = [&] {
    for (std::size_t i = 0; i < rs.size(); ++i) {
      Request::State* s = rs[i].state_.get();
      if (s && !s->reported && impl.ready(*s)) {
        hit = i;
        return true;
      }
    }
    return false;
  };
  throw_if_error(impl.engine->wait(pred));
  Request::State& s = *rs[hit].state_;
  s.reported = true;
  Impl::raise(s);
  return hit;
}

void Session::wait_all(std::span<Request> rs) {
  Impl& impl = *impl_;
  for (auto& r : rs)
    if (r.valid()) checked(&impl, r.state_);
  auto pred = [&] {
    for (auto& r : rs)
      if (r.state_ && !r.state_->reported && !impl.ready(*r.state_)) return false;
    return true;
  };
  throw_if_error(impl.engine->wait(pred));
  const Request::State* failed = nullptr;
  for (auto& r : rs) {
    if (!r.state_ || r.state_->reported) continue;
    r.state_->reported = true;
    if (!failed && !r.state_->status().is_ok()) failed = r.state_.get();
  }
  if (failed) Impl::raise(*failed);
}

}  // namespace cohort
