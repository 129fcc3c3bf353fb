#include "daemon/peer_link.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "proto/daemon_messages.hpp"

namespace cohort::daemon {

PeerLink::PeerLink(LinkId id, UniqueFd fd, bool dialled, std::string peer_address)
    : id_(id),
      fd_(std::move(fd)),
      dialled_(dialled),
      peer_address_(std::move(peer_address)),
      state_(dialled ? State::kConnecting : State::kAuthenticating) {}

std::string PeerLink::describe() const {
  std::string s = "link " + std::to_string(id_);
  if (peer_index) s += " to host " + std::to_string(peer_index);
  return s + " (" + (dialled_ ? "to " : "from ") + peer_address_ + ")";
}

Status PeerLink::read_some(bool* eof) {
  *eof = false;
  for (int i = 0; i < 16; ++i) {  // bounded: other links get their turn
    auto space = in_.prepare(64 * 1024);
    ssize_t n = ::recv(fd_.get(), space.data(), space.size(), 0);
    if (n > 0) {
      in_.commit(static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == ETIMEDOUT))) {
      *eof = true;
      return Status();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status();
    return errno_status(Errc::kIoError, "recv", errno);
  }
  return Status();
}

Status PeerLink::flush() {
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return errno_status(Errc::kPeerLost, "send to " + peer_address_, n < 0 ? errno : EPIPE);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
  return Status();
}

void PeerLink::replace_fd(UniqueFd fd, std::string address) {
  fd_ = std::move(fd);
  peer_address_ = std::move(address);
}

Result<std::pair<std::string, unsigned>> parse_tcp_address(const std::string& address) {
  std::string a = address;
  if (a.rfind("tcp:", 0) == 0) a = a.substr(4);
  auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status(Errc::kInvalidArgument,
                  "'" + address + "' is not a daemon address (tcp:IP:PORT, e.g. tcp:10.0.0.1:4100)");
  std::string host = a.substr(0, colon);
  unsigned long port = 0;
  try {
    port = std::stoul(a.substr(colon + 1));
  } catch (...) {
    port = 0;
  }
  if (port == 0 || port > 65535)
    return Status(Errc::kInvalidArgument, "'" + address + "' has no valid port");
  in_addr probe{};
  if (::inet_pton(AF_INET, host.c_str(), &probe) != 1)
    return Status(Errc::kInvalidArgument, "'" + address + "': '" + host + "' is not an IPv4 address");
  return std::make_pair(host, static_cast<unsigned>(port));
}

std::vector<std::string> split_addresses(const std::string& list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    auto comma = list.find(',', pos);
    std::string one = list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!one.empty()) out.push_back(one);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Result<UniqueFd> start_connect(const std::string& address) {
  COHORT_ASSIGN_OR_RETURN(auto hp, parse_tcp_address(address));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(hp.second));
  ::inet_pton(AF_INET, hp.first.c_str(), &sa.sin_addr);
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 &&
      errno != EINPROGRESS)
    return errno_status(Errc::kPeerLost, "connect(" + address + ")", errno);
  return fd;
}

// ---- blocking join ----------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

Status wait_fd(int fd, short events, Clock::time_point deadline, const std::string& what) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status(Errc::kTimeout, what + ": no answer in time");
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return Status();
    if (n < 0 && errno != EINTR) return errno_status(Errc::kIoError, "poll", errno);
  }
}

Status read_exact(int fd, std::byte* p, std::size_t n, Clock::time_point deadline) {
  while (n > 0) {
    COHORT_RETURN_IF_ERROR(wait_fd(fd, POLLIN, deadline, "waiting for the master"));
    ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) return Status(Errc::kPeerLost, "the master closed the connection");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno_status(Errc::kPeerLost, "recv from the master", errno);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return Status();
}

// Exactly one frame, never a byte more: what follows belongs to the event loop.
template <class M>
Result<M> read_msg(int fd, Clock::time_point deadline) {
  std::byte hdr[proto::kHeaderSize];
  COHORT_RETURN_IF_ERROR(read_exact(fd, hdr, sizeof hdr, deadline));
  auto len = load_le<std::uint32_t>(hdr);
  auto type = load_le<std::uint16_t>(hdr + 4);
  if (len > (1u << 20))
    return Status(Errc::kProtocolError, "the master sent a frame of " + std::to_string(len) + " bytes");
  std::vector<std::byte> body(len);
  COHORT_RETURN_IF_ERROR(read_exact(fd, body.data(), len, deadline));
  if (type != static_cast<std::uint16_t>(M::kType))
    return Status(Errc::kProtocolError,
                  "the master sent message type " + std::to_string(type) + ", expected " +
                      std::string(proto::msg_type_name(M::kType)));
  M m;
  COHORT_RETURN_IF_ERROR(proto::decode(body, m));
  return m;
}

}  // namespace

Result<JoinResult> join_master(const std::string& master, const std::string& cookie,
                               const std::string& vm_name, const proto::HostInfo& self,
                               std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  Status last(Errc::kInvalidArgument, "no master address given");
  UniqueFd fd;
  for (const std::string& a : split_addresses(master)) {
    auto c = start_connect(a);
    if (!c.is_ok()) {
      last = c.take_status();
      continue;
    }
    Status w = wait_fd(c->get(), POLLOUT, deadline, "connecting to " + a);
    int err = 0;
    socklen_t len = sizeof err;
    if (w.is_ok() && ::getsockopt(c->get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      fd = std::move(*c);
      break;
    }
    last = w.is_ok() ? errno_status(Errc::kPeerLost, "connect(" + a + ")", err) : w;
  }
  if (!fd) return last;
  // Blocking from here on; poll() bounds every wait.
  int fl = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);

  COHORT_ASSIGN_OR_RETURN(auth::Challenge mine, auth::make_challenge());
  proto::PeerAuth pa;
  pa.challenge.assign(reinterpret_cast<const char*>(mine.data()), mine.size());
  pa.vm_name = vm_name;
  COHORT_RETURN_IF_ERROR(proto::send_msg(fd.get(), pa));
  COHORT_ASSIGN_OR_RETURN(proto::PeerAuth theirs, read_msg<proto::PeerAuth>(fd.get(), deadline));
  if (theirs.challenge.size() != auth::kChallengeBytes)
    return Status(Errc::kProtocolError, "the master's challenge has the wrong size");
  auth::Challenge tc{};
  std::memcpy(tc.data(), theirs.challenge.data(), tc.size());
  auth::Mac m = auth::respond(cookie, tc, auth::kDialContext);
  proto::PeerProof proof;
  proof.mac.assign(reinterpret_cast<const char*>(m.data()), m.size());
  COHORT_RETURN_IF_ERROR(proto::send_msg(fd.get(), proof));
  auto their_proof = read_msg<proto::PeerProof>(fd.get(), deadline);
  if (!their_proof.is_ok()) {
    if (their_proof.status().code() == Errc::kPeerLost)
      return Status(Errc::kAuthFailed,
                    "the master at " + master +
                        " closed the connection during authentication (wrong cookie?)");
    return their_proof.take_status();
  }
  if (!auth::verify(cookie, mine, auth::kAcceptContext,
                    {reinterpret_cast<const std::uint8_t*>(their_proof->mac.data()),
                     their_proof->mac.size()}))
    return Status(Errc::kAuthFailed, "the daemon at " + master + " does not know the VM's cookie");

  proto::JoinRequest jr;
  jr.host = self;
  COHORT_RETURN_IF_ERROR(proto::send_msg(fd.get(), jr));
  COHORT_ASSIGN_OR_RETURN(proto::JoinReply rep, read_msg<proto::JoinReply>(fd.get(), deadline));
  if (rep.status.code != 0)
    return Status(static_cast<Errc>(rep.status.code), "the master refused: " + rep.status.message);
  ::fcntl(fd.get(), F_SETFL, fl | O_NONBLOCK);
  JoinResult r;
  r.fd = std::move(fd);
  r.index = rep.index;
  r.seq = rep.seq;
  r.master = rep.master;
  r.hosts = std::move(rep.hosts);
  return r;
}

}  // namespace cohort::daemon
