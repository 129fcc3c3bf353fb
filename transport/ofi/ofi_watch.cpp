#include "transport/ofi/ofi_watch.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace cohort::transport::ofi {

namespace {

constexpr const char* kLog = "transport.ofi";
constexpr int kMaxAcceptsPerCall = 64;
constexpr std::size_t kReadChunk = 16 * 1024;

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&ss); }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

std::string format(const SockAddr& a) {
  char host[INET6_ADDRSTRLEN] = {};
  unsigned port = 0;
  if (a.ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a.ss);
    ::inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
    port = ntohs(s6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  auto* s4 = reinterpret_cast<const sockaddr_in*>(&a.ss);
  ::inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
  port = ntohs(s4->sin_port);
  return std::string(host) + ":" + std::to_string(port);
}

/// "1.2.3.4:5" or "[::1]:5", numeric only.
Result<SockAddr> parse(const std::string& text) {
  auto fail = [&] {
    return Status(Errc::kInvalidArgument, "bad ofi watch address '" + text + "'");
  };
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return fail();
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  unsigned long port = std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port == 0 || port > 65535) return fail();
  SockAddr a;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<std::uint16_t>(port));
    a.len = sizeof *s4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<std::uint16_t>(port));
    a.len = sizeof *s6;
  } else {
    return fail();
  }
  return a;
}

Result<SockAddr> resolve(const std::string& host, int flags) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | AI_NUMERICSERV;
  hints.ai_family = host.empty() ? AF_INET : AF_UNSPEC;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), "0", &hints, &res);
  if (rc != 0 || res == nullptr)
    return Status(Errc::kInvalidArgument, "ofi watch: cannot resolve '" + host +
                                              "': " + ::gai_strerror(rc));
  SockAddr a;
  std::memcpy(&a.ss, res->ai_addr, res->ai_addrlen);
  a.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return a;
}

void set_port(SockAddr& a, std::uint16_t port_be) {
  if (a.ss.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&a.ss)->sin6_port = port_be;
  else
    reinterpret_cast<sockaddr_in*>(&a.ss)->sin_port = port_be;
}

bool connected_to_itself(int fd) {
  // Connecting to a free loopback port may pick that port as the source and
  // "succeed" by simultaneous open: nobody listens, so it is a refusal.
  SockAddr local, peer;
  local.len = peer.len = sizeof local.ss;
  if (::getsockname(fd, local.get(), &local.len) != 0) return false;
  if (::getpeername(fd, peer.get(), &peer.len) != 0) return false;
  return local.len == peer.len && std::memcmp(&local.ss, &peer.ss, local.len) == 0;
}

}  // namespace

struct Watch::Conn {
  UniqueFd fd;
  bool connecting = false;
  bool busy = false;
  bool out_armed = false;
  std::string remote;
  std::vector<std::byte> in;   // bytes read, not yet a whole record
  std::vector<std::byte> out;  // bytes to send from out_at
  std::size_t out_at = 0;
};

Result<std::unique_ptr<Watch>> Watch::open(const std::string& bind_host, int epoll_fd) {
  COHORT_ASSIGN_OR_RETURN(SockAddr bind_to, resolve(bind_host, AI_PASSIVE));
  std::unique_ptr<Watch> w(new Watch());
  w->epoll_fd_ = epoll_fd;
  auto failed = [&](const char* call) {
    int err = errno;
    return errno_status(Errc::kIoError, "ofi watch listener on '" + bind_host + "': " + call, err);
  };
  w->listen_.reset(::socket(bind_to.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!w->listen_) return failed("socket");
  if (::bind(w->listen_.get(), bind_to.get(), bind_to.len) != 0) return failed("bind");
  if (::listen(w->listen_.get(), SOMAXCONN) != 0) return failed("listen");
  SockAddr bound;
  bound.len = sizeof bound.ss;
  if (::getsockname(w->listen_.get(), bound.get(), &bound.len) != 0) return failed("getsockname");
  if (bind_host.empty()) {
    // Listening everywhere: publish this host's own address (resolved now,
    // at open(), so that peers never wait for DNS).
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    auto self = resolve(name, 0);
    std::uint16_t port = reinterpret_cast<sockaddr_in*>(&bound.ss)->sin_port;
    bound = self.is_ok() ? *self : *parse("127.0.0.1:1");
    set_port(bound, port);
  }
  w->address_ = format(bound);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTagBase - 1;  // the listener
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, w->listen_.get(), &ev) != 0) return failed("epoll_ctl");
  return w;
}

Watch::~Watch() = default;  // sockets close; peers read end of file

Watch::ConnId Watch::add(UniqueFd fd, bool connecting) {
  auto id = static_cast<ConnId>(conns_.size());
  auto c = std::make_unique<Conn>();
  c->fd = std::move(fd);
  c->connecting = connecting;
  c->out_armed = connecting;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (connecting ? EPOLLOUT : 0u);
  ev.data.u64 = kTagBase + id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) return kNoConn;
  conns_.push_back(std::move(c));
  update(id);
  return id;
}

void Watch::update(ConnId id) {
  Conn& c = *conns_[id];
  bool busy = c.connecting || c.out_at < c.out.size();
  if (busy != c.busy) {
    c.busy = busy;
    busy ? ++busy_ : --busy_;
  }
  // Level-triggered EPOLLOUT only while bytes wait, or epoll would spin.
  bool want_out = busy;
  if (want_out != c.out_armed) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0u);
    ev.data.u64 = kTagBase + id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd.get(), &ev) == 0) c.out_armed = want_out;
  }
}

Result<Watch::ConnId> Watch::connect(const std::string& address) {
  COHORT_ASSIGN_OR_RETURN(SockAddr to, parse(address));
  UniqueFd fd(::socket(to.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "ofi watch: socket", errno);
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A refusal now is reported like one later: from handle(), via EPOLLOUT|EPOLLERR.
  if (::connect(fd.get(), to.get(), to.len) != 0 && errno != EINPROGRESS) {
    int err = errno;
    COHORT_LOG_DEBUG(kLog) << "watch connect to " << address << ": " << std::strerror(err);
  }
  ConnId id = add(std::move(fd), true);
  if (id == kNoConn) return errno_status(Errc::kIoError, "ofi watch: epoll_ctl", errno);
  conns_[id]->remote = address;
  return id;
}

Status Watch::write(ConnId id, std::span<const std::span<const std::byte>> parts,
                    std::span<const iovec> payload) {
  if (id >= conns_.size() || !conns_[id])
    return Status(Errc::kPeerLost, "ofi watch connection is closed");
  Conn& c = *conns_[id];
  std::uint32_t len = 0;
  for (auto p : parts) len += static_cast<std::uint32_t>(p.size());
  for (const iovec& v : payload) len += static_cast<std::uint32_t>(v.iov_len);
  auto append = [&](const void* data, std::size_t n) {
    auto* b = static_cast<const std::byte*>(data);
    c.out.insert(c.out.end(), b, b + n);
  };
  if (c.out_at == c.out.size()) {
    c.out.clear();
    c.out_at = 0;
  }
  append(&len, sizeof len);
  for (auto p : parts) append(p.data(), p.size());
  for (const iovec& v : payload) append(v.iov_base, v.iov_len);
  if (!c.connecting && !flush(c))
    return Status(Errc::kPeerLost, "ofi watch " + c.remote + ": send failed");
  update(id);
  return Status();
}

bool Watch::flush(Conn& c) {
  while (c.out_at < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_at, c.out.size() - c.out_at,
                       MSG_NOSIGNAL);
    if (n > 0) {
      c.out_at += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

void Watch::flush_all(std::chrono::steady_clock::time_point deadline) {
  for (auto& c : conns_) {
    while (c && !c->connecting && c->out_at < c->out.size()) {
      if (!flush(*c)) break;  // the peer is gone: nothing to wait for
      if (c->out_at == c->out.size()) break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      pollfd pfd{c->fd.get(), POLLOUT, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return;
    }
  }
}

void Watch::close(ConnId conn) noexcept {
  if (conn >= conns_.size() || !conns_[conn]) return;
  if (conns_[conn]->busy) --busy_;
  conns_[conn].reset();  // closing the fd also leaves the epoll set
}

void Watch::closed(ConnId id, Status why, std::vector<Event>& out) {
  COHORT_LOG_DEBUG(kLog) << "watch " << conns_[id]->remote << ": " << why.message();
  out.push_back({Event::Kind::kClosed, id, {}, std::move(why)});
  close(id);
}

void Watch::accept_all(std::vector<Event>& out) {
  for (int i = 0; i < kMaxAcceptsPerCall; ++i) {
    SockAddr from;
    from.len = sizeof from.ss;
    UniqueFd fd(::accept4(listen_.get(), from.get(), &from.len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        COHORT_LOG_WARN(kLog) << "watch accept on " << address_ << ": " << std::strerror(errno);
      }
      return;
    }
    int one = 1;
    (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ConnId id = add(std::move(fd), false);
    if (id == kNoConn) continue;
    conns_[id]->remote = format(from);
    out.push_back({Event::Kind::kAccepted, id, {}, Status()});
    read_records(id, out);  // the hello usually came with the connection
  }
}

void Watch::read_records(ConnId id, std::vector<Event>& out) {
  for (;;) {
    Conn& c = *conns_[id];
    std::size_t have = c.in.size();
    c.in.resize(have + kReadChunk);
    ssize_t n = ::recv(c.fd.get(), c.in.data() + have, kReadChunk, 0);
    int err = errno;
    c.in.resize(have + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    // Whole records first: what the peer sent before it went is still delivered.
    std::size_t at = 0;
    while (c.in.size() - at >= sizeof(std::uint32_t)) {
      std::uint32_t len;
      std::memcpy(&len, c.in.data() + at, sizeof len);
      if (len > kMaxRecord)
        return closed(id, Status(Errc::kProtocolError, "watch record of " + std::to_string(len) +
                                                           " bytes from " + c.remote),
                      out);
      if (c.in.size() - at - sizeof len < len) break;
      const std::byte* r = c.in.data() + at + sizeof len;
      out.push_back({Event::Kind::kRecord, id, std::vector<std::byte>(r, r + len), Status()});
      at += sizeof len + len;
    }
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(at));
    if (n > 0) {
      if (static_cast<std::size_t>(n) < kReadChunk) return;  // drained
      continue;
    }
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return;
    return closed(id, n == 0 ? Status(Errc::kPeerLost, "its endpoint closed (watch " + c.remote + ")")
                             : errno_status(Errc::kPeerLost, "watch " + c.remote, err),
                  out);
  }
}

void Watch::handle(std::uint64_t tag, std::uint32_t events, std::vector<Event>& out) {
  if (tag == kTagBase - 1) return accept_all(out);
  ConnId id = static_cast<ConnId>(tag - kTagBase);
  if (id >= conns_.size() || !conns_[id]) return;
  Conn& c = *conns_[id];
  if (c.connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    if (err == 0 && connected_to_itself(c.fd.get())) err = ECONNREFUSED;
    if (err != 0)
      return closed(id, errno_status(Errc::kPeerLost, "watch connect to " + c.remote, err), out);
    c.connecting = false;
    update(id);
    out.push_back({Event::Kind::kConnected, id, {}, Status()});
  }
  if ((events & EPOLLOUT) != 0 || c.out_at < c.out.size()) {
    if (!flush(c)) {
      int err = errno;
      return closed(id, errno_status(Errc::kPeerLost, "watch " + c.remote, err), out);
    }
    update(id);
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0) read_records(id, out);
}

}  // namespace cohort::transport::ofi
