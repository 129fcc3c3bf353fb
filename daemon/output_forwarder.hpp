// daemon/output_forwarder.hpp — tasks' stdout/stderr, as lines, to whoever spawned them.
//
// Each spawned task writes into two pipes the daemon reads (non-blocking,
// through the epoll loop). Bytes are cut into lines: one proto::Output frame
// per line, without its '\n', to the spawner's connection; when the spawner
// did not ask for forwarding or has gone away, the line goes to the daemon's
// log instead, tagged with the tid. A partial last line is sent at end of
// file; a line longer than kMaxLine is cut into kMaxLine pieces.
//
// Back-pressure: when the spawner's outgoing queue passes kPauseAbove, that
// task's pipe is taken out of the poll set, so the task blocks in write()
// rather than the daemon buffering without bound; it is resumed once the
// queue falls under kResumeBelow.
//
// Ordering: drain() is called when a task is reaped, before its exit event is
// sent, so every line the task wrote reaches the spawner before its exit.
//
// Owns the pipe read ends. Single-threaded.
#pragma once

#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "daemon/client_conn.hpp"
#include "daemon/poller.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

inline constexpr std::size_t kMaxLine = 64 * 1024;
inline constexpr std::size_t kPauseAbove = 8u << 20;
inline constexpr std::size_t kResumeBelow = 1u << 20;

/// A `dest` with this bit set names another host (index in the low bits): the
/// task was spawned from there, and its lines go to the remote sink.
inline constexpr ConnId kRemoteDest = 1ull << 63;

class OutputForwarder {
 public:
  OutputForwarder(Poller& poller, ConnTable& conns) : poller_(poller), conns_(conns) {}
  /// Where lines for a kRemoteDest destination go (the cluster's peer links).
  using RemoteSink = std::function<void(std::uint32_t host, const proto::Output&)>;
  void set_remote_sink(RemoteSink sink) { remote_sink_ = std::move(sink); }

  /// Start reading `out` and `err` (non-blocking; either may be invalid) of task `t`;
  /// lines go to connection `dest` (0: to the log).
  Status add(Tid t, ConnId dest, UniqueFd out, UniqueFd err);
  /// The pipe with this id is readable or closed.
  void on_event(std::uint64_t pipe_id);
  /// `t` was reaped: read what its pipes hold now (bounded), so its last
  /// lines precede its exit event. Pipes a grandchild still holds stay open.
  void drain(Tid t);
  /// Resume paused pipes whose destination drained or went away.
  void resume_drained();
  std::size_t open_pipes() const noexcept { return pipes_.size(); }

 private:
  struct Pipe {
    Tid tid = kNoTid;
    proto::Stream stream = proto::Stream::kStdout;
    UniqueFd fd;
    ConnId dest = 0;
    std::string partial;  // bytes after the last '\n'
    bool paused = false;
  };
  /// Read up to `budget` bytes; false when the pipe reached end of file (and was closed).
  bool pump(std::uint64_t id, Pipe& p, std::size_t budget);
  void emit(std::uint64_t id, Pipe& p, std::string_view line);
  void close_pipe(std::uint64_t id);
  void pause(std::uint64_t id, Pipe& p);

  Poller& poller_;
  ConnTable& conns_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Pipe> pipes_;
  std::unordered_multimap<Tid, std::uint64_t> by_tid_;
  std::vector<std::uint64_t> paused_;
  RemoteSink remote_sink_;
};

}  // namespace cohort::daemon
