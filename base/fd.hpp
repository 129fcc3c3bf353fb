// base/fd.hpp — UniqueFd, an owning file descriptor, and small fd helpers.
#pragma once

#include "base/status.hpp"

#include <unistd.h>

#include <utility>

namespace cohort {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

Status set_nonblocking(int fd, bool on = true);
Status set_cloexec(int fd, bool on = true);
/// write(2) all of `data`, retrying on EINTR; for blocking fds.
Status write_all(int fd, const void* data, std::size_t size);
/// read(2) exactly `size` bytes; kPeerLost on EOF. For blocking fds.
Status read_exact(int fd, void* data, std::size_t size);

}  // namespace cohort
