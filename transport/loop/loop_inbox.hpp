// transport/loop/loop_inbox.hpp — how loop endpoints in one process reach each other.
//
// Every loop endpoint owns an Inbox, registered in a process-wide table under its
// number; its address is "loop:<number>". Other endpoints push Items into it:
// kAccept opens a connection (with the hello), kFrame carries a copied frame,
// kDown ends the connection. One mutex per inbox makes pushing safe from any
// thread, so endpoints used by different threads work; each endpoint is still
// used by one thread. The inbox outlives its endpoint while others hold it
// (shared_ptr); once closed it refuses pushes, which is how a sender learns
// that the peer is gone. An eventfd is readable while items wait: the
// endpoint's wait_fd().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::loop {

class Inbox;

struct Item {
  enum class Kind : std::uint8_t { kAccept, kFrame, kDown };
  Kind kind = Kind::kFrame;
  PeerId to = kNoPeer;           // the receiver's PeerId for this connection
  PeerId reply_to = kNoPeer;     // kAccept: the sender's PeerId, for frames back
  std::shared_ptr<Inbox> from;   // kAccept: where frames back go
  std::vector<std::byte> bytes;  // kAccept: the hello; kFrame: header then payload
  std::size_t header_size = 0;   // kFrame
  Status status;                 // kDown: why
};

class Inbox {
 public:
  Inbox(std::uint64_t number, UniqueFd event_fd);

  std::uint64_t number() const noexcept { return number_; }
  Address address() const { return "loop:" + std::to_string(number_); }
  int fd() const noexcept { return event_.get(); }

  /// Queues `item`; false (item dropped) when the owner has closed.
  bool push(Item&& item);
  /// Moves every queued item to the back of `into` and clears the signal.
  void take(std::deque<Item>& into);
  /// Makes fd() readable: the owner has work left for its next poll().
  void signal();
  /// Refuses further pushes; returns what was still queued.
  std::deque<Item> close();
  /// A fresh PeerId in the owner's space (also used by connecting peers).
  PeerId reserve_peer() noexcept { return next_peer_.fetch_add(1); }

 private:
  void signal_locked();

  const std::uint64_t number_;
  UniqueFd event_;
  std::atomic<PeerId> next_peer_{0};
  std::mutex mu_;
  std::deque<Item> items_;
  bool closed_ = false;
  bool signalled_ = false;
};

/// A new inbox with a number never used before in this process, registered.
Result<std::shared_ptr<Inbox>> create_inbox();
/// The open inbox at `address` ("loop:N"), or nullptr.
std::shared_ptr<Inbox> find_inbox(std::string_view address);
/// Unregisters `number`; find_inbox() no longer sees it.
void remove_inbox(std::uint64_t number);

}  // namespace cohort::transport::loop
