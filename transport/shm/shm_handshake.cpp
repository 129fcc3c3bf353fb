#include "transport/shm/shm_handshake.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "base/log.hpp"

namespace cohort::transport::shm {

namespace {

constexpr const char* kLog = "transport.shm";
constexpr std::uint32_t kMagic = 0x43485348;  // "HSHC"
constexpr std::uint16_t kVersion = 1;

struct Wire {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint64_t token;
};

std::atomic<unsigned> g_sockets{0};

socklen_t abstract_address(const std::string& name, sockaddr_un& sa) {
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  // sun_path[0] stays NUL: the abstract namespace. The name is not NUL-terminated.
  std::size_t n = std::min(name.size(), sizeof sa.sun_path - 1);
  std::memcpy(sa.sun_path + 1, name.data(), n);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

Result<ControlSocket> ControlSocket::open() {
  ControlSocket s;
  s.fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.fd_) return errno_status(Errc::kIoError, "shm control socket", errno);
  int one = 1;
  // The kernel then attaches each sender's pid and uid to what we receive.
  if (::setsockopt(s.fd_.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    return errno_status(Errc::kIoError, "setsockopt(SO_PASSCRED)", errno);
  // Names carry our pid; another pid namespace sharing this network namespace
  // may hold the same one, so try the next number on a collision.
  for (int attempt = 0; attempt < 64; ++attempt) {
    s.name_ = "cohort-shm-" + std::to_string(::getpid()) + "-" +
              std::to_string(g_sockets.fetch_add(1, std::memory_order_relaxed));
    sockaddr_un sa;
    socklen_t len = abstract_address(s.name_, sa);
    if (::bind(s.fd_.get(), reinterpret_cast<sockaddr*>(&sa), len) == 0) return s;
    if (errno != EADDRINUSE) return errno_status(Errc::kIoError, "bind(@" + s.name_ + ")", errno);
  }
  return Status(Errc::kIoError, "no free name for an shm control socket");
}

Status ControlSocket::send(const std::string& to, ControlKind kind, std::uint64_t token,
                           std::span<const int> fds) {
  Wire w{kMagic, kVersion, static_cast<std::uint16_t>(kind), token};
  iovec iov{&w, sizeof w};
  sockaddr_un sa;
  msghdr msg{};
  msg.msg_name = &sa;
  msg.msg_namelen = abstract_address(to, sa);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxControlFds)];
  if (!fds.empty()) {
    std::size_t n = std::min(fds.size(), kMaxControlFds);
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * n);
  }
  for (;;) {
    if (::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof w)) return Status();
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS)
      return Status(Errc::kRetry, "shm control socket @" + to + " is full");
    if (err == ECONNREFUSED || err == ENOENT)
      return errno_status(Errc::kPeerLost,
                          "no shm endpoint listens at @" + to + " (it has closed)", err);
    return errno_status(Errc::kPeerLost, "sendmsg to shm endpoint @" + to, err);
  }
}

std::optional<ControlMessage> ControlSocket::receive() {
  for (;;) {
    Wire w{};
    iovec iov{&w, sizeof w};
    sockaddr_un sa{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxControlFds) +
                                  CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_name = &sa;
    msg.msg_namelen = sizeof sa;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;  // EAGAIN: empty
    }
    ControlMessage m;
    bool have_creds = false;
    bool extra_fds = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_RIGHTS) {
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          if (m.fd_count < kMaxControlFds)
            m.fds[m.fd_count++].reset(fd);
          else {
            ::close(fd);  // more than any message carries: drop the message
            extra_fds = true;
          }
        }
      } else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        ucred cr;
        std::memcpy(&cr, CMSG_DATA(c), sizeof cr);
        m.pid = cr.pid;
        m.uid = cr.uid;
        have_creds = true;
      }
    }
    const bool named = msg.msg_namelen > offsetof(sockaddr_un, sun_path) + 1 && sa.sun_path[0] == 0;
    if (n != static_cast<ssize_t>(sizeof w) || w.magic != kMagic || w.version != kVersion ||
        w.kind < 1 || w.kind > 3 || !have_creds || !named || extra_fds ||
        (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
      COHORT_LOG_DEBUG(kLog) << "@" << name_ << " dropped a malformed control datagram";
      continue;  // m's descriptors close here
    }
    m.kind = static_cast<ControlKind>(w.kind);
    m.token = w.token;
    m.from.assign(sa.sun_path + 1, msg.msg_namelen - offsetof(sockaddr_un, sun_path) - 1);
    return m;
  }
}

}  // namespace cohort::transport::shm
