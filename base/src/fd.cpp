#include "base/fd.hpp"

#include <fcntl.h>

#include <cerrno>

namespace cohort {

Status set_nonblocking(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return errno_status(Errc::kIoError, "fcntl(F_GETFL)", errno);
  fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, fl) < 0) return errno_status(Errc::kIoError, "fcntl(F_SETFL)", errno);
  return Status();
}

Status set_cloexec(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFD);
  if (fl < 0) return errno_status(Errc::kIoError, "fcntl(F_GETFD)", errno);
  fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, fl) < 0) return errno_status(Errc::kIoError, "fcntl(F_SETFD)", errno);
  return Status();
}

Status write_all(int fd, const void* data, std::size_t size) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno == EPIPE ? Errc::kPeerLost : Errc::kIoError, "write", errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return Status();
}

Status read_exact(int fd, void* data, std::size_t size) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(Errc::kIoError, "read", errno);
    }
    if (n == 0) return Status(Errc::kPeerLost, "end of file");
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return Status();
}

}  // namespace cohort
