// tests/transport/conformance_harness.hpp — drives endpoints in one thread for tests.
//
// A Side wraps one Endpoint and records what its poll() reports: frames (eager
// ones copied out of the borrowed spans; announced ones received with
// receive_payload() into a buffer of the Side), accepted peers with their
// hello, peers lost, and completions. pump() polls several sides until a
// condition holds or a generous deadline passes (a guard against hangs, not a
// timing assertion). Test payloads follow pattern() so any byte can be checked.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "transport/transport.hpp"

namespace cohort::transport::testing {

/// Byte `i` of test payload number `seq`.
inline std::byte pattern(std::uint64_t seq, std::size_t i) {
  return static_cast<std::byte>((i * 131u + seq * 7u + (i >> 9)) & 0xff);
}
std::vector<std::byte> make_payload(std::uint64_t seq, std::size_t size);
/// A header holding `seq` and `size`, padded with pattern bytes to `header_size`.
std::vector<std::byte> make_header(std::uint64_t seq, std::size_t size,
                                   std::size_t header_size = 24);
/// Empty string when `payload` is pattern(seq) of its size; else where it differs.
std::string check_payload(std::uint64_t seq, const std::vector<std::byte>& payload);

struct Received {
  PeerId peer = kNoPeer;
  std::vector<std::byte> header;
  std::vector<std::byte> payload;
  bool announced = false;
  bool complete = false;  // announced: the payload has been received
  Status status;          // announced: how receive_payload ended
};

class Side {
 public:
  explicit Side(std::unique_ptr<Endpoint> endpoint, std::size_t span = 16);

  Endpoint& ep() { return *endpoint_; }
  /// Destroys the endpoint (peer death); later polls do nothing.
  void kill() { endpoint_.reset(); }
  bool alive() const { return endpoint_ != nullptr; }

  /// One poll(); returns the number of events.
  std::size_t poll_once();

  /// Receive announced payloads automatically (default). When false, the
  /// announcement is left in `announced_peer` for the test to handle.
  bool auto_receive = true;
  std::optional<PeerId> announced_peer;
  std::size_t announced_size = 0;
  std::vector<std::byte> announced_header;

  std::vector<Received> frames;
  std::vector<std::pair<PeerId, std::string>> accepted;
  std::map<PeerId, Status> down;
  std::map<OpId, Status> sends_done;
  std::map<OpId, Status> recvs_done;
  std::vector<Event::Kind> kinds;  // every event kind in order

  std::size_t complete_frames() const;

 private:
  std::unique_ptr<Endpoint> endpoint_;
  std::vector<Event> events_;
  std::map<OpId, std::size_t> inflight_;  // receive op -> index in frames
  OpId next_recv_op_ = 1'000'000;
};

/// Polls every side until `done()` or the deadline; false on the deadline.
bool pump(const std::vector<Side*>& sides, const std::function<bool()>& done,
          std::chrono::seconds limit = std::chrono::seconds(120));

/// An address where nobody listens: an endpoint's address just after it closed.
Address dead_address(Transport& transport);

}  // namespace cohort::transport::testing
