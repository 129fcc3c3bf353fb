// lib/src/daemon_link.hpp — the connection from a task to its local daemon.
//
// A Unix stream socket to DIR/cohortd.sock carrying proto/ frames. open()
// connects, says Hello with the VM's cookie and the tid this process was given
// (COHORT_TID), and waits for the Welcome. After that the link is used from the
// progress engine:
//  * send(msg) writes a request (the caller sets msg.req from next_req()).
//  * poll() reads whatever the daemon sent, without blocking. Replies (every
//    reply type starts with its req) are kept until take_reply(req) claims
//    them; events (Output, NotifyEvent) go to the EventSink at once.
// Nothing here waits for a reply: the engine does, so that the network keeps
// moving while a request is outstanding.
//
// Errors: no socket or no cookie -> kNoVm ("no cohort VM at DIR; ..."), a
// refused Hello -> the daemon's code and message, a closed socket ->
// kDaemonLost (lost() stays true). Single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "proto/frame.hpp"
#include "proto/messages.hpp"

namespace cohort::lib {

/// Receives the daemon's unsolicited frames.
class EventSink {
 public:
  virtual void on_output(proto::Output& out) = 0;
  virtual void on_notify(const proto::NotifyEvent& ev) = 0;

 protected:
  ~EventSink() = default;
};

/// A stored reply: its type and its encoded body.
struct DaemonReply {
  proto::MsgType type{};
  std::vector<std::byte> body;
};

class DaemonLink {
 public:
  /// Connect to the daemon of the VM in `dir` and enroll. `welcome` receives the
  /// daemon's answer (identity) on success.
  static Result<std::unique_ptr<DaemonLink>> open(const std::string& dir, proto::Hello hello,
                                                  proto::Welcome& welcome,
                                                  std::chrono::milliseconds timeout);
  ~DaemonLink();

  int fd() const noexcept { return fd_.get(); }
  const std::string& dir() const noexcept { return dir_; }
  /// The VM's secret, read from the VM directory at enrolment.
  const std::string& cookie() const noexcept { return cookie_; }
  bool lost() const noexcept { return lost_; }
  /// Why the link is gone (kDaemonLost with the cause), once lost().
  const Status& lost_status() const noexcept { return lost_status_; }

  std::uint32_t next_req() noexcept { return ++req_; }

  template <class M>
  Status send(const M& msg) {
    out_.clear();
    proto::encode(msg, out_);
    return write_out();
  }

  /// Read and dispatch everything available now. Returns true when a frame came.
  bool poll(EventSink& sink);
  /// The reply to `req`, if it has come (removed from the store).
  std::optional<DaemonReply> take_reply(std::uint32_t req);
  bool has_reply(std::uint32_t req) const { return replies_.count(req) != 0; }

  /// Say goodbye and close; the link is lost() afterwards.
  void close(int exit_code) noexcept;

 private:
  DaemonLink(UniqueFd fd, std::string dir) : fd_(std::move(fd)), dir_(std::move(dir)) {}
  Status write_out();
  void fail(Status why);
  void dispatch(const proto::FrameView& f, EventSink& sink);

  UniqueFd fd_;
  std::string dir_;
  std::string cookie_;
  std::uint32_t req_ = 0;
  bool lost_ = false;
  Status lost_status_;
  proto::FrameBuffer in_;
  std::vector<std::byte> out_;
  std::unordered_map<std::uint32_t, DaemonReply> replies_;
};

/// Decode a stored reply of type M; kProtocolError if it is another type.
template <class M>
Result<M> decode_reply(const DaemonReply& r) {
  if (r.type != M::kType)
    return Status(Errc::kProtocolError,
                  "daemon answered with " + std::string(proto::msg_type_name(r.type)) +
                      ", expected " + std::string(proto::msg_type_name(M::kType)));
  M m;
  COHORT_RETURN_IF_ERROR(proto::decode(r.body, m));
  return m;
}

/// A WireStatus from the daemon as a Status (OK when code is 0).
Status from_wire(const proto::WireStatus& w);

}  // namespace cohort::lib
