// transport/tcp/tcp_connection.hpp — one TCP connection of an endpoint: its
// socket, its send queue and its receive state machine.
//
// The endpoint (tcp_endpoint.hpp) owns connections, routes epoll readiness to
// them and turns a closed connection into events; a Connection does the I/O:
//  * sending: send() writes straight from the caller's buffers with one
//    sendmsg; a frame over 256 KiB in pieces of that size (one huge call
//    keeps a loopback receiver from reading until the kernel has copied all
//    of it); the rest waits in the SendQueue and leaves from flush().
//  * receiving: one buffer per connection, filled with large recv() calls and
//    parsed in place, so kFrameArrived spans point into it. A buffer with spans
//    handed out in the current poll ("pinned") is never moved or compacted.
//    Payloads above the eager limit are announced and then read with readv
//    straight into the caller's buffer (receive_payload()).
//  * closing: any failure (EOF, reset, protocol error, failed connect) closes the
//    socket at once and records why; frames already buffered are still handed
//    out, then receive() says kClosed and the endpoint tears the connection down.
// Not thread-safe: used by the endpoint's one thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/tcp/tcp_address.hpp"
#include "transport/tcp/tcp_send_queue.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::tcp {

class Connection {
 public:
  enum class State : std::uint8_t { kConnecting, kAwaitHello, kOpen, kClosing };
  /// Why receive() stopped.
  enum class RxStop : std::uint8_t {
    kDrained,  // nothing more to read now (or the buffer is pinned until the next poll)
    kFull,     // a frame is ready but the event span is full: call again next poll
    kBlocked,  // an announced payload waits for receive_payload()
    kClosed,   // closed and every buffered frame handed out: tear down
  };

  Connection(PeerId id, int epoll_fd, std::size_t eager_limit);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PeerId id() const noexcept { return id_; }
  State state() const noexcept { return state_; }
  bool closing() const noexcept { return state_ == State::kClosing; }
  /// Whether the user knows this peer: ours from connect(), accepted ones after kPeerAccepted.
  bool visible() const noexcept { return visible_; }
  /// Why the connection is closing (valid when closing()).
  const Status& reason() const noexcept { return reason_; }
  const std::string& remote() const noexcept { return remote_; }

  /// Outgoing: queue the hello frame and start connecting to the first target
  /// that does not fail at once. Failure of every target closes the connection.
  void start_connect(std::vector<SocketAddress> targets, std::string text,
                     std::span<const std::byte> hello);
  /// Outgoing, on epoll readiness while connecting: connected, or try the next target.
  void finish_connect();
  /// Incoming: take over an accepted socket; the peer must send its hello first.
  void adopt(UniqueFd fd, std::string remote_text);

  Result<Progress> send(const Frame& frame, OpId op);
  /// send()'s large frame: what the socket takes now, in pieces of at most
  /// kMaxWrite bytes. False when the connection failed (closing()).
  bool write_queue();
  /// Writes queued frames until the socket is full; completions go to `sink`.
  void flush(EventSink& sink, std::span<iovec> scratch);

  /// Call once before receive() in each poll: forgets that the socket was drained.
  void begin_service() noexcept { drained_ = false; }
  RxStop receive(EventSink& sink, std::uint64_t epoch);
  Result<Progress> receive_payload(std::span<std::byte> dest, OpId op, std::uint64_t epoch);
  /// Whether the endpoint must come back to this connection even if its socket
  /// stays quiet: bytes buffered, or closing.
  bool needs_service() const noexcept { return wpos_ > rpos_ || closing(); }

  /// Ends every pending operation with `status`: queued sends (kSendDone, the
  /// hello silently) and a payload being received (kRecvDone).
  void fail_pending(EventSink& sink, const Status& status);
  /// Stops all I/O and records `why` (the first reason wins).
  void close(Status why);

  bool in_ready_list = false;  // endpoint bookkeeping

 private:
  enum class Rx : std::uint8_t { kFrames, kAnnounced, kPayload };
  enum class Pump : std::uint8_t { kComplete, kPartial, kFailed };

  void try_next_target();
  void register_fd(bool want_out);
  void want_write(bool on);
  /// Checks a decoded prefix against the connection state (hello rules).
  Status check_prefix(const Prefix& p) const;
  /// Makes `need` contiguous bytes fit from rpos_ with room to read; false
  /// when only moving the pinned buffer could do that.
  bool make_room(std::size_t need, std::uint64_t epoch);
  Pump pump_payload(std::uint64_t epoch);
  void read_failed(int err);

  PeerId id_;
  int epoll_fd_;
  State state_ = State::kConnecting;
  bool visible_ = false;
  bool out_armed_ = false;
  bool drained_ = false;
  Rx rx_ = Rx::kFrames;
  UniqueFd fd_;
  std::string remote_;
  Status reason_;

  // Connecting.
  std::vector<SocketAddress> targets_;
  std::size_t next_target_ = 0;
  Status last_connect_error_;

  SendQueue sendq_;

  // Receiving: unparsed bytes are buf_[rpos_, wpos_).
  std::size_t eager_limit_;
  std::size_t cap_;
  std::unique_ptr<std::byte[]> buf_;
  std::size_t rpos_ = 0, wpos_ = 0;
  std::uint64_t pinned_epoch_ = 0;  // poll epoch in which spans into buf_ were handed out
  std::uint64_t payload_left_ = 0;  // kAnnounced: bytes the caller must take
  std::byte* dest_ = nullptr;       // kPayload: the caller's buffer
  std::size_t dest_size_ = 0, dest_done_ = 0;
  OpId recv_op_ = 0;
};

}  // namespace cohort::transport::tcp
