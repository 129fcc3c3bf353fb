#include "transport/shm/shm_doorbell.hpp"

#include <unistd.h>

#include <utility>

namespace cohort::transport::shm {

void Doorbell::attach(Word<std::uint32_t>* mine, Word<std::uint32_t>* theirs, UniqueFd my_fd,
                      UniqueFd their_fd) noexcept {
  mine_ = mine;
  theirs_ = theirs;
  my_fd_ = std::move(my_fd);
  their_fd_ = std::move(their_fd);
}

void Doorbell::ring() noexcept {
  if (!their_fd_) return;
  std::uint64_t one = 1;
  // A full counter (2^64 - 2 rings unread) cannot happen: the receiver drains
  // before each sleep. EAGAIN would still leave the fd readable, which is all
  // a ring must achieve, so the result is not needed.
  (void)!::write(their_fd_.get(), &one, sizeof one);
}

void Doorbell::drain() noexcept {
  if (!my_fd_) return;
  std::uint64_t count;
  (void)!::read(my_fd_.get(), &count, sizeof count);
}

}  // namespace cohort::transport::shm
