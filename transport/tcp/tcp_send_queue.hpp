// transport/tcp/tcp_send_queue.hpp — the frames waiting to leave on one connection.
//
// send() writes straight from the caller's buffers; what the socket did not take
// waits here, still pointing at those buffers (they are borrowed until
// kSendDone), behind every frame queued before it, so frames never reorder.
// The queue is a ring of entries that keep their iovec storage when reused: no
// allocation in steady state. Several queued frames leave in one sendmsg.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <span>
#include <vector>

#include "transport/tcp/tcp_wire.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::tcp {

class SendQueue {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }

  /// Appends a frame whose first `sent` bytes already left. `prefix` is copied;
  /// the header and payload are borrowed. `internal` frames (the hello) get no
  /// completion event.
  void push(const std::byte* prefix, const Frame& frame, OpId op, bool internal, std::size_t sent);

  /// Describes the unsent bytes from the front, at most `limit` of them, in
  /// at most out.size() iovecs; returns how many it filled. Valid until the
  /// queue changes.
  std::size_t gather(std::span<iovec> out, std::size_t* bytes, std::size_t limit);

  /// Marks `n` bytes as sent; each frame that is now complete is passed to
  /// done(op, internal) and dropped, in order.
  template <class Done>
  void advance(std::size_t n, Done&& done);

  /// Drops every frame, passing each to done(op, internal), in order.
  template <class Done>
  void clear(Done&& done) {
    while (count_ > 0) {
      Entry& e = slots_[head_];
      done(e.op, e.internal);
      pop();
    }
  }

 private:
  struct Entry {
    OpId op = 0;
    bool internal = false;
    std::array<std::byte, kPrefixSize> prefix{};
    std::vector<iovec> iov;  // iov[0] stands for `prefix`; its base is set by gather()
    std::size_t index = 0;   // first iovec not completely sent
    std::size_t offset = 0;  // bytes of iov[index] already sent
  };

  Entry& back_slot();
  void pop() noexcept;
  /// Consumes up to `n` bytes of `e`; returns what is left of `n`, or 0 with
  /// *finished false when `e` still has bytes to send.
  static std::size_t consume(Entry& e, std::size_t n, bool* finished) noexcept;

  std::vector<Entry> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

template <class Done>
void SendQueue::advance(std::size_t n, Done&& done) {
  while (count_ > 0) {
    Entry& e = slots_[head_];
    bool finished = false;
    n = consume(e, n, &finished);
    if (!finished) return;
    done(e.op, e.internal);
    pop();
  }
}

}  // namespace cohort::transport::tcp
