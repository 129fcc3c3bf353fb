#include "transport/tcp/tcp_connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "transport/base/options.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace cohort::transport::tcp {

namespace {

constexpr const char* kLog = "transport.tcp";
// Room to read beyond one eager frame, so that small frames arrive in batches.
constexpr std::size_t kReadSlack = 64 * 1024;
// Compact a buffer whose free tail is smaller than this (when not pinned).
constexpr std::size_t kMinTail = 4096;
// Bytes per sendmsg at most. One call of several MiB holds the socket while
// the kernel copies all of it, and over loopback the receiver cannot read
// meanwhile; in pieces the two copies overlap (1 MiB ping-pong: +25% here).
constexpr std::size_t kMaxWrite = 256 * 1024;

void set_nodelay(int fd) {
  int one = 1;
  // Latency over batching: the library already sends whole frames in one call.
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

// Connecting to a free loopback port in the ephemeral range can pick that very
// port as the source and "succeed" by TCP simultaneous open. Nobody listens
// there, so it is a refused connect, not a peer that speaks nonsense.
bool connected_to_itself(int fd) {
  SocketAddress local, peer;
  local.size = peer.size = sizeof local.storage;
  if (::getsockname(fd, local.get(), &local.size) != 0) return false;
  if (::getpeername(fd, peer.get(), &peer.size) != 0) return false;
  return local.size == peer.size && std::memcmp(&local.storage, &peer.storage, local.size) == 0;
}

}  // namespace

Connection::Connection(PeerId id, int epoll_fd, std::size_t eager_limit)
    : id_(id),
      epoll_fd_(epoll_fd),
      eager_limit_(eager_limit),
      cap_(kPrefixSize + kMaxHeader + std::max(eager_limit, kMaxHello) + kReadSlack) {}

// ---- connecting -------------------------------------------------------------

void Connection::start_connect(std::vector<SocketAddress> targets, std::string text,
                               std::span<const std::byte> hello) {
  visible_ = true;
  remote_ = std::move(text);
  targets_ = std::move(targets);
  std::byte prefix[kPrefixSize];
  encode_prefix({kFlagHello, 0, hello.size()}, prefix);
  iovec v{const_cast<std::byte*>(hello.data()), hello.size()};
  sendq_.push(prefix, Frame{{}, {&v, 1}}, 0, /*internal=*/true, 0);
  try_next_target();
}

void Connection::try_next_target() {
  while (next_target_ < targets_.size()) {
    const SocketAddress& a = targets_[next_target_++];
    std::string where = "connect to " + format_address(a);
    UniqueFd fd(::socket(a.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      int err = errno;
      last_connect_error_ = errno_status(Errc::kPeerLost, where + ": socket", err);
      continue;
    }
    set_nodelay(fd.get());
    int rc = ::connect(fd.get(), a.get(), a.size);
    if (rc == 0 || errno == EINPROGRESS) {
      // Even an immediate success is confirmed by finish_connect() on EPOLLOUT,
      // which also rules out a connection to ourselves.
      fd_ = std::move(fd);
      state_ = State::kConnecting;
      register_fd(/*want_out=*/true);
      return;
    }
    last_connect_error_ = errno_status(Errc::kPeerLost, where, errno);
  }
  close(last_connect_error_.is_ok() ? Status(Errc::kPeerLost, "no address to connect to")
                                    : last_connect_error_);
}

void Connection::finish_connect() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0 && connected_to_itself(fd_.get())) err = ECONNREFUSED;
  if (err == 0) {
    state_ = State::kOpen;
    return;
  }
  last_connect_error_ = errno_status(
      Errc::kPeerLost, "connect to " + format_address(targets_[next_target_ - 1]), err);
  COHORT_LOG_DEBUG(kLog) << "peer " << id_ << ": " << last_connect_error_.message();
  fd_.reset();  // also leaves the epoll set
  out_armed_ = false;
  try_next_target();
}

void Connection::adopt(UniqueFd fd, std::string remote_text) {
  fd_ = std::move(fd);
  remote_ = std::move(remote_text);
  state_ = State::kAwaitHello;
  set_nodelay(fd_.get());
  register_fd(/*want_out=*/false);
}

void Connection::register_fd(bool want_out) {
  epoll_event ev{};
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
  ev.data.u64 = id_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd_.get(), &ev) != 0) {
    int err = errno;
    close(errno_status(Errc::kIoError, "epoll_ctl(ADD) for " + remote_, err));
    return;
  }
  out_armed_ = want_out;
}

void Connection::want_write(bool on) {
  // Level-triggered EPOLLOUT only while frames wait, or epoll would spin.
  if (on == out_armed_ || !fd_) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
  ev.data.u64 = id_;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd_.get(), &ev) == 0) out_armed_ = on;
}

void Connection::close(Status why) {
  if (closing()) return;
  state_ = State::kClosing;
  reason_ = std::move(why);
  fd_.reset();
  out_armed_ = false;
}

// ---- sending ----------------------------------------------------------------

Result<Progress> Connection::send(const Frame& frame, OpId op) {
  if (closing()) [[unlikely]]
    return Status(Errc::kPeerLost,
                  "peer " + std::to_string(id_) + " (" + remote_ + "): " + reason_.message());
  std::byte prefix[kPrefixSize];
  encode_prefix({0, static_cast<std::uint16_t>(frame.header.size()), payload_bytes(frame)}, prefix);
  if (state_ == State::kConnecting || !sendq_.empty()) {
    sendq_.push(prefix, frame, op, false, 0);
    return Progress::kPending;
  }
  const std::size_t total = kPrefixSize + frame.header.size() + payload_bytes(frame);
  if (total > kMaxWrite) [[unlikely]] {
    // Large: in pieces of kMaxWrite from the queue, as many as the socket takes now.
    sendq_.push(prefix, frame, op, false, 0);
    if (!write_queue()) return reason_;
    if (sendq_.empty()) return Progress::kDone;
    want_write(true);
    return Progress::kPending;
  }
  // The fast path: one sendmsg from the caller's buffers, nothing copied.
  iovec iov[2 + kMaxPayloadIov];
  iov[0] = {prefix, kPrefixSize};
  iov[1] = {const_cast<std::byte*>(frame.header.data()), frame.header.size()};
  std::size_t n = 2;
  for (const iovec& v : frame.payload) iov[n++] = v;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  ssize_t w = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  if (w == static_cast<ssize_t>(total)) [[likely]]
    return Progress::kDone;
  if (w < 0) {
    if (!would_block(errno) && errno != EINTR) {
      int err = errno;
      close(errno_status(Errc::kPeerLost, "send to " + remote_, err));
      return reason_;
    }
    w = 0;
  }
  sendq_.push(prefix, frame, op, false, static_cast<std::size_t>(w));
  want_write(true);
  return Progress::kPending;
}

bool Connection::write_queue() {
  // Only from send() with a queue that holds nothing but the frame it just
  // queued: a frame finished here is the caller's kDone, not an event.
  iovec scratch[2 + kMaxPayloadIov];
  while (!sendq_.empty()) {
    std::size_t bytes = 0;
    std::size_t n = sendq_.gather(scratch, &bytes, kMaxWrite);
    msghdr msg{};
    msg.msg_iov = scratch;
    msg.msg_iovlen = n;
    ssize_t w = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (would_block(err)) return true;
      close(errno_status(Errc::kPeerLost, "send to " + remote_, err));
      return false;
    }
    sendq_.advance(static_cast<std::size_t>(w), [](OpId, bool) {});
    if (static_cast<std::size_t>(w) < bytes) return true;  // the socket is full
  }
  return true;
}

void Connection::flush(EventSink& sink, std::span<iovec> scratch) {
  while (!sendq_.empty() && state_ == State::kOpen) {
    std::size_t bytes = 0;
    std::size_t n = sendq_.gather(scratch, &bytes, kMaxWrite);
    msghdr msg{};
    msg.msg_iov = scratch.data();
    msg.msg_iovlen = n;
    ssize_t w = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (!would_block(err)) close(errno_status(Errc::kPeerLost, "send to " + remote_, err));
      break;
    }
    sendq_.advance(static_cast<std::size_t>(w), [&](OpId op, bool internal) {
      if (!internal) sink.emit(send_done(id_, op));
    });
    if (static_cast<std::size_t>(w) < bytes) break;  // the socket is full
  }
  want_write(!sendq_.empty());
}

void Connection::fail_pending(EventSink& sink, const Status& status) {
  sendq_.clear([&](OpId op, bool internal) {
    if (!internal) sink.emit(send_done(id_, op, status));
  });
  if (rx_ == Rx::kPayload) sink.emit(recv_done(id_, recv_op_, status));
  rx_ = Rx::kFrames;
}

// ---- receiving --------------------------------------------------------------

Status Connection::check_prefix(const Prefix& p) const {
  // Outgoing connections are visible from the start; accepted ones once their
  // hello was parsed. Only the accepting side ever receives a hello.
  if (!visible_) {
    if (!p.hello()) return Status(Errc::kProtocolError, "first frame is not a hello");
    if (p.header_size != 0 || p.payload_size > kMaxHello)
      return Status(Errc::kProtocolError, "hello of " + std::to_string(p.payload_size) +
                                              " bytes exceeds " + std::to_string(kMaxHello));
    return Status();
  }
  if (p.hello()) return Status(Errc::kProtocolError, "unexpected second hello");
  return Status();
}

bool Connection::make_room(std::size_t need, std::uint64_t epoch) {
  if (!buf_) buf_.reset(new std::byte[cap_]);  // uninitialised on purpose: bytes come from recv
  bool pinned = pinned_epoch_ == epoch;
  if (!pinned && rpos_ == wpos_) rpos_ = wpos_ = 0;
  bool fits = cap_ - rpos_ >= need && wpos_ < cap_;
  if (fits && (cap_ - wpos_ >= kMinTail || pinned)) return true;
  if (pinned) return false;
  std::memmove(buf_.get(), buf_.get() + rpos_, wpos_ - rpos_);
  wpos_ -= rpos_;
  rpos_ = 0;
  return true;
}

void Connection::read_failed(int err) {
  if (err == 0)
    close(Status(Errc::kPeerLost, "connection closed by " + remote_));
  else
    close(errno_status(Errc::kPeerLost, "recv from " + remote_, err));
}

Connection::RxStop Connection::receive(EventSink& sink, std::uint64_t epoch) {
  for (;;) {
    if (rx_ == Rx::kAnnounced) return RxStop::kBlocked;
    if (rx_ == Rx::kPayload) {
      Pump r = pump_payload(epoch);
      if (r == Pump::kPartial) return RxStop::kDrained;
      sink.emit(
          recv_done(id_, recv_op_,
                    r == Pump::kComplete ? Status() : Status(Errc::kPeerLost, reason_.message())));
      rx_ = Rx::kFrames;
      continue;
    }
    std::size_t avail = wpos_ - rpos_;
    std::size_t need = kPrefixSize;
    if (avail >= kPrefixSize) {
      Prefix p;
      Status bad = decode_prefix(buf_.get() + rpos_, p);
      if (bad.is_ok()) bad = check_prefix(p);
      if (!bad.is_ok()) [[unlikely]] {
        bad.with_context("from " + remote_);
        close(std::move(bad));
        rpos_ = wpos_;  // nothing after nonsense can be trusted
        return RxStop::kClosed;
      }
      std::size_t head = kPrefixSize + p.header_size;
      bool eager = p.hello() || p.payload_size <= eager_limit_;
      need = eager ? head + static_cast<std::size_t>(p.payload_size) : head;
      if (avail >= need) {
        if (!sink.has_room()) return RxStop::kFull;
        Event& e = sink.next();
        const std::byte* at = buf_.get() + rpos_;
        e.peer = id_;
        e.op = 0;
        e.status.reset();
        e.header = {at + kPrefixSize, p.header_size};
        if (eager) {
          e.kind = p.hello() ? Event::Kind::kPeerAccepted : Event::Kind::kFrameArrived;
          e.payload = {at + head, static_cast<std::size_t>(p.payload_size)};
          e.payload_size = e.payload.size();
        } else {
          e.kind = Event::Kind::kFrameAnnounced;
          e.payload = {};
          e.payload_size = p.payload_size;
          payload_left_ = p.payload_size;
          rx_ = Rx::kAnnounced;
        }
        if (p.hello()) {
          e.header = {};
          visible_ = true;
          if (state_ == State::kAwaitHello) state_ = State::kOpen;
        }
        rpos_ += need;
        pinned_epoch_ = epoch;
        continue;
      }
    }
    if (closing()) return RxStop::kClosed;
    if (drained_ || !make_room(need, epoch)) return RxStop::kDrained;
    std::size_t want = cap_ - wpos_;
    ssize_t n = ::recv(fd_.get(), buf_.get() + wpos_, want, 0);
    if (n > 0) {
      wpos_ += static_cast<std::size_t>(n);
      // A short read emptied the socket: under level-triggered epoll, asking
      // again now would only return EAGAIN.
      if (static_cast<std::size_t>(n) < want) drained_ = true;
    } else if (n == 0) {
      read_failed(0);
    } else if (would_block(errno)) {
      return RxStop::kDrained;
    } else if (errno != EINTR) {
      read_failed(errno);
    }
  }
}

Connection::Pump Connection::pump_payload(std::uint64_t epoch) {
  if (wpos_ > rpos_ && dest_done_ < dest_size_) {
    std::size_t k = std::min(wpos_ - rpos_, dest_size_ - dest_done_);
    std::memcpy(dest_ + dest_done_, buf_.get() + rpos_, k);
    rpos_ += k;
    dest_done_ += k;
  }
  while (dest_done_ < dest_size_) {
    if (closing()) return Pump::kFailed;
    if (drained_) return Pump::kPartial;
    // The payload goes straight into the caller's buffer; whatever follows it
    // lands in our buffer in the same readv.
    iovec iov[2];
    std::size_t rest = dest_size_ - dest_done_;
    iov[0] = {dest_ + dest_done_, rest};
    int cnt = 1;
    if (!buf_) buf_.reset(new std::byte[cap_]);
    if (pinned_epoch_ != epoch) rpos_ = wpos_ = 0;  // empty here: everything went to dest
    if (wpos_ < cap_) iov[cnt++] = {buf_.get() + wpos_, cap_ - wpos_};
    std::size_t want = rest + (cnt == 2 ? cap_ - wpos_ : 0);
    ssize_t n = ::readv(fd_.get(), iov, cnt);
    if (n > 0) {
      std::size_t got = static_cast<std::size_t>(n);
      std::size_t k = std::min(got, rest);
      dest_done_ += k;
      wpos_ += got - k;
      if (got < want) drained_ = true;
    } else if (n == 0) {
      read_failed(0);
    } else if (would_block(errno)) {
      return Pump::kPartial;
    } else if (errno != EINTR) {
      read_failed(errno);
    }
  }
  return Pump::kComplete;
}

Result<Progress> Connection::receive_payload(std::span<std::byte> dest, OpId op,
                                             std::uint64_t epoch) {
  if (rx_ != Rx::kAnnounced)
    return Status(Errc::kInvalidArgument, "receive_payload: no announced frame waits from peer " +
                                              std::to_string(id_) + " (" + remote_ + ")");
  if (dest.size() != payload_left_)
    return Status(Errc::kInvalidArgument,
                  "receive_payload: buffer of " + std::to_string(dest.size()) +
                      " bytes for a payload of " + std::to_string(payload_left_));
  rx_ = Rx::kPayload;
  dest_ = dest.data();
  dest_size_ = dest.size();
  dest_done_ = 0;
  recv_op_ = op;
  drained_ = false;
  switch (pump_payload(epoch)) {
    case Pump::kComplete:
      rx_ = Rx::kFrames;
      return Progress::kDone;
    case Pump::kPartial:
      return Progress::kPending;
    case Pump::kFailed:
      break;
  }
  rx_ = Rx::kFrames;
  return Status(Errc::kPeerLost,
                "payload from peer " + std::to_string(id_) + " cut short: " + reason_.message());
}

}  // namespace cohort::transport::tcp
