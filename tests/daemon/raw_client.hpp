// tests/daemon/raw_client.hpp — a small blocking client that speaks raw proto
// frames to a cohortd, for tests that must control every byte (including bad ones).
//
//   auto c = RawClient::connect(daemon->socket_path());
//   auto w = c->hello(cookie);                       // Welcome
//   c->send(proto::ListTasks{.req = 7});
//   auto list = c->expect<proto::TaskList>();        // frames of other types are kept
//   auto ev = c->expect<proto::NotifyEvent>();       // ...and found here later
//
// Every wait has a deadline (default 20 s); nothing sleeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "proto/frame.hpp"

namespace cohort::testing {

inline constexpr std::chrono::milliseconds kWait{20000};

struct RawFrame {
  proto::MsgType type;
  std::vector<std::byte> body;
};

class RawClient {
 public:
  static Result<RawClient> connect(const std::string& socket_path);

  Status send_bytes(std::span<const std::byte> bytes);
  Status send_bytes(const std::string& bytes) {
    return send_bytes(std::as_bytes(std::span(bytes.data(), bytes.size())));
  }
  template <class M>
  Status send(const M& m) {
    return send_bytes(proto::encode(m));
  }

  /// Hello with `cookie` (and a claimed tid), then the Welcome.
  Result<proto::Welcome> hello(const std::string& cookie, Tid claimed_tid = kNoTid,
                               bool is_tool = false, const std::string& program = "raw-client");

  /// The next frame from the wire (or kept earlier); kPeerLost at end of
  /// stream, kTimeout after `deadline`.
  Result<RawFrame> next(std::chrono::milliseconds deadline = kWait);

  /// The first frame of type M, kept ones first; frames of other types are
  /// kept, in order, for later expect() calls.
  template <class M>
  Result<M> expect(std::chrono::milliseconds deadline = kWait) {
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->type == M::kType) {
        RawFrame f = std::move(*it);
        kept_.erase(it);
        return decode<M>(f);
      }
    auto until = std::chrono::steady_clock::now() + deadline;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      auto f = read_frame(left.count() > 0 ? left : std::chrono::milliseconds(0));
      if (!f.is_ok()) return f.take_status();
      if (f->type == M::kType) return decode<M>(*f);
      kept_.push_back(std::move(*f));
    }
  }

  /// True when the daemon closes the connection within `deadline` (frames
  /// that arrive before are discarded).
  bool closed_within(std::chrono::milliseconds deadline = kWait);
  /// Frames received but not yet taken.
  const std::deque<RawFrame>& kept() const { return kept_; }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  explicit RawClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<RawFrame> read_frame(std::chrono::milliseconds deadline);
  template <class M>
  static Result<M> decode(const RawFrame& f) {
    M m;
    Status s = proto::decode(f.body, m);
    if (!s.is_ok()) return s;
    return m;
  }

  UniqueFd fd_;
  proto::FrameBuffer in_;
  std::deque<RawFrame> kept_;
};

}  // namespace cohort::testing
