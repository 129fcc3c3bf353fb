// transport/ofi/ofi_watch.hpp — the TCP connection beside every ofi connection:
// it starts the connection, and its end of file says that the peer is gone.
//
// libfabric says nothing when a peer dies: with tcp;ofi_rxm a pending
// rendezvous send to a killed process never completes and later sends return
// -FI_EAGAIN forever (rxm retries the connection); with shm a send into a dead
// process's region succeeds and a large one never completes. A heartbeat
// would need a timeout; instead every ofi connection has a companion TCP
// connection, the watch, which the kernel closes when the process dies and
// the endpoint closes when it drops the connection or closes. Its end of
// file is the peer's death notice: exact, immediate, no timer anywhere.
//
// The watch also carries the handshake and the first frames (ofi_tags.hpp):
// the connector's hello, the acceptor's welcome, and small frames sent
// before the welcome came. Those need no fabric progress on either side —
// the kernel delivers them — so a connection starts like a tcp one.
// A crashed host (no FIN at all) is the daemon's heartbeats' business.
//
// Records on a watch are [u32 length][length bytes], the bytes a WirePrefix
// and its body; at most kMaxRecord. A Watch owns a listener and its
// connections, registered in the endpoint's epoll set with tags from
// kTagBase - 1 up; the endpoint routes events for those tags to handle().
// Not thread-safe.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::transport::ofi {

class Watch {
 public:
  using ConnId = std::uint32_t;
  static constexpr ConnId kNoConn = ~ConnId{0};
  /// Epoll tags at and above kTagBase - 1 belong to the watch.
  static constexpr std::uint64_t kTagBase = std::uint64_t{1} << 40;
  static constexpr std::size_t kMaxRecord = 16 * 1024;

  struct Event {
    enum class Kind : std::uint8_t {
      kAccepted,   // a peer connected to us (its hello comes as a record)
      kConnected,  // our connect() succeeded: the peer's process listens
      kRecord,     // one record, in `record`
      kClosed,     // end of file, error or failed connect; the ConnId is gone
    };
    Kind kind;
    ConnId conn;
    std::vector<std::byte> record;
    Status why;  // kClosed
  };

  /// Listens on `bind_host` (numeric or a name; "" = every interface), port 0.
  static Result<std::unique_ptr<Watch>> open(const std::string& bind_host, int epoll_fd);
  ~Watch();

  /// "127.0.0.1:40123" or "[::1]:40123": what the endpoint's address says.
  const std::string& address() const noexcept { return address_; }

  /// Starts connecting to a peer's watch address (numeric: never waits for DNS).
  Result<ConnId> connect(const std::string& address);
  /// Appends one record made of `parts` (then the `payload` iovecs): sent now
  /// as far as the socket takes it, the rest when it can (kept until then,
  /// also while still connecting). kPeerLost if the connection is gone.
  Status write(ConnId conn, std::span<const std::span<const std::byte>> parts,
               std::span<const iovec> payload = {});
  /// Closes one connection; the other side reads end of file. No event follows.
  void close(ConnId conn) noexcept;
  /// Before closing everything: sends what connected connections still hold,
  /// waiting for their sockets until `deadline` at most.
  void flush_all(std::chrono::steady_clock::time_point deadline);
  /// Connections still connecting or with output waiting: while nonzero the
  /// endpoint looks at its epoll set on every poll.
  std::size_t busy() const noexcept { return busy_; }

  /// Handles an epoll event whose tag is >= kTagBase - 1; appends what happened.
  void handle(std::uint64_t tag, std::uint32_t events, std::vector<Event>& out);

 private:
  struct Conn;
  Watch() = default;
  void accept_all(std::vector<Event>& out);
  ConnId add(UniqueFd fd, bool connecting);
  void update(ConnId id);
  bool flush(Conn& c);
  void read_records(ConnId id, std::vector<Event>& out);
  void closed(ConnId id, Status why, std::vector<Event>& out);

  int epoll_fd_ = -1;
  UniqueFd listen_;
  std::string address_;
  // ConnIds index conns_ and are never reused, so an event already read for a
  // closed connection finds a null slot rather than a stranger.
  std::vector<std::unique_ptr<Conn>> conns_;
  std::size_t busy_ = 0;
};

}  // namespace cohort::transport::ofi
