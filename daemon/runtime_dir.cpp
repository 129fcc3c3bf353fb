#include "daemon/runtime_dir.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "base/env.hpp"
#include "base/log.hpp"

namespace cohort::daemon {
namespace {

/// The pid a running daemon wrote, or "unknown" while it is still starting.
std::string read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}

}  // namespace

Result<RuntimeDir> RuntimeDir::claim(const std::string& dir) {
  RuntimeDir rd;
  rd.dir_ = dir;
  std::string pid_path = env::path_in(dir, env::kPidName);
  // Retry when the file we locked was unlinked meanwhile by a daemon that was
  // halting: locking a file no longer in DIR would let a third daemon in.
  for (int attempt = 0;; ++attempt) {
    UniqueFd fd(::open(pid_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return errno_status(Errc::kIoError, "open(" + pid_path + ")", errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK)
        return errno_status(Errc::kIoError, "flock(" + pid_path + ")", errno);
      return Status(Errc::kAlreadyExists, "a VM is already running in " + dir + " (pid " +
                                              read_pid(fd.get()) + "); stop it with 'cohort halt'");
    }
    struct stat held {
    }, named{};
    if (::fstat(fd.get(), &held) == 0 && ::stat(pid_path.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      rd.pid_fd_ = std::move(fd);
      break;
    }
    if (attempt >= 10)
      return Status(Errc::kIoError, pid_path + " keeps disappearing; is another cohortd halting?");
  }

  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(rd.pid_fd_.get(), 0) != 0 ||
      ::pwrite(rd.pid_fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    return errno_status(Errc::kIoError, "write(" + pid_path + ")", errno);

  // We hold the lock, so whatever socket is here was left by a dead daemon.
  std::string sock = rd.socket_path();
  if (::unlink(sock.c_str()) == 0) {
    COHORT_LOG_INFO("daemon") << "removed the socket of a daemon that did not halt cleanly";
  }

  COHORT_ASSIGN_OR_RETURN(rd.cookie_, env::create_cookie(dir));
  return rd;
}

std::string RuntimeDir::socket_path() const {
  return env::path_in(dir_, env::kSocketName);
}
std::string RuntimeDir::log_path() const {
  return env::path_in(dir_, env::kLogName);
}

Result<UniqueFd> RuntimeDir::listen() {
  std::string path = socket_path();
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return Status(Errc::kInvalidArgument, "socket path " + path + " is too long (" +
                                              std::to_string(path.size()) + " bytes, at most " +
                                              std::to_string(sizeof addr.sun_path - 1) +
                                              "); use a shorter --dir or COHORT_DIR");
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno_status(Errc::kIoError, "socket(AF_UNIX)", errno);
  // umask makes the socket 0600 from its first instant; chmod says so explicitly.
  mode_t old = ::umask(077);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) return errno_status(Errc::kIoError, "bind(" + path + ")", err);
  if (::chmod(path.c_str(), 0600) != 0)
    return errno_status(Errc::kIoError, "chmod(" + path + ")", errno);
  if (::listen(fd.get(), SOMAXCONN) != 0)
    return errno_status(Errc::kIoError, "listen(" + path + ")", errno);
  return fd;
}

void RuntimeDir::remove_socket() noexcept {
  ::unlink(socket_path().c_str());
}

void RuntimeDir::remove_files() noexcept {
  remove_socket();
  ::unlink(env::path_in(dir_, env::kCookieName).c_str());
  ::unlink(env::path_in(dir_, env::kPidName).c_str());
}

}  // namespace cohort::daemon

namespace cohort::daemon {

Status RuntimeDir::set_cookie(const std::string& cookie) {
  // Same dance as env::create_cookie: a new 0600 file renamed over the old
  // one, so a client never reads half a cookie.
  std::string path = env::path_in(dir_, env::kCookieName);
  std::string tmp = path + ".new";
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return errno_status(Errc::kIoError, "create(" + tmp + ")", errno);
  COHORT_RETURN_IF_ERROR(write_all(fd.get(), cookie.data(), cookie.size()));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return errno_status(Errc::kIoError, "rename(" + tmp + ")", errno);
  cookie_ = cookie;
  return Status();
}

}  // namespace cohort::daemon
