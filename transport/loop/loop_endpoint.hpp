// transport/loop/loop_endpoint.hpp — the loop Endpoint and its fault Injector.
//
// A real transport between endpoints of one process, with tcp's semantics:
// hello and kPeerAccepted, kFrameAnnounced above the eager limit and
// receive_payload(), order per peer, kPeerDown when the other endpoint is
// destroyed or disconnects. Frames are copied into the receiver's inbox at
// send(), so a send to a connected peer is kDone at once; sends made before
// the connection is established (see Injector::delay_connect) are kPending.
//
// The Injector drives error paths that real networks produce only by chance:
//
//   auto* inject = loop::injector(*endpoint);    // nullptr for other transports
//   inject->delay_connect(3);                    // next connect() completes after 3 polls
//   inject->fail_next_send();                    // next send(): kPending, then failed kSendDone
//   inject->drop_peer(peer);                     // both ends get kPeerDown
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "transport/base/event_queue.hpp"
#include "transport/loop/loop_inbox.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::loop {

class LoopEndpoint;

class Injector {
 public:
  /// The next send() returns kPending, delivers nothing and ends with kSendDone(status).
  void fail_next_send(Status status = Status(Errc::kPeerLost, "send failed by the loop injector"));
  /// Cuts the connection to `peer`: pending sends fail, both ends see kPeerDown.
  void drop_peer(PeerId peer);
  /// The next connect() completes only after `polls` calls to poll() (0: at once).
  void delay_connect(int polls);

 private:
  friend class LoopEndpoint;
  explicit Injector(LoopEndpoint& endpoint) : endpoint_(endpoint) {}
  LoopEndpoint& endpoint_;
};

/// The injector of a loop endpoint; nullptr for an endpoint of another transport.
Injector* injector(Endpoint& endpoint);

class LoopEndpoint final : public Endpoint {
 public:
  static Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options);
  ~LoopEndpoint() override;

  const Caps& caps() const override { return caps_; }
  Address address() const override { return inbox_->address(); }
  Result<PeerId> connect(const Address& addr) override;
  void disconnect(PeerId peer) override;
  Result<Progress> send(PeerId peer, const Frame& frame, OpId op) override;
  Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) override;
  std::size_t poll(std::span<Event> out) override;
  Result<int> wait_fd() override { return inbox_->fd(); }

  Injector& injector() noexcept { return injector_; }

 private:
  friend class Injector;

  struct Queued {  // a send made before the connection was up; buffers borrowed
    OpId op = 0;
    std::span<const std::byte> header;
    std::vector<iovec> payload;
  };
  struct Peer {
    enum class State : std::uint8_t { kConnecting, kOpen, kDown };
    State state = State::kConnecting;
    std::string remote_address;
    std::shared_ptr<Inbox> remote;
    PeerId remote_id = kNoPeer;
    int connect_delay = 0;
    std::deque<Queued> queued;
    std::deque<Item> rx;     // arrived, not handed out yet
    bool announced = false;  // `current` waits for receive_payload()
    Item current;
  };

  explicit LoopEndpoint(std::shared_ptr<Inbox> inbox);
  Peer* find(PeerId id) const noexcept { return id < peers_.size() ? peers_[id].get() : nullptr; }
  Peer& slot(PeerId id);
  /// Opens the connection of a peer whose connect delay ran out.
  void establish(PeerId id, EventSink& sink);
  /// Ends a peer: queued sends get kSendDone(send_status), then kPeerDown(why)
  /// unless `why` is OK (a local disconnect reports no kPeerDown).
  void end_peer(PeerId id, EventSink& sink, const Status& send_status, const Status& why);
  /// Tells the remote end of `p` that the connection is gone.
  void notify_down(Peer& p, const Status& why);
  Item make_frame(PeerId to, std::span<const std::byte> header, std::span<const iovec> payload);
  void route(Item&& item);
  void deliver(PeerId id, Peer& p, EventSink& sink);

  Caps caps_;
  std::string hello_;
  std::shared_ptr<Inbox> inbox_;
  Injector injector_{*this};
  std::vector<std::unique_ptr<Peer>> peers_;  // null: reserved by a connecting remote, not arrived
  std::deque<Item> incoming_;
  std::vector<Item> delivered_;  // spans handed out in the last poll() point into these
  EventQueue overflow_;
  // Injector state.
  int next_connect_delay_ = 0;
  bool fail_next_send_ = false;
  Status fail_status_;
};

}  // namespace cohort::transport::loop
