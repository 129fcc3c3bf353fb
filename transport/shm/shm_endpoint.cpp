#include "transport/shm/shm_endpoint.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "base/log.hpp"
#include "transport/base/options.hpp"

namespace cohort::transport::shm {

namespace {

constexpr const char* kLog = "transport.shm";

// epoll tags: the kind in the high half, a PeerId in the low half.
constexpr std::uint64_t kTagControl = std::uint64_t{1} << 32;
constexpr std::uint64_t kTagWake = std::uint64_t{2} << 32;
constexpr std::uint64_t kTagDoorbell = std::uint64_t{3} << 32;
constexpr std::uint64_t kTagPidfd = std::uint64_t{4} << 32;
constexpr std::uint64_t kTagKind = ~std::uint64_t{0} << 32;

// How often a busy poll() looks at the epoll set (a power of two, minus one).
// An empty epoll_wait costs 0.2-0.5 µs here and a poll() of an idle pair
// about 40 ns: every 128th poll was measured to cost ~10% of a spinning core
// (perf stat, syscalls:sys_enter_epoll_wait); every 1024th costs ~1% and still
// notices a dead peer or a new connection within tens of microseconds.
constexpr std::uint32_t kCheckMask = 1023;
// The same for callers that never call prepare_wait(): they may block after
// any short poll, and a control message or a dead peer wakes them until a
// poll() looks. Doorbells need no look: a ring shows in shared memory
// (Doorbell::arm()). Every 16th poll bounds those extra wake-ups.
constexpr std::uint32_t kStrictCheckMask = 15;
// Rounds of "arm, re-check, service" at the end of a poll() of a caller that
// never calls prepare_wait(); after that the wait fd is made readable.
constexpr int kMaxArmRounds = 4;

int pidfd_open(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

UniqueFd make_eventfd() {
  return UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

}  // namespace

Result<std::unique_ptr<Endpoint>> ShmEndpoint::open(const EndpointOptions& options) {
  COHORT_RETURN_IF_ERROR(check_options(options));
  std::unique_ptr<ShmEndpoint> ep(new ShmEndpoint());
  ep->hello_ = options.hello;
  ep->caps_.max_inline = resolve_eager_limit(options, kLog);
  ep->caps_.max_iov = kMaxPayloadIov;
  ep->caps_.wait_fd = true;
  ep->caps_.thread_safe = false;
  ep->mode_ = copy_mode_from_env();
  COHORT_ASSIGN_OR_RETURN(ep->control_, ControlSocket::open());
  ep->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep->epoll_) return errno_status(Errc::kIoError, "epoll_create1", errno);
  ep->wake_fd_ = make_eventfd();
  if (!ep->wake_fd_) return errno_status(Errc::kIoError, "eventfd", errno);
  COHORT_RETURN_IF_ERROR(ep->watch(ep->control_.fd(), kTagControl));
  COHORT_RETURN_IF_ERROR(ep->watch(ep->wake_fd_.get(), kTagWake));
  // Without pidfds (old kernel, seccomp) peers still see an orderly close;
  // a killed task is then noticed only through failed copies.
  ep->self_pidfd_.reset(pidfd_open(::getpid()));
  if (!ep->self_pidfd_) {
    COHORT_LOG_DEBUG(kLog) << "pidfd_open: " << std::strerror(errno)
                           << "; peers will not notice if this process is killed";
  }
  ep->self_.host = local_host_identity();
  ep->self_.pid_ns = local_pid_namespace();
  ep->self_.pid = ::getpid();
  ep->self_.socket_name = ep->control_.name();
  ep->self_.eager_limit = ep->caps_.max_inline;
  ep->address_ = format_address(ep->self_);
  COHORT_LOG_DEBUG(kLog) << "endpoint " << ep->address_ << " open, copy mode "
                         << static_cast<int>(ep->mode_);
  return std::unique_ptr<Endpoint>(std::move(ep));
}

ShmEndpoint::~ShmEndpoint() {
  for (auto& p : peers_)
    if (p) p->leave();
  // Connections that queued up but were never looked at are refused, so that
  // their senders do not wait for an answer that cannot come.
  while (auto m = control_.receive())
    if (m->kind == ControlKind::kConnect) (void)control_.send(m->from, ControlKind::kReject, m->token, {});
}

Status ShmEndpoint::watch(int fd, std::uint64_t tag) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return errno_status(Errc::kIoError, "epoll_ctl(ADD)", errno);
  return Status();
}

void ShmEndpoint::unwatch(int fd) noexcept {
  // Explicitly: an eventfd shared with another endpoint of this process stays
  // open after we close our descriptor, and so would its registration.
  if (fd >= 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

PeerId ShmEndpoint::add_peer(std::unique_ptr<Peer> peer) {
  PeerId id = peer->id();
  Status s = watch(peer->bell().fd(), kTagDoorbell | id);
  if (s.is_ok() && peer->pidfd) s = watch(peer->pidfd.get(), kTagPidfd | id);
  if (!s.is_ok()) peer->close(s);
  peers_.push_back(std::move(peer));
  active_dirty_ = true;
  return id;
}

void ShmEndpoint::wake() {
  if (wake_armed_) return;
  std::uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof one) == sizeof one) wake_armed_ = true;
}

// ---- connecting -------------------------------------------------------------

Result<PeerId> ShmEndpoint::connect(const Address& addr) {
  COHORT_ASSIGN_OR_RETURN(ShmAddress a, parse_address(addr));
  if (a.host != self_.host)
    return Status(Errc::kInvalidArgument, "shm address '" + addr +
                                              "' belongs to another host (shm reaches() is false)");
  const auto id = static_cast<PeerId>(peers_.size());
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const std::uint64_t token = std::uint64_t{id} << 32 | (random() & 0xffffffff);
  UniqueFd mine = make_eventfd(), theirs = make_eventfd();
  if (!mine || !theirs) return errno_status(Errc::kIoError, "eventfd", errno);
  const std::size_t limits[2] = {caps_.max_inline, a.eager_limit};
  UniqueFd memfd;
  COHORT_ASSIGN_OR_RETURN(
      Segment seg, Segment::create(token, limits,
                                   {reinterpret_cast<const std::byte*>(hello_.data()), hello_.size()},
                                   memfd));
  Doorbell bell;
  bell.attach(&seg.side(0).sleeping, &seg.side(1).sleeping, std::move(mine), std::move(theirs));
  auto p = std::make_unique<Peer>(Peer::Config{id, 0, addr, mode_}, std::move(seg), std::move(bell));
  p->visible = true;
  p->token = token;
  p->socket_name = a.socket_name;
  p->pending_fd = std::move(memfd);
  // Watch the acceptor's process before it answers, when its pid means the
  // same process here; its answer brings an exact pidfd anyway.
  if (a.pid_ns != 0 && a.pid_ns == self_.pid_ns) {
    p->pid = a.pid;
    p->pidfd.reset(pidfd_open(a.pid));
    if (!p->pidfd && errno == ESRCH)
      p->close(Status(Errc::kPeerLost, "connect to " + addr + ": its process has ended"));
  }
  Peer& peer = *p;
  add_peer(std::move(p));
  if (!peer.closing()) send_handshake(peer);
  // Even a connect that failed at once is reported from poll(), like any other.
  if (peer.closing()) wake();
  COHORT_LOG_DEBUG(kLog) << address_ << " peer " << id << ": connecting to " << addr;
  return id;
}

void ShmEndpoint::send_handshake(Peer& p) {
  Status s;
  if (p.side() == 0) {
    int fds[kMaxControlFds] = {p.pending_fd.get(), p.bell().fd(), p.bell().their_fd(),
                               self_pidfd_.get()};
    s = control_.send(p.socket_name, ControlKind::kConnect, p.token,
                      {fds, self_pidfd_ ? std::size_t{4} : std::size_t{3}});
    if (s.is_ok()) p.pending_fd.reset();  // the peer holds the segment now; so do we (mapped)
  } else {
    int fds[1] = {self_pidfd_.get()};
    s = control_.send(p.socket_name, ControlKind::kAccept, p.token,
                      {fds, self_pidfd_ ? std::size_t{1} : std::size_t{0}});
    if (s.is_ok()) {
      p.accepted = true;
      p.set_tx_ready();
    }
  }
  if (s.code() == Errc::kRetry) {
    if (!p.handshake_retry) ++handshakes_waiting_;
    p.handshake_retry = true;
    return;
  }
  if (p.handshake_retry) --handshakes_waiting_;
  p.handshake_retry = false;
  // A connector that wrote its frames and closed before our answer came is
  // not an error: the frames already in the ring are handed out and then the
  // peer goes down (service()).
  if (!s.is_ok() && p.side() == 1 && !p.peer_alive_for_cma()) {
    if (!p.peer_left()) p.mark_dead();  // it exited without closing
    p.accepted = true;
    return;
  }
  if (!s.is_ok())
    p.close(Status(Errc::kPeerLost, (p.side() == 0 ? "connect to " : "answer to ") + p.remote() +
                                        ": " + s.message()));
}

void ShmEndpoint::on_connect(ControlMessage& m) {
  auto refuse = [&](const std::string& why) {
    COHORT_LOG_WARN(kLog) << address_ << " refused a connection from @" << m.from << ": " << why;
    (void)control_.send(m.from, ControlKind::kReject, m.token, {});
  };
  if (m.uid != ::geteuid()) return refuse("it belongs to uid " + std::to_string(m.uid));
  if (m.fd_count < 3) return refuse("the request lacks its descriptors");
  auto seg = Segment::adopt(m.fds[0].get());
  if (!seg.is_ok()) return refuse(seg.status().message());
  m.fds[0].reset();  // mapped: the memory lives as long as the mappings do
  const Layout& l = seg->layout();
  if (l.token != m.token) return refuse("the segment belongs to another connection");
  if (l.eager_limit[1] != caps_.max_inline)
    return refuse("it expects an eager limit of " + std::to_string(l.eager_limit[1]) +
                  " bytes, ours is " + std::to_string(caps_.max_inline));
  const auto id = static_cast<PeerId>(peers_.size());
  Doorbell bell;
  bell.attach(&seg->side(1).sleeping, &seg->side(0).sleeping, std::move(m.fds[2]),
              std::move(m.fds[1]));
  auto p = std::make_unique<Peer>(Peer::Config{id, 1, "@" + m.from, mode_}, std::move(*seg),
                                  std::move(bell));
  p->pid = m.pid;
  p->token = m.token;
  p->socket_name = m.from;
  if (m.fd_count >= 4) p->pidfd = std::move(m.fds[3]);
  Peer& peer = *p;
  add_peer(std::move(p));
  send_handshake(peer);
  // The user hears of the peer (kPeerAccepted) in this poll or a later one,
  // even when its connector already left: what it wrote is still delivered.
  if (!peer.closing()) pending_accept_.push_back(id);
  COHORT_LOG_DEBUG(kLog) << address_ << " peer " << id << ": accepted @" << m.from << " (pid "
                         << m.pid << ")";
}

void ShmEndpoint::on_accept(ControlMessage& m) {
  Peer* p = live(static_cast<PeerId>(m.token >> 32));
  if (p == nullptr || p->side() != 0 || p->token != m.token || p->accepted) return;
  p->accepted = true;
  if (m.pid > 0) p->pid = m.pid;
  if (m.fd_count >= 1) {
    if (p->pidfd) unwatch(p->pidfd.get());
    p->pidfd = std::move(m.fds[0]);
    if (Status s = watch(p->pidfd.get(), kTagPidfd | p->id()); !s.is_ok()) p->close(s);
  }
}

void ShmEndpoint::handle_control() {
  while (auto m = control_.receive()) {
    switch (m->kind) {
      case ControlKind::kConnect:
        on_connect(*m);
        break;
      case ControlKind::kAccept:
        on_accept(*m);
        break;
      case ControlKind::kReject:
        if (Peer* p = live(static_cast<PeerId>(m->token >> 32));
            p != nullptr && p->side() == 0 && p->token == m->token)
          p->close(Status(Errc::kPeerLost, "connect to " + p->remote() +
                                               ": the endpoint refused the connection (it closed, "
                                               "or it belongs to another user)"));
        break;
    }
  }
}

bool ShmEndpoint::check_fds() {
  bool other = false;
  int n = ::epoll_wait(epoll_.get(), epoll_events_.data(), static_cast<int>(epoll_events_.size()), 0);
  for (int i = 0; i < n; ++i) {
    const std::uint64_t tag = epoll_events_[i].data.u64;
    Peer* p = live(static_cast<PeerId>(tag & ~kTagKind));
    switch (tag & kTagKind) {
      case kTagControl:
        handle_control();
        other = true;
        break;
      case kTagWake:
        other = true;
        break;
      case kTagDoorbell:
        if (p != nullptr) p->bell().drain();
        break;
      case kTagPidfd:
        if (p != nullptr) {
          p->mark_dead();
          unwatch(p->pidfd.get());  // it stays readable for good
        }
        other = true;
        break;
    }
  }
  if (handshakes_waiting_ > 0) {
    for (auto& p : peers_)
      if (p && p->handshake_retry && !p->closing()) send_handshake(*p);
    other = true;
  }
  return other;
}

// ---- the data path ----------------------------------------------------------

void ShmEndpoint::disconnect(PeerId peer) {
  Peer* p = live(peer);
  if (p == nullptr) return;
  EventSink later({}, overflow_);  // outside poll(): every event waits for the next one
  p->fail_pending(later, Status(Errc::kCanceled, "peer " + std::to_string(peer) + " (" +
                                                     p->remote() + ") disconnected locally"));
  p->leave();
  retire(peer);
  if (!overflow_.empty()) wake();
}

Result<Progress> ShmEndpoint::send(PeerId peer, const Frame& frame, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr) [[unlikely]]
    return bad_peer(peer, peer < peers_.size(), address_);
  if (frame.header.size() > kMaxHeader || frame.payload.size() > caps_.max_iov) [[unlikely]]
    return check_frame(frame, caps_.max_iov);
  return p->send(frame, op);
}

Result<Progress> ShmEndpoint::receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr) return bad_peer(peer, peer < peers_.size(), address_);
  auto r = p->receive_payload(dest, op);
  if (p->closing()) wake();  // torn down by the next poll()
  return r;
}

void ShmEndpoint::retire(PeerId id) {
  Peer& p = *peers_[id];
  unwatch(p.bell().fd());
  if (p.pidfd) unwatch(p.pidfd.get());
  if (p.handshake_retry) --handshakes_waiting_;
  p.handshake_retry = false;
  // Spans into its segment stay valid until the next poll().
  retired_.push_back(std::move(peers_[id]));
  active_dirty_ = true;
}

void ShmEndpoint::teardown(Peer& p, EventSink& sink) {
  const Status& why = p.reason();
  p.fail_pending(sink,
                 why.code() == Errc::kPeerLost ? why : Status(Errc::kPeerLost, why.message()));
  if (p.visible) sink.emit(peer_down(p.id(), why));
  if (why.code() == Errc::kProtocolError) {
    COHORT_LOG_WARN(kLog) << address_ << " dropped peer " << p.id() << " (" << p.remote()
                          << "): " << why.message();
  } else {
    COHORT_LOG_DEBUG(kLog) << address_ << " peer " << p.id() << " down: " << why.to_string();
  }
  p.leave();
  std::erase(pending_accept_, p.id());
  retire(p.id());
}

void ShmEndpoint::announce_accepted(EventSink& sink) {
  while (!pending_accept_.empty() && sink.has_room()) {
    PeerId id = pending_accept_.front();
    pending_accept_.erase(pending_accept_.begin());
    Peer* p = live(id);
    if (p == nullptr) continue;
    p->visible = true;
    Event& e = sink.next();
    e.kind = Event::Kind::kPeerAccepted;
    e.peer = id;
    e.op = 0;
    e.status.reset();
    e.header = {};
    e.payload = p->segment().hello();
    e.payload_size = e.payload.size();
  }
}

void ShmEndpoint::service_all(EventSink& sink) {
  if (active_dirty_) {
    active_.clear();
    for (auto& p : peers_)
      if (p) active_.push_back(p.get());
    active_dirty_ = false;
  }
  const std::size_t n = active_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Peer* p = active_[(rotate_ + i) % n];
    if (live(p->id()) != p) continue;  // retired earlier in this loop
    p->service(sink);
    if (p->closing()) teardown(*p, sink);
  }
  if (n > 1) rotate_ = (rotate_ + 1) % n;
}

bool ShmEndpoint::arm_and_recheck() {
  for (auto& p : peers_)
    if (p) p->bell().arm();
  for (auto& p : peers_)
    if (p && p->has_work()) return true;
  return false;
}

void ShmEndpoint::disarm_all() noexcept {
  for (auto& p : peers_)
    if (p) p->bell().disarm();
}

std::size_t ShmEndpoint::poll(std::span<Event> out) {
  // The common case, busy or idle: no handshake, no wake-up, no epoll look
  // due. Quiet peers with no new record cost two loads each; the others are
  // serviced as in poll_all().
  if (!calm() || ((polls_ + 1) & kCheckMask) == 0) [[unlikely]]
    return poll_all(out);
  ++polls_;
  EventSink sink(out, overflow_);
  const std::size_t n = active_.size();
  std::size_t k = rotate_ < n ? rotate_ : 0;
  for (std::size_t i = 0; i < n; ++i, k = k + 1 == n ? 0 : k + 1) {
    Peer* p = active_[k];
    if (p->quiet() && !p->rx_ready()) continue;
    if (live(p->id()) != p) continue;  // retired earlier in this loop
    p->service(sink);
    if (p->closing()) teardown(*p, sink);
  }
  if (n > 1) rotate_ = rotate_ + 1 < n ? rotate_ + 1 : 0;
  if (!overflow_.empty()) wake();
  return sink.used();
}

std::size_t ShmEndpoint::poll_all(std::span<Event> out) {
  retired_.clear();
  if (wake_armed_) {
    std::uint64_t v;
    (void)!::read(wake_fd_.get(), &v, sizeof v);
    wake_armed_ = false;
  }
  EventSink sink(out, overflow_);
  const bool look = armed_ || check_next_ || handshakes_waiting_ > 0 ||
                    (++polls_ & (strict_ ? kStrictCheckMask : kCheckMask)) == 0;
  if (armed_) {
    disarm_all();
    armed_ = false;
  }
  if (look) [[unlikely]] {
    check_next_ = false;
    check_fds();
  }
  if (!pending_accept_.empty()) [[unlikely]]
    announce_accepted(sink);
  service_all(sink);
  if (strict_) {
    // The caller may block as soon as this returns: arm every doorbell, and
    // make sure nothing arrived before the flags were up.
    bool work = false;
    for (int round = 0; round < kMaxArmRounds && sink.has_room(); ++round) {
      work = arm_and_recheck();
      if (!work) break;
      announce_accepted(sink);
      service_all(sink);
    }
    if (work && sink.has_room()) wake();
  }
  if (!overflow_.empty()) wake();
  return sink.used();
}

bool ShmEndpoint::prepare_wait() {
  strict_ = false;
  check_next_ = true;  // whatever happens, the next poll() looks at the epoll set
  if (!overflow_.empty() || !pending_accept_.empty() || wake_armed_) return false;
  if (check_fds() || !pending_accept_.empty()) return false;
  armed_ = true;
  return !arm_and_recheck();
}

}  // namespace cohort::transport::shm
