#include "tests/daemon/raw_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

namespace cohort::testing {

Result<RawClient> RawClient::connect(const std::string& socket_path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "socket", errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return Status(Errc::kInvalidArgument, "path too long");
  socket_path.copy(addr.sun_path, socket_path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return errno_status(Errc::kNoVm, "connect(" + socket_path + ")", errno);
  return RawClient(std::move(fd));
}

Status RawClient::send_bytes(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::send(fd_.get(), p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Errc::kPeerLost, "send", errno);
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return Status();
}

Result<proto::Welcome> RawClient::hello(const std::string& cookie, Tid claimed_tid, bool is_tool,
                                        const std::string& program) {
  proto::Hello h;
  h.cookie = cookie;
  h.pid = ::getpid();
  h.claimed_tid = claimed_tid;
  h.program = program;
  h.is_tool = is_tool;
  COHORT_RETURN_IF_ERROR(send(h));
  return expect<proto::Welcome>();
}

Result<RawFrame> RawClient::next(std::chrono::milliseconds deadline) {
  if (!kept_.empty()) {
    RawFrame f = std::move(kept_.front());
    kept_.pop_front();
    return f;
  }
  return read_frame(deadline);
}

Result<RawFrame> RawClient::read_frame(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {
    auto f = in_.next();
    if (!f.is_ok()) return f.take_status();
    if (f->has_value()) {
      RawFrame out{(*f)->type, std::vector<std::byte>((*f)->body.begin(), (*f)->body.end())};
      return out;
    }
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<long long>(left.count(), 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status(Errc::kTimeout, "no frame from the daemon within the deadline");
    auto space = in_.prepare(64 * 1024);
    ssize_t got = ::recv(fd_.get(), space.data(), space.size(), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno != ECONNRESET) return errno_status(Errc::kIoError, "recv", errno);
    if (got <= 0) return Status(Errc::kPeerLost, "the daemon closed the connection");
    in_.commit(static_cast<std::size_t>(got));
  }
}

bool RawClient::closed_within(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    auto f = read_frame(left.count() > 0 ? left : std::chrono::milliseconds(0));
    if (f.is_ok()) continue;
    return f.status().code() == Errc::kPeerLost;
  }
}

}  // namespace cohort::testing
