#include "transport/loop/loop_endpoint.hpp"

#include <cstring>

#include "base/log.hpp"
#include "transport/base/options.hpp"

namespace cohort::transport::loop {

namespace {
constexpr const char* kLog = "transport.loop";
}

// ---- Injector ---------------------------------------------------------------

Injector* injector(Endpoint& endpoint) {
  auto* loop = dynamic_cast<LoopEndpoint*>(&endpoint);
  return loop ? &loop->injector() : nullptr;
}

void Injector::fail_next_send(Status status) {
  endpoint_.fail_next_send_ = true;
  endpoint_.fail_status_ = std::move(status);
}

void Injector::drop_peer(PeerId peer) {
  LoopEndpoint& ep = endpoint_;
  LoopEndpoint::Peer* p = ep.find(peer);
  if (p == nullptr || p->state == LoopEndpoint::Peer::State::kDown) return;
  Status why(Errc::kPeerLost, "connection dropped by the loop injector");
  ep.notify_down(*p, why);
  EventSink later({}, ep.overflow_);
  ep.end_peer(peer, later, why, why);
  ep.inbox_->signal();
}

void Injector::delay_connect(int polls) {
  endpoint_.next_connect_delay_ = polls < 0 ? 0 : polls;
}

// ---- set-up -----------------------------------------------------------------

LoopEndpoint::LoopEndpoint(std::shared_ptr<Inbox> inbox) : inbox_(std::move(inbox)) {}

Result<std::unique_ptr<Endpoint>> LoopEndpoint::open(const EndpointOptions& options) {
  COHORT_RETURN_IF_ERROR(check_options(options));
  COHORT_ASSIGN_OR_RETURN(auto inbox, create_inbox());
  std::unique_ptr<LoopEndpoint> ep(new LoopEndpoint(std::move(inbox)));
  ep->hello_ = options.hello;
  ep->caps_.max_inline = resolve_eager_limit(options, kLog);
  ep->caps_.max_iov = kMaxPayloadIov;
  ep->caps_.wait_fd = true;
  return std::unique_ptr<Endpoint>(std::move(ep));
}

LoopEndpoint::~LoopEndpoint() {
  remove_inbox(inbox_->number());
  Status why(Errc::kPeerLost, "peer endpoint " + inbox_->address() + " closed");
  // Connections opened to us that we never saw must hear about it too.
  for (Item& item : inbox_->close())
    if (item.kind == Item::Kind::kAccept && item.from)
      item.from->push(Item{Item::Kind::kDown, item.reply_to, kNoPeer, nullptr, {}, 0, why});
  for (auto& p : peers_)
    if (p && p->state == Peer::State::kOpen) notify_down(*p, why);
}

LoopEndpoint::Peer& LoopEndpoint::slot(PeerId id) {
  if (id >= peers_.size()) peers_.resize(id + 1);
  if (!peers_[id]) peers_[id] = std::make_unique<Peer>();
  return *peers_[id];
}

// ---- connections ------------------------------------------------------------

Result<PeerId> LoopEndpoint::connect(const Address& addr) {
  if (addr.rfind("loop:", 0) != 0)
    return Status(Errc::kInvalidArgument, "bad loop address '" + addr + "' (expected loop:N)");
  PeerId id = inbox_->reserve_peer();
  Peer& p = slot(id);
  p.remote_address = addr;
  p.connect_delay = next_connect_delay_;
  next_connect_delay_ = 0;
  if (p.connect_delay == 0) {
    EventSink later({}, overflow_);
    establish(id, later);
  }
  inbox_->signal();  // a delayed connect or a failure needs the caller to poll
  return id;
}

void LoopEndpoint::establish(PeerId id, EventSink& sink) {
  Peer& p = *peers_[id];
  std::shared_ptr<Inbox> remote = find_inbox(p.remote_address);
  PeerId remote_id = remote ? remote->reserve_peer() : kNoPeer;
  Item accept{Item::Kind::kAccept, remote_id, id, inbox_, {}, 0, Status()};
  accept.bytes.assign(reinterpret_cast<const std::byte*>(hello_.data()),
                      reinterpret_cast<const std::byte*>(hello_.data()) + hello_.size());
  if (!remote || !remote->push(std::move(accept))) {
    Status why(Errc::kPeerLost, "connect to " + p.remote_address + ": nobody listens there");
    end_peer(id, sink, why, why);
    return;
  }
  p.remote = std::move(remote);
  p.remote_id = remote_id;
  p.state = Peer::State::kOpen;
  while (!p.queued.empty()) {
    Queued& q = p.queued.front();
    bool ok = p.remote->push(make_frame(p.remote_id, q.header, q.payload));
    sink.emit(send_done(id, q.op, ok ? Status() : Status(Errc::kPeerLost, "peer closed")));
    p.queued.pop_front();
  }
}

void LoopEndpoint::end_peer(PeerId id, EventSink& sink, const Status& send_status,
                            const Status& why) {
  Peer& p = *peers_[id];
  for (Queued& q : p.queued) sink.emit(send_done(id, q.op, send_status));
  p.queued.clear();
  p.rx.clear();
  if (p.announced) delivered_.push_back(std::move(p.current));  // its header span lives on
  p.announced = false;
  p.remote.reset();
  p.state = Peer::State::kDown;
  if (!why.is_ok()) sink.emit(peer_down(id, why));
  COHORT_LOG_DEBUG(kLog) << inbox_->address() << " peer " << id << " down: " << why.to_string();
}

void LoopEndpoint::notify_down(Peer& p, const Status& why) {
  if (p.remote) p.remote->push(Item{Item::Kind::kDown, p.remote_id, kNoPeer, nullptr, {}, 0, why});
}

void LoopEndpoint::disconnect(PeerId peer) {
  Peer* p = find(peer);
  if (p == nullptr || p->state == Peer::State::kDown) return;
  notify_down(*p, Status(Errc::kPeerLost, "peer " + inbox_->address() + " disconnected"));
  EventSink later({}, overflow_);
  end_peer(peer, later, Status(Errc::kCanceled, "disconnected locally"), Status());
  if (!overflow_.empty()) inbox_->signal();
}

// ---- data -------------------------------------------------------------------

Item LoopEndpoint::make_frame(PeerId to, std::span<const std::byte> header,
                              std::span<const iovec> payload) {
  Item item;
  item.kind = Item::Kind::kFrame;
  item.to = to;
  item.header_size = header.size();
  std::size_t size = header.size();
  for (const iovec& v : payload) size += v.iov_len;
  item.bytes.resize(size);
  std::byte* at = item.bytes.data();
  if (!header.empty()) std::memcpy(at, header.data(), header.size());
  at += header.size();
  for (const iovec& v : payload) {
    if (v.iov_len != 0) std::memcpy(at, v.iov_base, v.iov_len);
    at += v.iov_len;
  }
  return item;
}

Result<Progress> LoopEndpoint::send(PeerId peer, const Frame& frame, OpId op) {
  Peer* p = find(peer);
  if (p == nullptr || p->state == Peer::State::kDown)
    return bad_peer(peer, p != nullptr, inbox_->address());
  COHORT_RETURN_IF_ERROR(check_frame(frame, caps_.max_iov));
  if (fail_next_send_) {
    fail_next_send_ = false;
    overflow_.push(send_done(peer, op, std::move(fail_status_)));
    inbox_->signal();
    return Progress::kPending;
  }
  if (p->state == Peer::State::kConnecting || !p->queued.empty()) {
    p->queued.push_back({op, frame.header, {frame.payload.begin(), frame.payload.end()}});
    return Progress::kPending;
  }
  if (!p->remote->push(make_frame(p->remote_id, frame.header, frame.payload)))
    return Status(Errc::kPeerLost, "peer " + p->remote_address + " closed");
  return Progress::kDone;
}

Result<Progress> LoopEndpoint::receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) {
  Peer* p = find(peer);
  if (p == nullptr || p->state == Peer::State::kDown)
    return bad_peer(peer, p != nullptr, inbox_->address());
  if (!p->announced)
    return Status(Errc::kInvalidArgument,
                  "receive_payload: no announced frame waits from peer " + std::to_string(peer));
  Item& item = p->current;
  std::size_t size = item.bytes.size() - item.header_size;
  if (dest.size() != size)
    return Status(Errc::kInvalidArgument, "receive_payload: buffer of " +
                                              std::to_string(dest.size()) +
                                              " bytes for a payload of " + std::to_string(size));
  if (size != 0) std::memcpy(dest.data(), item.bytes.data() + item.header_size, size);
  p->announced = false;
  delivered_.push_back(std::move(item));
  if (!p->rx.empty()) inbox_->signal();  // frames behind it are ready for the next poll()
  return Progress::kDone;
}

// ---- progress ---------------------------------------------------------------

void LoopEndpoint::route(Item&& item) {
  if (item.kind == Item::Kind::kAccept) {
    Peer& p = slot(item.to);
    p.state = Peer::State::kOpen;
    p.remote = item.from;
    p.remote_id = item.reply_to;
    p.remote_address = item.from->address();
    item.from.reset();
    p.rx.push_back(std::move(item));
    return;
  }
  Peer* p = find(item.to);
  if (p != nullptr && p->state == Peer::State::kOpen) p->rx.push_back(std::move(item));
}

void LoopEndpoint::deliver(PeerId id, Peer& p, EventSink& sink) {
  while (!p.rx.empty() && !p.announced && p.state == Peer::State::kOpen) {
    Item& item = p.rx.front();
    if (item.kind == Item::Kind::kDown) {
      Status why = std::move(item.status);
      end_peer(id, sink, why, why);
      return;
    }
    if (!sink.has_room()) return;
    Event& e = sink.next();
    e.peer = id;
    e.op = 0;
    e.status.reset();
    std::span<const std::byte> bytes(item.bytes);
    if (item.kind == Item::Kind::kAccept) {
      e.kind = Event::Kind::kPeerAccepted;
      e.header = {};
      e.payload = bytes;
      e.payload_size = bytes.size();
    } else {
      e.header = bytes.first(item.header_size);
      e.payload_size = bytes.size() - item.header_size;
      if (e.payload_size <= caps_.max_inline) {
        e.kind = Event::Kind::kFrameArrived;
        e.payload = bytes.subspan(item.header_size);
      } else {
        e.kind = Event::Kind::kFrameAnnounced;
        e.payload = {};
        p.current = std::move(item);  // the vector's storage, and so the spans, stay put
        p.announced = true;
        p.rx.pop_front();
        return;
      }
    }
    delivered_.push_back(std::move(item));
    p.rx.pop_front();
  }
}

std::size_t LoopEndpoint::poll(std::span<Event> out) {
  delivered_.clear();  // spans from the previous poll() end here
  EventSink sink(out, overflow_);
  bool pending = false;
  for (PeerId id = 0; id < peers_.size(); ++id) {
    Peer* p = peers_[id].get();
    if (p && p->state == Peer::State::kConnecting && p->connect_delay > 0) {
      if (--p->connect_delay == 0)
        establish(id, sink);
      else
        pending = true;
    }
  }
  inbox_->take(incoming_);
  for (Item& item : incoming_) route(std::move(item));
  incoming_.clear();
  for (PeerId id = 0; id < peers_.size(); ++id) {
    Peer* p = peers_[id].get();
    if (p == nullptr) continue;
    deliver(id, *p, sink);
    if (!p->rx.empty() && !p->announced && p->state == Peer::State::kOpen) pending = true;
  }
  if (pending || !overflow_.empty()) inbox_->signal();
  return sink.used();
}

}  // namespace cohort::transport::loop
