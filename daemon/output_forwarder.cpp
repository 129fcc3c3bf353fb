#include "daemon/output_forwarder.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/log.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

Status OutputForwarder::add(Tid t, ConnId dest, UniqueFd out, UniqueFd err) {
  for (auto [fd, stream] :
       {std::pair{&out, proto::Stream::kStdout}, std::pair{&err, proto::Stream::kStderr}}) {
    if (!fd->valid()) continue;
    std::uint64_t id = next_id_++;
    COHORT_RETURN_IF_ERROR(poller_.add(fd->get(), EPOLLIN, make_key(Source::kPipe, id)));
    Pipe p;
    p.tid = t;
    p.stream = stream;
    p.fd = std::move(*fd);
    p.dest = dest;
    pipes_.emplace(id, std::move(p));
    by_tid_.emplace(t, id);
  }
  return Status();
}

void OutputForwarder::on_event(std::uint64_t pipe_id) {
  auto it = pipes_.find(pipe_id);
  if (it == pipes_.end() || it->second.paused) return;
  // A bounded read per wake-up keeps one chatty task from starving the rest;
  // the level-triggered poll brings us back for more.
  pump(pipe_id, it->second, 256 * 1024);
}

void OutputForwarder::drain(Tid t) {
  std::vector<std::uint64_t> ids;
  auto [b, e] = by_tid_.equal_range(t);
  for (auto it = b; it != e; ++it) ids.push_back(it->second);
  for (std::uint64_t id : ids) {
    auto it = pipes_.find(id);
    // Bounded: a grandchild that keeps writing must not hold the loop here.
    if (it != pipes_.end()) pump(id, it->second, 4u << 20);
  }
}

bool OutputForwarder::pump(std::uint64_t id, Pipe& p, std::size_t budget) {
  char buf[64 * 1024];
  std::size_t total = 0;
  while (total < budget) {
    ssize_t n = ::read(p.fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {  // end of file (or a read error, which ends the stream the same way)
      if (!p.partial.empty()) emit(id, p, p.partial);
      close_pipe(id);
      return false;
    }
    total += static_cast<std::size_t>(n);
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    while (!chunk.empty()) {
      auto nl = chunk.find('\n');
      std::size_t room = kMaxLine - p.partial.size();
      if (nl == std::string_view::npos || nl > room) {  // no line end within the limit
        if (chunk.size() <= room) {
          p.partial.append(chunk);
          break;
        }
        p.partial.append(chunk.substr(0, room));
        emit(id, p, p.partial);
        p.partial.clear();
        chunk.remove_prefix(room);
        continue;
      }
      if (p.partial.empty()) {
        emit(id, p, chunk.substr(0, nl));  // the common case: no copy
      } else {
        p.partial.append(chunk.substr(0, nl));
        emit(id, p, p.partial);
        p.partial.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
    if (p.paused) return true;
  }
  return true;
}

void OutputForwarder::emit(std::uint64_t id, Pipe& p, std::string_view line) {
  const char* stream = p.stream == proto::Stream::kStdout ? "stdout" : "stderr";
  if ((p.dest & kRemoteDest) && remote_sink_) {
    proto::Output o;
    o.tid = p.tid;
    o.stream = p.stream;
    o.data.assign(line);
    remote_sink_(static_cast<std::uint32_t>(p.dest & ~kRemoteDest), o);
    return;
  }
  ClientConn* c = p.dest ? conns_.find(p.dest) : nullptr;
  if (!c) {
    COHORT_LOG_INFO("daemon.output") << tid_name(p.tid) << ' ' << stream << ": " << line;
    return;
  }
  proto::Output o;
  o.tid = p.tid;
  o.stream = p.stream;
  o.data.assign(line);
  conns_.send(*c, o);
  if (!p.paused && !c->closing() && c->queued() > kPauseAbove) pause(id, p);
}

void OutputForwarder::pause(std::uint64_t id, Pipe& p) {
  // Removed from the poll set, not just masked: a closed pipe would otherwise
  // keep reporting EPOLLHUP and spin the loop.
  poller_.remove(p.fd.get());
  p.paused = true;
  paused_.push_back(id);
  COHORT_LOG_DEBUG("daemon.output")
      << "pausing output of " << tid_name(p.tid) << ": the spawner is not keeping up";
}

void OutputForwarder::resume_drained() {
  if (paused_.empty()) return;
  std::vector<std::uint64_t> still;
  for (std::uint64_t id : paused_) {
    auto it = pipes_.find(id);
    if (it == pipes_.end()) continue;
    Pipe& p = it->second;
    ClientConn* c = conns_.find(p.dest);
    if (c && c->queued() >= kResumeBelow) {
      still.push_back(id);
      continue;
    }
    p.paused = false;
    Status s = poller_.add(p.fd.get(), EPOLLIN, make_key(Source::kPipe, id));
    if (!s.is_ok()) {
      COHORT_LOG_ERROR("daemon.output")
          << "cannot resume output of " << tid_name(p.tid) << ": " << s.to_string();
      close_pipe(id);
    }
  }
  paused_.swap(still);
}

void OutputForwarder::close_pipe(std::uint64_t id) {
  auto it = pipes_.find(id);
  if (it == pipes_.end()) return;
  if (!it->second.paused) poller_.remove(it->second.fd.get());
  auto [b, e] = by_tid_.equal_range(it->second.tid);
  for (auto t = b; t != e; ++t)
    if (t->second == id) {
      by_tid_.erase(t);
      break;
    }
  pipes_.erase(it);
}

}  // namespace cohort::daemon
