// transport/base/event_queue.hpp — where an endpoint puts the events of poll().
//
// poll(out) writes into the caller's span. Events that carry no borrowed bytes
// (kSendDone, kRecvDone, kPeerDown) may be produced when the span is full, or
// outside poll() (disconnect(), a failed connect()); they wait in an EventQueue
// and come out first at the next poll(), in the order they were produced.
// Events that carry spans (kFrameArrived, kFrameAnnounced, kPeerAccepted) are
// produced only while EventSink::has_room(), because their bytes are valid only
// until the next poll().
//
// Both types keep their storage: no allocation in steady state.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "transport/transport.hpp"

namespace cohort::transport {

/// A FIFO ring of events that grows when full and never shrinks.
class EventQueue {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  void push(Event&& event);
  /// Moves the oldest event out. Undefined when empty.
  Event pop();
  void clear() noexcept;

 private:
  std::vector<Event> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

/// The events of one poll(): the caller's span first, the overflow queue after.
class EventSink {
 public:
  /// Starts by moving queued events from `overflow` into `out`.
  EventSink(std::span<Event> out, EventQueue& overflow) : out_(out), overflow_(overflow) {
    if (!overflow_.empty()) [[unlikely]]
      drain_overflow();
  }

  /// True while an event with borrowed bytes may be produced now.
  bool has_room() const noexcept { return used_ < out_.size() && overflow_.empty(); }
  /// Adds an event; queues it when the span is full (never for events with spans).
  void emit(Event&& event) {
    if (has_room())
      out_[used_++] = std::move(event);
    else
      overflow_.push(std::move(event));
  }
  /// The next slot of the span, for events with spans; only after has_room().
  Event& next() noexcept { return out_[used_++]; }
  std::size_t used() const noexcept { return used_; }

 private:
  void drain_overflow();

  std::span<Event> out_;
  EventQueue& overflow_;
  std::size_t used_ = 0;
};

/// Convenience constructors for the common events.
inline Event send_done(PeerId peer, OpId op, Status status = Status()) {
  Event e;
  e.kind = Event::Kind::kSendDone;
  e.peer = peer;
  e.op = op;
  e.status = std::move(status);
  return e;
}
inline Event recv_done(PeerId peer, OpId op, Status status = Status()) {
  Event e = send_done(peer, op, std::move(status));
  e.kind = Event::Kind::kRecvDone;
  return e;
}
inline Event peer_down(PeerId peer, Status why) {
  Event e;
  e.kind = Event::Kind::kPeerDown;
  e.peer = peer;
  e.status = std::move(why);
  return e;
}

}  // namespace cohort::transport
