// Links between daemons: listening, dialling, authentication, framing.
// Membership is in cluster_membership.cpp, cross-host tasks in cluster_tasks.cpp.
#include "daemon/cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "daemon/daemon.hpp"
#include "daemon/host_starter.hpp"
#include "daemon/net_iface.hpp"

namespace cohort::daemon {

namespace {
constexpr const char* kLog = "daemon.cluster";
/// A peer that has not proved itself by then is dropped (it holds a socket).
constexpr std::chrono::seconds kAuthTimeout{10};
}  // namespace

Cluster::Cluster(Daemon& d, Poller& poller) : d_(d), poller_(poller) {}
Cluster::~Cluster() = default;

Result<std::pair<UniqueFd, std::string>> Cluster::bind_listener(const std::string& listen,
                                                                const std::string& iface) {
  std::string ip = listen;
  unsigned port = 0;
  if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    ip = listen.substr(0, colon);
    try {
      port = static_cast<unsigned>(std::stoul(listen.substr(colon + 1)));
    } catch (...) {
      return Status(Errc::kInvalidArgument, "--listen '" + listen + "': bad port (IP[:PORT])");
    }
  }
  if (ip.empty()) ip = "0.0.0.0";
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
    return Status(Errc::kInvalidArgument, "--listen '" + listen + "': '" + ip +
                                              "' is not an IPv4 address (IP[:PORT])");
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return errno_status(Errc::kIoError, "bind(" + listen + ")", errno);
  if (::listen(fd.get(), 128) != 0) return errno_status(Errc::kIoError, "listen", errno);
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  COHORT_ASSIGN_OR_RETURN(std::string adv, advertised_address(ip, ntohs(sa.sin_port), iface));
  return std::make_pair(std::move(fd), adv);
}

Status Cluster::open(UniqueFd listener, std::string address, ClusterOptions opts) {
  listen_fd_ = std::move(listener);
  address_ = std::move(address);
  opts_ = std::move(opts);
  d_.spawner().set_host_defaults(opts_.wdir, opts_.path);
  starter_ = std::make_unique<HostStarter>(*this);
  COHORT_RETURN_IF_ERROR(poller_.add(listen_fd_.get(), EPOLLIN, make_key(Source::kTcpListener, 0)));
  d_.output().set_remote_sink(
      [this](std::uint32_t host, const proto::Output& o) { forward_output(host, o); });
  d_.names().set_settled_hook([this](Tid t) { resolve_settled(t); });
  next_beat_ = Clock::now() + opts_.heartbeat_period;
  if (opts_.joined) {
    JoinResult& j = *opts_.joined;
    self_ = j.index;
    master_ = j.master;
    seq_ = j.seq;
    for (auto& h : j.hosts) {
      last_heard_[h.index] = Clock::now();
      hosts_[h.index] = h;
    }
    LinkId id = add_link(std::move(j.fd), true, hosts_[master_].address);
    PeerLink* l = find_link(id);
    l->set_state(PeerLink::State::kReady);
    l->peer_index = master_;
    by_index_[master_] = id;
    opts_.joined.reset();
  } else {
    proto::HostInfo me = d_.hosts().list(0).front();
    me.address = address_;
    me.slots = opts_.slots;
    hosts_[self_] = me;
  }
  COHORT_LOG_INFO(kLog) << "host " << self_ << " listens for daemons at " << address_
                        << (is_master() ? " (master)" : ", master is host " + std::to_string(master_));
  return Status();
}

std::uint32_t Cluster::find_host(const std::string& name) const {
  for (const auto& [i, h] : hosts_) {
    if (h.name == name || std::to_string(i) == name) return i;
    auto dot = h.name.find('.');
    if (dot != std::string::npos && h.name.substr(0, dot) == name) return i;
  }
  if (name == "localhost") return self_;
  return 0;
}

// ---- links -----------------------------------------------------------------------

LinkId Cluster::add_link(UniqueFd fd, bool dialled, const std::string& address) {
  LinkId id = next_link_++;
  int raw = fd.get();
  auto l = std::make_unique<PeerLink>(id, std::move(fd), dialled, address);
  // A dialled link learns of its connect through EPOLLOUT.
  Status s = poller_.add(raw, dialled ? (EPOLLIN | EPOLLOUT) : EPOLLIN, make_key(Source::kLink, id));
  if (!s.is_ok()) COHORT_LOG_ERROR(kLog) << "cannot watch a daemon link: " << s.to_string();
  links_[id] = std::move(l);
  return id;
}

PeerLink* Cluster::find_link(LinkId id) {
  auto it = links_.find(id);
  return it == links_.end() || it->second->state() == PeerLink::State::kClosing ? nullptr
                                                                                : it->second.get();
}

PeerLink* Cluster::link_to(std::uint32_t index) {
  if (index == self_ || dead_.count(index)) return nullptr;
  if (auto it = by_index_.find(index); it != by_index_.end())
    if (PeerLink* l = find_link(it->second)) return l;
  auto h = hosts_.find(index);
  if (h == hosts_.end()) return nullptr;
  // Lazily: the first message to a host dials it; frames queue until it is up.
  auto addrs = split_addresses(h->second.address);
  while (!addrs.empty()) {
    std::string a = addrs.front();
    addrs.erase(addrs.begin());
    auto fd = start_connect(a);
    if (!fd.is_ok()) continue;
    LinkId id = add_link(std::move(*fd), true, a);
    PeerLink* l = find_link(id);
    l->peer_index = index;
    l->fallbacks = addrs;
    by_index_[index] = id;
    return l;
  }
  return nullptr;
}

void Cluster::close_link(PeerLink& l, const std::string& why, bool warn) {
  if (l.state() == PeerLink::State::kClosing) return;
  if (warn)
    COHORT_LOG_WARN(kLog) << "dropping " << l.describe() << ": " << why;
  else
    COHORT_LOG_DEBUG(kLog) << "closing " << l.describe() << ": " << why;
  bool was_ready = l.ready();
  l.set_state(PeerLink::State::kClosing);
  closing_.push_back(l.id());
  if (auto it = by_index_.find(l.peer_index); it != by_index_.end() && it->second == l.id())
    by_index_.erase(it);
  if (was_ready && l.peer_index) link_lost(l);
}

void Cluster::on_listener() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    UniqueFd fd(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        COHORT_LOG_WARN(kLog) << "accept: " << std::strerror(errno);
      return;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    std::string from = std::string("tcp:") + ip + ":" + std::to_string(ntohs(sa.sin_port));
    LinkId id = add_link(std::move(fd), false, from);
    PeerLink* l = find_link(id);
    auto c = auth::make_challenge();
    if (!c.is_ok()) {
      close_link(*l, c.status().to_string(), true);
      continue;
    }
    l->challenge = *c;
    proto::PeerAuth pa;
    pa.challenge.assign(reinterpret_cast<const char*>(c->data()), c->size());
    pa.index = self_;
    pa.vm_name = d_.vm_name();
    l->queue(pa);
  }
}

void Cluster::on_link(LinkId id, std::uint32_t events) {
  PeerLink* l = find_link(id);
  if (!l) return;
  if (l->state() == PeerLink::State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(l->fd(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      // Try the peer's next advertised address on the same link.
      while (!l->fallbacks.empty()) {
        std::string a = l->fallbacks.front();
        l->fallbacks.erase(l->fallbacks.begin());
        auto fd = start_connect(a);
        if (!fd.is_ok()) continue;
        poller_.remove(l->fd());
        l->replace_fd(std::move(*fd), a);
        (void)poller_.add(l->fd(), EPOLLIN | EPOLLOUT, make_key(Source::kLink, id));
        return;
      }
      return close_link(*l, std::string("connect: ") + std::strerror(err), false);
    }
    l->set_state(PeerLink::State::kAuthenticating);
    auto c = auth::make_challenge();
    if (!c.is_ok()) return close_link(*l, c.status().to_string(), true);
    l->challenge = *c;
    proto::PeerAuth pa;
    pa.challenge.assign(reinterpret_cast<const char*>(c->data()), c->size());
    pa.index = self_;
    pa.vm_name = d_.vm_name();
    l->queue(pa);  // handshake frames bypass the frames held until the link is ready
  }
  if (events & EPOLLOUT) {
    Status s = l->flush();
    if (!s.is_ok()) return close_link(*l, s.message(), false);
    if (!l->has_output())
      (void)poller_.modify(l->fd(), EPOLLIN, make_key(Source::kLink, id));
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  bool eof = false;
  Status s = l->read_some(&eof);
  if (!s.is_ok()) return close_link(*l, s.message(), false);
  while (l->state() != PeerLink::State::kClosing) {
    auto f = l->next_frame();
    if (!f.is_ok()) return close_link(*l, f.status().message(), true);
    if (!f->has_value()) break;
    if (!l->ready())
      on_auth(*l, **f);
    else
      on_frame(*l, **f);
  }
  if (eof && l->state() != PeerLink::State::kClosing) close_link(*l, "it closed", false);
}

void Cluster::on_auth(PeerLink& l, const proto::FrameView& f) {
  if (f.type == proto::MsgType::kPeerAuth && !l.peer_said_auth) {
    proto::PeerAuth pa;
    if (Status s = proto::decode(f.body, pa); !s.is_ok()) return close_link(l, s.message(), true);
    if (pa.challenge.size() != auth::kChallengeBytes || pa.version != 1)
      return close_link(l, "its PeerAuth is malformed", true);
    if (pa.index != 0 && dead_.count(pa.index))
      return close_link(l, "host " + std::to_string(pa.index) + " was declared dead", true);
    if (!l.dialled()) l.peer_index = pa.index;
    l.peer_said_auth = true;
    auth::Challenge theirs{};
    std::memcpy(theirs.data(), pa.challenge.data(), theirs.size());
    auth::Mac m = auth::respond(d_.cookie(), theirs,
                                l.dialled() ? auth::kDialContext : auth::kAcceptContext);
    proto::PeerProof p;
    p.mac.assign(reinterpret_cast<const char*>(m.data()), m.size());
    l.queue(p);
    return;
  }
  if (f.type == proto::MsgType::kPeerProof && l.peer_said_auth) {
    proto::PeerProof p;
    if (Status s = proto::decode(f.body, p); !s.is_ok()) return close_link(l, s.message(), true);
    bool ok = auth::verify(d_.cookie(), l.challenge,
                           l.dialled() ? auth::kAcceptContext : auth::kDialContext,
                           {reinterpret_cast<const std::uint8_t*>(p.mac.data()), p.mac.size()});
    if (!ok)
      return close_link(l, "authentication failed: it does not know the VM's cookie", true);
    l.set_state(PeerLink::State::kReady);
    l.release_held();
    if (l.peer_index) {
      last_heard_[l.peer_index] = Clock::now();
      // The newest authenticated link to a host is the one used.
      by_index_[l.peer_index] = l.id();
    }
    COHORT_LOG_DEBUG(kLog) << "authenticated " << l.describe();
    return;
  }
  close_link(l, "it sent " + std::string(proto::msg_type_name(f.type)) + " before authenticating",
             true);
}

void Cluster::on_frame(PeerLink& l, const proto::FrameView& f) {
  if (l.peer_index) last_heard_[l.peer_index] = Clock::now();
  auto decode = [&](auto& m) {
    Status s = proto::decode(f.body, m);
    if (!s.is_ok()) close_link(l, s.message(), true);
    return s.is_ok();
  };
  switch (f.type) {
    case proto::MsgType::kJoinRequest: {
      proto::JoinRequest m;
      if (decode(m)) on_join(l, m);
      return;
    }
    case proto::MsgType::kHostEvent: {
      proto::HostEvent m;
      if (decode(m)) on_host_event(l, m);
      return;
    }
    case proto::MsgType::kHeartbeat: {
      proto::Heartbeat m;
      if (decode(m) && hosts_.count(l.peer_index))
        hears_master_[l.peer_index] = m.master == master_ && m.hears_master != 0;
      return;
    }
    case proto::MsgType::kStopDaemon: {
      proto::StopDaemon m;
      if (decode(m)) on_stop(m);
      return;
    }
    default:
      return on_task_frame(l, f);
  }
}

void Cluster::settle() {
  for (auto& [id, l] : links_) {
    if (l->state() == PeerLink::State::kClosing || l->state() == PeerLink::State::kConnecting ||
        !l->has_output())
      continue;
    Status s = l->flush();
    if (!s.is_ok()) {
      close_link(*l, s.message(), false);
      continue;
    }
    (void)poller_.modify(l->fd(), l->has_output() ? (EPOLLIN | EPOLLOUT) : EPOLLIN,
                         make_key(Source::kLink, id));
  }
  for (LinkId id : closing_) {
    auto it = links_.find(id);
    if (it == links_.end()) continue;
    if (it->second->has_output() && it->second->ready()) (void)it->second->flush();
    poller_.remove(it->second->fd());
    links_.erase(it);
  }
  closing_.clear();
}

Cluster::Clock::time_point Cluster::next_deadline() const {
  return next_beat_;
}

void Cluster::on_tick() {
  auto now = Clock::now();
  for (auto& [id, l] : links_)
    if (!l->ready() && l->state() != PeerLink::State::kClosing && now - l->opened > kAuthTimeout)
      close_link(*l, "no authentication within " + std::to_string(kAuthTimeout.count()) + " s",
                 true);
  if (starter_) starter_->on_tick();
  if (now < next_beat_) return;
  next_beat_ = now + opts_.heartbeat_period;
  heartbeat();
  check_liveness();
}

}  // namespace cohort::daemon
