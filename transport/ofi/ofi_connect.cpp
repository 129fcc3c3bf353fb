// The ofi endpoint's connections: connect(), disconnect() and the bye, and
// what its watch sockets report — the hello/welcome handshake, early frames,
// end of file (ofi_watch.hpp, ofi_tags.hpp). One of the four files of
// OfiEndpoint (ofi_endpoint.hpp).
#include "transport/ofi/ofi_endpoint.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <unistd.h>

#include <cstring>

#include "base/log.hpp"
#include "transport/base/options.hpp"
#include "transport/ofi/ofi_address.hpp"

namespace cohort::transport::ofi {

namespace {
constexpr const char* kLog = "transport.ofi";
}  // namespace

// ---- connections --------------------------------------------------------------

Result<PeerId> OfiEndpoint::connect(const Address& addr) {
  COHORT_ASSIGN_OR_RETURN(OfiAddress a, parse_address(addr));
  bool host_ok = !host_local_provider(a.provider) || a.host == host_;
  if (a.provider != fabric_->provider() || a.fabric != fabric_->fabric_name() || !host_ok)
    return Status(Errc::kInvalidArgument,
                  "ofi address '" + addr + "' is on provider " + a.provider + ", fabric " +
                      a.fabric + (host_ok ? "" : ", another host") + "; this endpoint uses " +
                      fabric_->provider() + ", fabric " + fabric_->fabric_name() +
                      ": not reachable (ask reaches() first)");
  Peer& p = add_peer(true);
  p.visible = true;
  p.remote = addr;
  p.remote_nonce = a.nonce;
  p.remote_eager = static_cast<std::size_t>(a.eager);
  Status failed = reserve_buffers();
  if (failed.is_ok() && a.pid == static_cast<std::uint32_t>(::getpid()) && a.host == host_) {
    p.local_alive = LocalEndpoints::find(a.name);
    if (!p.local_alive) failed = Status(Errc::kPeerLost, "no such endpoint in this process");
  }
  if (failed.is_ok()) {
    auto w = watch_->connect(a.watch);
    if (w.is_ok()) {
      p.watch = *w;
      if (watch_owner_.size() <= p.watch) watch_owner_.resize(p.watch + 1, kNoPeer);
      watch_owner_[p.watch] = p.id;
      // The hello waits in the watch and leaves as soon as it connects.
      WirePrefix prefix{WireType::kHello, 0, 0, 0,
                        sizeof(WireHello) + address_.size() + hello_.size()};
      WireHello h{nonce_, caps_.max_inline, p.remote_nonce,
                  static_cast<std::uint32_t>(address_.size()), p.id};
      auto bytes = [](const auto* data, std::size_t n) {
        return std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), n);
      };
      const std::span<const std::byte> parts[] = {bytes(&prefix, sizeof prefix),
                                                  bytes(&h, sizeof h),
                                                  bytes(address_.data(), address_.size()),
                                                  bytes(hello_.data(), hello_.size())};
      failed = watch_->write(p.watch, parts);
    } else {
      failed = w.status();
    }
  }
  if (failed.is_ok()) failed = insert_address(p, a.name);
  // Even a connect that failed at once is reported from poll(), like any other.
  if (!failed.is_ok()) mark_gone(p, peer_status(p, Errc::kPeerLost, failed.message()), true);
  COHORT_LOG_DEBUG(kLog) << "ofi " << std::hex << nonce_ << std::dec << " peer " << p.id
                         << ": connecting to " << addr;
  return p.id;
}

void OfiEndpoint::disconnect(PeerId peer) {
  Peer* p = live(peer);
  if (p == nullptr) return;
  EventSink later({}, overflow_);  // outside poll(): every event waits for the next one
  send_bye(*p);                    // first: it may take back the number of a frame never sent
  fail_ops(*p, peer_status(*p, Errc::kCanceled, "disconnected locally"), later);
  retire(*p, Status(), /*report=*/false, later);
  if (!overflow_.empty()) wake();
}

void OfiEndpoint::send_bye(Peer& p) {
  // On the watch, numbered after every frame we sent on either path: the
  // receiver retires the connection once it has handed out all of them. No
  // fabric message leaves a closing endpoint (shm must not be handed one to
  // an endpoint of this process that is closing too).
  if (p.watch == Watch::kNoConn || p.state == Peer::State::kConnecting) return;
  // A frame prepared but never posted gives its number back: no gap before the bye.
  if (SendOp* head = p.queue.front(); head && head->prepared && head->posted == 0) --p.tx_seq;
  WirePrefix bye{WireType::kBye, 0, 0, p.tx_seq++, 0};
  const std::span<const std::byte> parts[] = {
      {reinterpret_cast<const std::byte*>(&bye), sizeof bye}};
  (void)watch_->write(p.watch, parts);  // if it cannot go, the end of file says the same
}

// ---- the watch ----------------------------------------------------------------

void OfiEndpoint::check_watch(EventSink& sink) {
  // Events behind a hello that found no room last time come first.
  while (!watch_backlog_.empty() && sink.has_room()) {
    Watch::Event e = std::move(watch_backlog_.front());
    watch_backlog_.pop_front();
    std::size_t before = watch_backlog_.size();
    on_watch(e, sink);
    if (watch_backlog_.size() > before) {
      // Still no room for it: back to the front, in order.
      watch_backlog_.push_front(std::move(watch_backlog_.back()));
      watch_backlog_.pop_back();
      return;
    }
  }
  if (!watch_backlog_.empty()) return;
  int n = ::epoll_wait(epoll_.get(), epoll_events_.data(), static_cast<int>(epoll_events_.size()), 0);
  if (n <= 0) return;
  watch_events_.clear();
  for (int i = 0; i < n; ++i) {
    std::uint64_t tag = epoll_events_[i].data.u64;
    // The wake fd was read at the start of poll(); the completion queue's fd
    // is served by reading the queue.
    if (tag >= Watch::kTagBase - 1) watch_->handle(tag, epoll_events_[i].events, watch_events_);
  }
  for (Watch::Event& e : watch_events_) {
    // Behind a hello that waits for room, everything waits, in order.
    if (!watch_backlog_.empty())
      watch_backlog_.push_back(std::move(e));
    else
      on_watch(e, sink);
  }
}

void OfiEndpoint::on_watch(Watch::Event& e, EventSink& sink) {
  if (watch_owner_.size() <= e.conn) watch_owner_.resize(e.conn + 1, kNoPeer);
  const PeerId owner = watch_owner_[e.conn];
  Peer* p = live(owner);
  switch (e.kind) {
    case Watch::Event::Kind::kAccepted:
      return;  // its hello makes the peer
    case Watch::Event::Kind::kConnected:
      if (p != nullptr && p->state == Peer::State::kConnecting) {
        // The peer's process listens: the hello is on its way; small frames may follow it.
        p->state = Peer::State::kGreeting;
        drive(*p, sink);
      }
      return;
    case Watch::Event::Kind::kClosed:
      watch_owner_[e.conn] = kNoPeer;
      if (p != nullptr) {
        p->watch = Watch::kNoConn;
        // Nothing can have come from a peer we never reached: report at once.
        mark_gone(*p, peer_status(*p, Errc::kPeerLost, e.why.message()),
                  p->state == Peer::State::kConnecting);
      }
      return;
    case Watch::Event::Kind::kRecord:
      break;
  }
  auto d = decode(e.record.data(), e.record.size());
  if (!d.is_ok() || (p == nullptr) != (d->prefix.type == WireType::kHello)) {
    // Only a hello opens a watch, and only once; a broken peer loses its connection.
    COHORT_LOG_WARN(kLog) << "ofi watch: bad record"
                          << (p ? " from " + p->remote : std::string()) << ": "
                          << (d.is_ok() ? "out of place" : d.status().message());
    if (p != nullptr)
      mark_gone(*p, peer_status(*p, Errc::kProtocolError, "bad record on its watch"), true);
    else
      watch_->close(e.conn);
    return;
  }
  if (d->prefix.type == WireType::kHello) {
    if (!sink.has_room()) {
      watch_backlog_.push_back(std::move(e));  // kPeerAccepted needs a slot: next poll
      return;
    }
    return on_hello(e, *d, sink);
  }
  if (d->prefix.type == WireType::kWelcome) return on_welcome(*p, *d, sink);
  if (d->prefix.type != WireType::kBye && (d->prefix.type != WireType::kEager || p->outgoing)) {
    // Only the connector sends frames on the watch, and only small ones; either side a bye.
    mark_gone(*p, peer_status(*p, Errc::kProtocolError, "unexpected record on its watch"), true);
    return;
  }
  arrive(*p, Parked{d->prefix.seq, nullptr, 0, std::move(e.record)}, sink);
}

void OfiEndpoint::on_hello(Watch::Event& e, const Decoded& d, EventSink& sink) {
  auto a = parse_address(d.address);
  if (!a.is_ok() || d.hello.target_nonce != nonce_) {
    COHORT_LOG_WARN(kLog) << "ofi hello dropped: "
                          << (a.is_ok() ? "it was meant for an earlier endpoint at this address"
                                        : a.status().message());
    watch_->close(e.conn);
    return;
  }
  Peer& p = add_peer(false);
  p.remote = std::string(d.address);
  p.remote_id = d.hello.peer;
  p.remote_nonce = d.hello.nonce;
  p.remote_eager = static_cast<std::size_t>(d.hello.eager_limit);
  p.state = Peer::State::kOpen;
  p.visible = true;
  p.watch = e.conn;
  watch_owner_[e.conn] = p.id;
  if (a->pid == static_cast<std::uint32_t>(::getpid()) && a->host == host_) {
    p.local_alive = LocalEndpoints::find(a->name);
    if (!p.local_alive) mark_gone(p, peer_status(p, Errc::kPeerLost, "its endpoint closed"), false);
  }
  if (Status s = insert_address(p, a->name); !s.is_ok())
    mark_gone(p, peer_status(p, Errc::kPeerLost, s.message()), true);
  if (Status s = reserve_buffers(); !s.is_ok())
    mark_gone(p, peer_status(p, Errc::kPeerLost, s.message()), true);

  Event& ev = sink.next();
  ev.kind = Event::Kind::kPeerAccepted;
  ev.peer = p.id;
  ev.op = 0;
  ev.status = Status();
  ev.header = {};
  ev.payload = d.hello_bytes;
  ev.payload_size = d.hello_bytes.size();
  handed_records_.push_back(std::move(e.record));  // the hello bytes live until the next poll
  COHORT_LOG_DEBUG(kLog) << "ofi " << std::hex << nonce_ << std::dec << " peer " << p.id
                         << ": accepted " << p.remote;

  WirePrefix prefix{WireType::kWelcome, 0, 0, 0, sizeof(WireWelcome)};
  WireWelcome w{nonce_, caps_.max_inline, p.id, 0};
  const std::span<const std::byte> parts[] = {
      {reinterpret_cast<const std::byte*>(&prefix), sizeof prefix},
      {reinterpret_cast<const std::byte*>(&w), sizeof w}};
  if (Status s = watch_->write(p.watch, parts); !s.is_ok())
    mark_gone(p, peer_status(p, Errc::kPeerLost, s.message()), true);
}

void OfiEndpoint::on_welcome(Peer& p, const Decoded& d, EventSink& sink) {
  if (!p.outgoing || p.open() || d.welcome.nonce != p.remote_nonce) {
    mark_gone(p, peer_status(p, Errc::kProtocolError, "unexpected welcome"), true);
    return;
  }
  p.remote_id = d.welcome.peer;
  p.remote_eager = static_cast<std::size_t>(d.welcome.eager_limit);
  p.state = Peer::State::kOpen;
  COHORT_LOG_DEBUG(kLog) << "ofi " << std::hex << nonce_ << std::dec << " peer " << p.id
                         << ": open (remote id " << p.remote_id << ")";
  drive(p, sink);  // what waited for the fabric
}

}  // namespace cohort::transport::ofi
