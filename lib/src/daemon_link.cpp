#include "lib/src/daemon_link.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "base/endian.hpp"
#include "base/env.hpp"
#include "base/log.hpp"

namespace cohort::lib {
namespace {

constexpr const char* kLog = "lib.daemon";

Status no_vm(const std::string& dir) {
  return Status(Errc::kNoVm, "no cohort VM at " + dir +
                                 "; start one with 'cohort start' or run the program with "
                                 "'cohort run'");
}

bool is_reply(proto::MsgType t) {
  switch (t) {
    case proto::MsgType::kAck:
    case proto::MsgType::kResolveReply:
    case proto::MsgType::kSpawnReply:
    case proto::MsgType::kTaskList:
    case proto::MsgType::kHostList:
    case proto::MsgType::kJobTidsReply:
    case proto::MsgType::kTransportList:
      return true;
    default:
      return false;
  }
}

Status send_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd pfd{fd, POLLOUT, 0};
        ::poll(&pfd, 1, 1000);
        continue;
      }
      return errno_status(Errc::kDaemonLost, "write to the local daemon", errno);
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return Status();
}

}  // namespace

Status from_wire(const proto::WireStatus& w) {
  if (w.code == 0) return Status();
  return Status(static_cast<Errc>(w.code), w.message);
}

Result<std::unique_ptr<DaemonLink>> DaemonLink::open(const std::string& dir, proto::Hello hello,
                                                     proto::Welcome& welcome,
                                                     std::chrono::milliseconds timeout) {
  const std::string path = env::path_in(dir, env::kSocketName);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status(Errc::kInvalidArgument, "the daemon socket path " + path +
                                              " is too long for a Unix socket; use a shorter "
                                              "COHORT_DIR");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "socket(AF_UNIX)", errno);
  while (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EINTR) continue;
    if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) return no_vm(dir);
    return errno_status(errno == EACCES ? Errc::kPermissionDenied : Errc::kIoError,
                        "connect(" + path + ")", errno);
  }
  auto cookie = env::read_cookie(dir);
  if (!cookie.is_ok()) {
    if (cookie.status().code() == Errc::kNoVm) return no_vm(dir);
    return cookie.take_status();
  }
  hello.cookie = *cookie;

  std::unique_ptr<DaemonLink> link(new DaemonLink(std::move(fd), dir));
  link->cookie_ = std::move(*cookie);
  COHORT_RETURN_IF_ERROR(link->send(hello));

  // Wait for the Welcome; nothing else may come first.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto got = link->in_.next();
    if (!got.is_ok()) return got.take_status().with_context("enrolling with the daemon");
    if (*got) {
      const proto::FrameView& f = **got;
      if (f.type != proto::MsgType::kWelcome)
        return Status(Errc::kProtocolError, "the daemon answered Hello with " +
                                                std::string(proto::msg_type_name(f.type)) +
                                                " instead of Welcome");
      COHORT_RETURN_IF_ERROR(proto::decode(f.body, welcome));
      Status st = from_wire(welcome.status);
      if (!st.is_ok()) return st.with_context("the daemon at " + dir + " refused to enroll us");
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status(Errc::kTimeout, "the daemon at " + dir + " did not answer within " +
                                        std::to_string(timeout.count()) + " ms; is it stuck? see " +
                                        env::path_in(dir, env::kLogName));
    pollfd pfd{link->fd(), POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return errno_status(Errc::kIoError, "poll", errno);
    if (r <= 0) continue;
    auto space = link->in_.prepare(4096);
    ssize_t n = ::recv(link->fd(), space.data(), space.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Errc::kDaemonLost, "read from the daemon", errno);
    if (n == 0)
      return Status(Errc::kDaemonLost, "the daemon at " + dir +
                                           " closed the connection while enrolling; see " +
                                           env::path_in(dir, env::kLogName));
    link->in_.commit(static_cast<std::size_t>(n));
  }
  return link;
}

DaemonLink::~DaemonLink() {
  close(0);
}

Status DaemonLink::write_out() {
  if (lost_) return lost_status_;
  Status st = send_all(fd_.get(), out_.data(), out_.size());
  if (!st.is_ok()) fail(st);
  return st;
}

void DaemonLink::fail(Status why) {
  if (lost_) return;
  lost_ = true;
  lost_status_ = Status(Errc::kDaemonLost, why.message() + "; the local daemon (" + dir_ +
                                               ") is gone: the VM was halted or its daemon died");
  COHORT_LOG_INFO(kLog) << lost_status_.message();
}

bool DaemonLink::poll(EventSink& sink) {
  if (lost_) return false;
  bool any = false;
  for (;;) {
    auto space = in_.prepare(16 * 1024);
    ssize_t n = ::recv(fd_.get(), space.data(), space.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        fail(errno_status(Errc::kDaemonLost, "read from the daemon", errno));
      break;
    }
    if (n == 0) {
      fail(Status(Errc::kDaemonLost, "the daemon closed the connection"));
      break;
    }
    in_.commit(static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < space.size()) break;
  }
  for (;;) {
    auto got = in_.next();
    if (!got.is_ok()) {
      COHORT_LOG_ERROR(kLog) << "bad frame from the daemon: " << got.status().to_string();
      fail(got.take_status());
      break;
    }
    if (!*got) break;
    any = true;
    dispatch(**got, sink);
  }
  return any;
}

void DaemonLink::dispatch(const proto::FrameView& f, EventSink& sink) {
  if (is_reply(f.type)) {
    if (f.body.size() < 4) {
      COHORT_LOG_ERROR(kLog) << "short " << proto::msg_type_name(f.type) << " from the daemon";
      return;
    }
    std::uint32_t req = load_le<std::uint32_t>(f.body.data());
    DaemonReply& r = replies_[req];
    r.type = f.type;
    r.body.assign(f.body.begin(), f.body.end());
    return;
  }
  switch (f.type) {
    case proto::MsgType::kOutput: {
      proto::Output out;
      Status st = proto::decode(f.body, out);
      if (st.is_ok()) {
        sink.on_output(out);
      } else {
        COHORT_LOG_ERROR(kLog) << st.to_string();
      }
      return;
    }
    case proto::MsgType::kNotifyEvent: {
      proto::NotifyEvent ev;
      Status st = proto::decode(f.body, ev);
      if (st.is_ok()) {
        sink.on_notify(ev);
      } else {
        COHORT_LOG_ERROR(kLog) << st.to_string();
      }
      return;
    }
    default:
      COHORT_LOG_WARN(kLog) << "ignoring unexpected " << proto::msg_type_name(f.type)
                            << " from the daemon";
  }
}

std::optional<DaemonReply> DaemonLink::take_reply(std::uint32_t req) {
  auto it = replies_.find(req);
  if (it == replies_.end()) return std::nullopt;
  DaemonReply r = std::move(it->second);
  replies_.erase(it);
  return r;
}

void DaemonLink::close(int exit_code) noexcept {
  if (!fd_) return;
  if (!lost_) {
    proto::Bye bye;
    bye.exit_code = exit_code;
    out_.clear();
    proto::encode(bye, out_);
    (void)send_all(fd_.get(), out_.data(), out_.size());
  }
  fd_.reset();
  lost_ = true;
  if (lost_status_.is_ok())
    lost_status_ = Status(Errc::kNotEnrolled, "the session has left the VM");
}

}  // namespace cohort::lib
