#include "transport/tcp/tcp_send_queue.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace cohort::transport::tcp {

SendQueue::Entry& SendQueue::back_slot() {
  if (count_ == slots_.size()) {
    // Unroll the ring into a larger one. Entries move with their vectors, so no
    // iovec storage is reallocated; gather() re-derives the prefix pointers.
    std::vector<Entry> bigger(slots_.empty() ? 8 : slots_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i)
      bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
    slots_ = std::move(bigger);
    head_ = 0;
  }
  return slots_[(head_ + count_) % slots_.size()];
}

void SendQueue::pop() noexcept {
  head_ = (head_ + 1) % slots_.size();
  --count_;
}

void SendQueue::push(const std::byte* prefix, const Frame& frame, OpId op, bool internal,
                     std::size_t sent) {
  Entry& e = back_slot();
  e.op = op;
  e.internal = internal;
  std::memcpy(e.prefix.data(), prefix, kPrefixSize);
  e.iov.clear();  // keeps its capacity
  e.iov.push_back({nullptr, kPrefixSize});
  e.iov.push_back({const_cast<std::byte*>(frame.header.data()), frame.header.size()});
  e.iov.insert(e.iov.end(), frame.payload.begin(), frame.payload.end());
  e.index = 0;
  e.offset = 0;
  ++count_;
  bool finished = false;
  consume(e, sent, &finished);
}

std::size_t SendQueue::consume(Entry& e, std::size_t n, bool* finished) noexcept {
  while (e.index < e.iov.size()) {
    std::size_t left = e.iov[e.index].iov_len - e.offset;
    if (n < left) {  // also skips zero-length iovecs when n == 0
      e.offset += n;
      *finished = false;
      return 0;
    }
    n -= left;
    ++e.index;
    e.offset = 0;
  }
  *finished = true;
  return n;
}

std::size_t SendQueue::gather(std::span<iovec> out, std::size_t* bytes, std::size_t limit) {
  std::size_t used = 0, total = 0;
  for (std::size_t k = 0; k < count_ && used < out.size() && total < limit; ++k) {
    Entry& e = slots_[(head_ + k) % slots_.size()];
    for (std::size_t i = e.index; i < e.iov.size() && used < out.size() && total < limit; ++i) {
      std::size_t skip = i == e.index ? e.offset : 0;
      std::size_t len = std::min(e.iov[i].iov_len - skip, limit - total);
      if (len == 0) continue;
      auto* base = static_cast<std::byte*>(i == 0 ? e.prefix.data() : e.iov[i].iov_base);
      out[used++] = {base + skip, len};
      total += len;
    }
  }
  *bytes = total;
  return used;
}

}  // namespace cohort::transport::tcp
