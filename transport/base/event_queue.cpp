#include "transport/base/event_queue.hpp"

#include <utility>

namespace cohort::transport {

void EventQueue::push(Event&& event) {
  if (count_ == ring_.size()) {
    // Grow by unrolling the ring into a larger vector; rare (a burst of failures).
    std::vector<Event> bigger;
    bigger.reserve(ring_.empty() ? 16 : ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i)
      bigger.push_back(std::move(ring_[(head_ + i) % ring_.size()]));
    bigger.resize(bigger.capacity());
    ring_ = std::move(bigger);
    head_ = 0;
  }
  ring_[(head_ + count_) % ring_.size()] = std::move(event);
  ++count_;
}

Event EventQueue::pop() {
  Event e = std::move(ring_[head_]);
  head_ = (head_ + 1) % ring_.size();
  --count_;
  return e;
}

void EventQueue::clear() noexcept {
  while (count_ > 0) (void)pop();
}

void EventSink::drain_overflow() {
  while (used_ < out_.size() && !overflow_.empty()) out_[used_++] = overflow_.pop();
}

}  // namespace cohort::transport
