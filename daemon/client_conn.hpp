// daemon/client_conn.hpp — one client connection, and the table of all of them.
//
// A ClientConn is one accepted Unix-socket connection: a task, a hand-started
// program or the `cohort` tool. It cuts incoming bytes into frames
// (proto::FrameBuffer) and holds an outgoing byte queue that the event loop
// drains when the socket is writable. The queue is bounded (kMaxQueued): a
// client that never reads is dropped, it never blocks the daemon.
//
// ConnTable owns every connection, keyed by a ConnId that is never reused, so
// other parts of the daemon (notifier, name service, output forwarder) keep
// ConnIds, not pointers, and a connection that went away is simply not found.
//
// Closing is deferred: close_later() logs the reason once and marks the
// connection; the event loop collects it with take_closing() at the end of the
// iteration, after which it is gone from the table. This keeps objects alive
// while a handler that decided to drop them is still running.
//
// Single-threaded, like the rest of the daemon.
#pragma once

#include <sys/types.h>

#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "daemon/poller.hpp"
#include "proto/frame.hpp"

namespace cohort::daemon {

using ConnId = std::uint64_t;

/// Most bytes queued for one client before it is dropped as not reading.
inline constexpr std::size_t kMaxQueued = 64u << 20;

class ClientConn {
 public:
  enum class State : std::uint8_t { kAwaitHello, kEnrolled, kClosing };

  ClientConn(ConnId id, UniqueFd fd, pid_t peer_pid, uid_t peer_uid);

  ConnId id() const noexcept { return id_; }
  int fd() const noexcept { return fd_.get(); }
  pid_t peer_pid() const noexcept { return peer_pid_; }
  uid_t peer_uid() const noexcept { return peer_uid_; }
  State state() const noexcept { return state_; }
  bool closing() const noexcept { return state_ == State::kClosing; }
  bool enrolled() const noexcept { return state_ == State::kEnrolled; }

  /// After a successful Hello: this connection speaks for `tid`.
  void enroll(Tid tid, bool is_tool) noexcept {
    state_ = State::kEnrolled;
    tid_ = tid;
    is_tool_ = is_tool;
  }
  Tid tid() const noexcept { return tid_; }
  bool is_tool() const noexcept { return is_tool_; }

  /// Bye carries the exit code a hand-started task reports for itself.
  void set_bye(std::int32_t code) noexcept { bye_code_ = code; }
  std::optional<std::int32_t> bye_code() const noexcept { return bye_code_; }

  /// Deferred Resolves this client waits for (bounded per connection).
  std::uint32_t& pending_resolves() noexcept { return pending_resolves_; }
  /// Watches this client holds (bounded per connection).
  std::uint64_t& watches() noexcept { return watches_; }

  /// "connection 3 (pid 123, tid t0x100002)" for log lines.
  std::string describe() const;

  // ---- input ----
  /// Read what the socket holds, up to about `budget` bytes. Sets *eof when the
  /// peer closed (or reset) the connection; an error only for unexpected failures.
  Status read_some(std::size_t budget, bool* eof);
  /// The next whole frame; see proto::FrameBuffer::next().
  Result<std::optional<proto::FrameView>> next_frame() { return in_.next(); }
  bool has_partial_input() const noexcept { return !in_.empty(); }
  /// Bytes received so far (the daemon bounds what may come before Hello).
  std::uint64_t received() const noexcept { return received_; }

  // ---- output ----
  /// Append `msg` to the outgoing queue; false (and nothing queued) when that
  /// would pass kMaxQueued.
  template <class M>
  bool queue(const M& msg) {
    std::size_t before = out_.size();
    proto::encode(msg, out_);
    if (out_.size() - out_off_ > kMaxQueued) {
      out_.resize(before);
      return false;
    }
    return true;
  }
  std::size_t queued() const noexcept { return out_.size() - out_off_; }
  /// Write as much of the queue as the socket takes now. kPeerLost when the
  /// client is gone.
  Status flush();

 private:
  friend class ConnTable;
  void mark_closing() noexcept { state_ = State::kClosing; }

  ConnId id_;
  UniqueFd fd_;
  pid_t peer_pid_;
  uid_t peer_uid_;
  State state_ = State::kAwaitHello;
  Tid tid_ = kNoTid;
  bool is_tool_ = false;
  std::optional<std::int32_t> bye_code_;
  std::uint32_t pending_resolves_ = 0;
  std::uint64_t watches_ = 0;

  proto::FrameBuffer in_;
  std::uint64_t received_ = 0;
  std::vector<std::byte> out_;
  std::size_t out_off_ = 0;
  bool dirty_ = false;     // in ConnTable's list of connections to flush
  bool want_out_ = false;  // EPOLLOUT is registered
};

class ConnTable {
 public:
  explicit ConnTable(Poller& poller) : poller_(poller) {}

  /// Take ownership of an accepted socket and register it for reading.
  Result<ClientConn*> add(UniqueFd fd, pid_t peer_pid, uid_t peer_uid);
  /// An open connection (not closing), or nullptr.
  ClientConn* find(ConnId id);
  std::size_t size() const noexcept { return conns_.size(); }

  /// Queue `msg` for `c`; drops a client whose queue is full. No-op when closing.
  template <class M>
  void send(ClientConn& c, const M& msg) {
    if (c.closing()) return;
    if (!c.queue(msg)) {
      close_later(
          c, "it does not read its socket (" + std::to_string(kMaxQueued >> 20) + " MiB queued)",
          true);
      return;
    }
    mark_dirty(c);
  }
  /// Same, by id; false when that connection is gone.
  template <class M>
  bool send(ConnId id, const M& msg) {
    ClientConn* c = find(id);
    if (!c) return false;
    send(*c, msg);
    return true;
  }

  /// Drop `c` at the end of this loop iteration. Logs `reason` once: at warn
  /// level for a misbehaving client, at debug level for an ordinary leave.
  void close_later(ClientConn& c, const std::string& reason, bool warn);
  /// The socket became writable again.
  void on_writable(ClientConn& c) { mark_dirty(c); }
  /// Write every queued byte the sockets take; update EPOLLOUT interest.
  void flush_dirty();
  /// Remove the connections marked for closing (their queues get one last
  /// flush) and hand them over; destroying them closes the sockets.
  std::vector<std::unique_ptr<ClientConn>> take_closing();
  bool has_closing() const noexcept { return !closing_.empty(); }

  template <class F>
  void for_each_open(F&& f) {
    for (auto& [id, c] : conns_)
      if (!c->closing()) f(*c);
  }

 private:
  void mark_dirty(ClientConn& c);
  void update_interest(ClientConn& c);

  Poller& poller_;
  std::unordered_map<ConnId, std::unique_ptr<ClientConn>> conns_;
  std::vector<ConnId> dirty_;
  std::vector<ConnId> closing_;
  ConnId next_id_ = 1;
};

}  // namespace cohort::daemon
