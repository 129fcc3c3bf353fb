// transport/tcp/tcp_endpoint.hpp — the tcp Endpoint: a listening socket, one
// Connection per peer, and one epoll set (the wait_fd()) watching them all.
//
// poll() does, in order: hand out events left from the last call; service
// connections that have work without a socket event (buffered frames, a
// finished receive_payload(), a failure to report); one epoll_wait(…, 0) and
// the sockets it names. epoll is level-triggered, so a connection left unread
// (full event span, pinned buffer) is named again by the next poll().
//
// The epoll set also holds an eventfd that is signalled only when internal work
// is left after a call (see wake()), so wait_fd() becomes readable whenever
// poll() has something to report — and costs nothing on the fast path.
//
// PeerIds index peers_ and are never reused; a lost peer leaves a null slot so
// that later sends say kPeerLost rather than "unknown". Not thread-safe.
#pragma once

#include <sys/epoll.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "transport/base/event_queue.hpp"
#include "transport/tcp/tcp_connection.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::tcp {

class TcpEndpoint final : public Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  ~TcpEndpoint() override;

  const Caps& caps() const override { return caps_; }
  Address address() const override { return address_; }
  Result<PeerId> connect(const Address& addr) override;
  void disconnect(PeerId peer) override;
  Result<Progress> send(PeerId peer, const Frame& frame, OpId op) override;
  Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) override;
  std::size_t poll(std::span<Event> out) override;
  Result<int> wait_fd() override { return epoll_.get(); }

 private:
  TcpEndpoint() = default;

  Connection* live(PeerId id) const noexcept {
    return id < peers_.size() ? peers_[id].get() : nullptr;
  }
  PeerId add_peer();
  void accept_all(EventSink& sink);
  /// Progress on one connection; `events` are epoll's, or EPOLLIN for "look again".
  void service(Connection& c, EventSink& sink, std::uint32_t events);
  /// Come back to `c` in the next poll even if its socket stays quiet.
  void mark_ready(Connection& c);
  /// mark_ready() from outside poll(): also wakes wait_fd().
  void schedule(Connection& c);
  /// Pending operations fail, kPeerDown if the user knew the peer, then the
  /// connection is retired (its buffer lives until the next poll).
  void teardown(Connection& c, EventSink& sink);
  void retire(PeerId id);
  /// Makes wait_fd() readable until the next poll().
  void wake();

  Caps caps_;
  Address address_;
  std::string hello_;
  UniqueFd listen_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;
  bool wake_armed_ = false;
  std::uint64_t epoch_ = 1;  // poll() count: spans handed out in epoch N die at N+1

  std::vector<std::unique_ptr<Connection>> peers_;
  std::vector<std::unique_ptr<Connection>> retired_;  // freed at the next poll()
  std::vector<PeerId> ready_, ready_work_;
  EventQueue overflow_;
  std::array<epoll_event, 64> epoll_events_{};
  std::array<iovec, 256> scratch_{};
};

}  // namespace cohort::transport::tcp
