#include "launcher/host_admin.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <cstdlib>

#include "base/env.hpp"
#include "base/fd.hpp"
#include "launcher/vm.hpp"
#include "proto/frame.hpp"

namespace cohort::cli {
namespace {

using Clock = std::chrono::steady_clock;

class AdminLink {
 public:
  Status open(const std::string& dir, Clock::time_point deadline) {
    deadline_ = deadline;
    COHORT_ASSIGN_OR_RETURN(std::string cookie, env::read_cookie(dir));
    std::string path = env::path_in(dir, env::kSocketName);
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
      return Status(Errc::kInvalidArgument, "socket path too long: " + path);
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return errno_status(Errc::kNoVm, "connect(" + path + ")", errno);
    proto::Hello h;
    h.cookie = cookie;
    h.pid = ::getpid();
    h.program = "cohort";
    h.is_tool = true;
    COHORT_RETURN_IF_ERROR(proto::send_msg(fd_.get(), h));
    COHORT_ASSIGN_OR_RETURN(proto::Welcome w, read<proto::Welcome>());
    if (w.status.code != 0) return Status(static_cast<Errc>(w.status.code), w.status.message);
    return Status();
  }
  template <class M>
  Status send(const M& m) { return proto::send_msg(fd_.get(), m); }

  /// The next frame of type M; other frames (events) are skipped.
  template <class M>
  Result<M> read() {
    while (true) {
      while (true) {
        auto f = in_.next();
        if (!f.is_ok()) return f.take_status();
        if (!f->has_value()) break;
        if ((*f)->type != M::kType) continue;
        M m;
        COHORT_RETURN_IF_ERROR(proto::decode((*f)->body, m));
        return m;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) return Status(Errc::kTimeout, "the daemon did not answer in time");
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
        return errno_status(Errc::kIoError, "poll", errno);
      auto space = in_.prepare(65536);
      ssize_t n = ::recv(fd_.get(), space.data(), space.size(), MSG_DONTWAIT);
      if (n == 0) return Status(Errc::kDaemonLost, "the daemon closed the connection");
      if (n > 0) in_.commit(static_cast<std::size_t>(n));
    }
  }

 private:
  UniqueFd fd_;
  proto::FrameBuffer in_;
  Clock::time_point deadline_;
};

}  // namespace

Result<proto::AddHostsReply> add_hosts(const std::string& dir, proto::AddHosts request,
                                       std::chrono::milliseconds deadline) {
  AdminLink l;
  COHORT_RETURN_IF_ERROR(l.open(dir, Clock::now() + deadline));
  request.req = 1;
  COHORT_RETURN_IF_ERROR(l.send(request));
  COHORT_ASSIGN_OR_RETURN(proto::AddHostsReply r, l.read<proto::AddHostsReply>());
  if (r.status.code != 0) return Status(static_cast<Errc>(r.status.code), r.status.message);
  return r;
}

Status remove_hosts(const std::string& dir, proto::RemoveHosts request,
                    std::chrono::milliseconds deadline) {
  AdminLink l;
  COHORT_RETURN_IF_ERROR(l.open(dir, Clock::now() + deadline));
  request.req = 1;
  COHORT_RETURN_IF_ERROR(l.send(request));
  COHORT_ASSIGN_OR_RETURN(proto::Ack a, l.read<proto::Ack>());
  if (a.status.code != 0) return Status(static_cast<Errc>(a.status.code), a.status.message);
  return Status();
}

int report_added(const proto::AddHostsReply& r, const char* command) {
  int failed = 0;
  for (const auto& h : r.hosts) {
    if (h.index != 0) {
      std::printf("host %s is host %u of the VM\n", h.name.c_str(), h.index);
      continue;
    }
    ++failed;
    std::fprintf(stderr, "%s: cannot start host %s: %s\n", command, h.name.c_str(),
                 h.status.message.c_str());
  }
  return failed;
}

Status MoreHosts::check() {
  if (!timeout.empty()) {
    char* end = nullptr;
    long t = std::strtol(timeout.c_str(), &end, 10);
    if (end == timeout.c_str() || *end != '\0' || t <= 0 || t > 3600)
      return Status(Errc::kInvalidArgument, "--timeout wants seconds (1..3600), not '" + timeout + "'");
    timeout_s_ = static_cast<int>(t);
  }
  if (!hostfile.empty()) {
    std::ifstream f(hostfile);
    if (!f) return Status(Errc::kInvalidArgument, "cannot read hostfile '" + hostfile + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    hostfile_text_ = ss.str();
    if (hostfile_text_.empty()) hostfile_text_ = "\n";  // an empty file is valid, and says so
  }
  return Status();
}

int MoreHosts::start(const Globals& g, const char* command) const {
  if (empty()) return kExitOk;
  proto::AddHosts req;
  for (const auto& h : hosts) req.hosts.push_back({h, ""});
  req.agent = agent;
  req.timeout_ms = timeout_s_ * 1000;
  req.hostfile = hostfile_text_;
  req.hostfile_name = hostfile;
  auto r = add_hosts(vm_dir_of(g), req, std::chrono::seconds(timeout_s_ + 30));
  if (!r.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", command, r.status().message().c_str());
    return kExitFailure;
  }
  int failed = report_added(*r, command);
  if (failed > 0) {
    std::fprintf(stderr, "%s: %d host(s) could not be started; the VM runs on without them\n",
                 command, failed);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace cohort::cli
