#include "daemon/client_conn.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

ClientConn::ClientConn(ConnId id, UniqueFd fd, pid_t peer_pid, uid_t peer_uid)
    : id_(id), fd_(std::move(fd)), peer_pid_(peer_pid), peer_uid_(peer_uid) {}

std::string ClientConn::describe() const {
  std::string s = "connection " + std::to_string(id_) + " (pid " + std::to_string(peer_pid_);
  if (tid_ != kNoTid) s += ", " + std::string(is_tool_ ? "tool " : "tid ") + tid_name(tid_);
  return s + ")";
}

Status ClientConn::read_some(std::size_t budget, bool* eof) {
  *eof = false;
  std::size_t total = 0;
  while (total < budget) {
    auto space = in_.prepare(64 * 1024);
    ssize_t n = ::recv(fd_.get(), space.data(), space.size(), 0);
    if (n > 0) {
      in_.commit(static_cast<std::size_t>(n));
      total += static_cast<std::size_t>(n);
      received_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) {
      *eof = true;
      return Status();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Status();
    if (errno == ECONNRESET) {  // the client died with unread data: an ordinary leave
      *eof = true;
      return Status();
    }
    return errno_status(Errc::kIoError, "recv", errno);
  }
  return Status();
}

Status ClientConn::flush() {
  while (out_off_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return errno_status(Errc::kPeerLost, "send", n < 0 ? errno : EPIPE);
  }
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > (1u << 20) && out_off_ > out_.size() / 2) {
    // Reclaim the sent prefix only when it is large, so a slow reader does not
    // cost a memmove per message.
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_off_));
    out_off_ = 0;
  }
  return Status();
}

// ---- ConnTable --------------------------------------------------------------

Result<ClientConn*> ConnTable::add(UniqueFd fd, pid_t peer_pid, uid_t peer_uid) {
  ConnId id = next_id_++;
  int raw = fd.get();
  auto conn = std::make_unique<ClientConn>(id, std::move(fd), peer_pid, peer_uid);
  COHORT_RETURN_IF_ERROR(poller_.add(raw, EPOLLIN, make_key(Source::kConn, id)));
  ClientConn* p = conn.get();
  conns_.emplace(id, std::move(conn));
  return p;
}

ClientConn* ConnTable::find(ConnId id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second->closing()) return nullptr;
  return it->second.get();
}

void ConnTable::close_later(ClientConn& c, const std::string& reason, bool warn) {
  if (c.closing()) return;
  if (warn) {
    COHORT_LOG_WARN("daemon.conn") << "dropping " << c.describe() << ": " << reason;
  } else {
    COHORT_LOG_DEBUG("daemon.conn") << "closing " << c.describe() << ": " << reason;
  }
  c.mark_closing();
  closing_.push_back(c.id());
}

void ConnTable::mark_dirty(ClientConn& c) {
  if (c.dirty_) return;
  c.dirty_ = true;
  dirty_.push_back(c.id());
}

void ConnTable::update_interest(ClientConn& c) {
  bool want = c.queued() > 0;
  if (want == c.want_out_) return;
  c.want_out_ = want;
  Status s = poller_.modify(c.fd(), want ? (EPOLLIN | EPOLLOUT) : EPOLLIN,
                            make_key(Source::kConn, c.id()));
  if (!s.is_ok()) close_later(c, s.to_string(), true);
}

void ConnTable::flush_dirty() {
  // Flushing can close a connection, which never adds to dirty_, so one pass is enough.
  std::vector<ConnId> ids;
  ids.swap(dirty_);
  for (ConnId id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    ClientConn& c = *it->second;
    c.dirty_ = false;
    if (c.closing()) continue;
    Status s = c.flush();
    if (!s.is_ok()) {
      close_later(c, "the client went away (" + s.message() + ")", false);
      continue;
    }
    update_interest(c);
  }
}

std::vector<std::unique_ptr<ClientConn>> ConnTable::take_closing() {
  std::vector<std::unique_ptr<ClientConn>> out;
  std::vector<ConnId> ids;
  ids.swap(closing_);
  for (ConnId id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    // A last non-blocking attempt, so that a final reply (Welcome with an
    // error, the Ack of a Halt) reaches a client that is still reading.
    (void)it->second->flush();
    poller_.remove(it->second->fd());
    out.push_back(std::move(it->second));
    conns_.erase(it);
  }
  return out;
}

}  // namespace cohort::daemon
