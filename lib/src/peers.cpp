#include "lib/src/peers.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/endian.hpp"
#include "base/log.hpp"
#include "proto/auth.hpp"
#include "lib/src/daemon_link.hpp"

namespace cohort::lib {
namespace {

constexpr const char* kLog = "lib.peers";
// Hello bytes: magic, u32 tid (little-endian), u16 token length, the token
// (HMAC of the tid under the VM's cookie, proto/auth.hpp).
constexpr char kHelloMagic[4] = {'C', 'H', 'T', '1'};
constexpr std::size_t kHelloHead = 10;
constexpr std::size_t kHelloSize = kHelloHead + auth::kMacBytes;
// How long a receive from a dead peer waits for the transport to report its
// connections down before giving up on them.
constexpr auto kRecvGrace = std::chrono::seconds(2);

}  // namespace

std::string tid_name(Tid t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%x", static_cast<unsigned>(t));
  return buf;
}

std::string Peers::hello_bytes(Tid self, std::string_view cookie) {
  std::string h(kHelloSize, '\0');
  std::memcpy(h.data(), kHelloMagic, 4);
  store_le<std::uint32_t>(h.data() + 4, static_cast<std::uint32_t>(self));
  store_le<std::uint16_t>(h.data() + 8, static_cast<std::uint16_t>(auth::kMacBytes));
  auth::Mac token = auth::task_token(cookie, self);
  std::memcpy(h.data() + kHelloHead, token.data(), token.size());
  return h;
}

Tid Peers::tid_from_hello(std::span<const std::byte> hello, std::string_view cookie) {
  if (hello.size() != kHelloSize || std::memcmp(hello.data(), kHelloMagic, 4) != 0) return kNoTid;
  auto t = static_cast<Tid>(load_le<std::uint32_t>(hello.data() + 4));
  if (!tid::valid(t) || load_le<std::uint16_t>(hello.data() + 8) != auth::kMacBytes) return kNoTid;
  std::span<const std::uint8_t> token(reinterpret_cast<const std::uint8_t*>(hello.data()) + kHelloHead,
                                      auth::kMacBytes);
  return auth::check_task_token(cookie, t, token) ? t : kNoTid;
}

Peer& Peers::get(Tid t) {
  if (Peer* p = find(t)) return *p;
  Peer& p = by_tid_[t];
  p.tid = t;
  return *(last_ = &p);
}

Status Peers::resolve(Peer& p, DaemonLink& link) {
  if (p.dead() || p.resolved || p.resolve_req != 0) return Status();
  proto::Resolve r;
  r.req = link.next_req();
  r.tid = p.tid;
  COHORT_RETURN_IF_ERROR(link.send(r));
  p.resolve_req = r.req;
  pending_.push_back(p.tid);
  return Status();
}

void Peers::collect_resolves(DaemonLink& link, std::uint64_t poll_count) {
  for (std::size_t i = 0; i < pending_.size();) {
    Peer& p = get(pending_[i]);
    auto reply = link.take_reply(p.resolve_req);
    if (!reply) {
      ++i;
      continue;
    }
    pending_[i] = pending_.back();
    pending_.pop_back();
    p.resolve_req = 0;
    auto rr = decode_reply<proto::ResolveReply>(*reply);
    if (!rr.is_ok()) {
      mark_dead(p, rr.take_status().with_context("resolving " + tid_name(p.tid)), poll_count);
      continue;
    }
    Status st = from_wire(rr->status);
    if (!st.is_ok()) {
      // kNoSuchTask means "never existed or already exited"; a task that
      // talked to us existed, and is simply gone.
      if (st.code() == Errc::kNoSuchTask && p.seen)
        st = Status(Errc::kPeerLost, "task " + tid_name(p.tid) + " has exited");
      else if (st.message() == errc_message(st.code()))
        st = Status(st.code(), "task " + tid_name(p.tid) + " does not exist or has exited");
      mark_dead(p, std::move(st), poll_count);
      continue;
    }
    p.resolved = true;
    p.host = rr->host;
    p.addresses = std::move(rr->addresses);
    COHORT_LOG_DEBUG(kLog) << tid_name(p.tid) << " resolved: " << p.addresses.size()
                           << " address(es) on host " << rr->host;
  }
}

void Peers::fail_resolves() {
  // Not dead: we just cannot learn where they are; sends report the lost daemon.
  for (Tid t : pending_) get(t).resolve_req = 0;
  pending_.clear();
}

Status Peers::connect(Peer& p) {
  // A transport whose connect() fails at once is passed over with that
  // reason; the rule then picks the next one (a failure later is kPeerDown).
  std::vector<std::string> failed;
  for (;;) {
    auto choice = choose_transport(eps_, p.addresses, policy_, {p.tid, p.host, host_}, failed);
    if (!choice.is_ok()) return choice.take_status();
    LocalEndpoint& le = eps_[choice->index];
    const proto::AddressEntry* a = address_for(p.addresses, le.transport->name());
    auto id = le.endpoint->connect(a->address);
    if (!id.is_ok()) {
      COHORT_LOG_WARN(kLog) << "connect to " << tid_name(p.tid) << " over " << a->transport << ": "
                            << id.status().to_string();
      failed.resize(eps_.size());
      failed[choice->index] = "connect failed: " + id.status().message();
      continue;
    }
    p.ep = static_cast<std::uint8_t>(choice->index);
    p.out = *id;
    p.reason = std::move(choice->reason);
    by_conn_[key(p.ep, p.out)] = p.tid;
    ++p.live;
    COHORT_LOG_DEBUG(kLog) << "sending to " << tid_name(p.tid) << " over " << a->transport << " ("
                           << p.reason << ")";
    report(p);
    return Status();
  }
}

void Peers::report(const Peer& p) {
  proto::TransportChoice c;
  c.peer = p.tid;
  c.transport = std::string(transport_name(p));
  c.reason = p.reason;
  reports_.push_back(std::move(c));
}

void Peers::on_accepted(std::uint8_t ep, transport::PeerId id, Tid t) {
  Peer& p = get(t);
  by_conn_[key(ep, id)] = t;
  ++p.live;
  p.seen = true;
  // Answer over the same connection: no second connection, no Resolve needed.
  // Only shm's reach says where the peer is; for the others, the peer chose.
  if (p.out == transport::kNoPeer && !p.dead()) {
    p.ep = ep;
    p.out = id;
    p.reason = eps_[ep].transport->name() == "shm" ? "same host (it connected to us)"
                                                   : "it connected to us";
    report(p);
  }
  COHORT_LOG_DEBUG(kLog) << tid_name(t) << " connected to us";
}

void Peers::on_down(std::uint8_t ep, transport::PeerId id, const Status& why,
                    std::uint64_t poll_count) {
  auto it = by_conn_.find(key(ep, id));
  if (it == by_conn_.end()) return;
  Peer& p = get(it->second);
  by_conn_.erase(it);
  if (last_conn_ == key(ep, id)) last_conn_tid_ = kNoTid;
  if (p.live > 0) --p.live;
  if (p.ep == ep && p.out == id) p.out = transport::kNoPeer;
  if (!p.dead())
    mark_dead(p,
              Status(Errc::kPeerLost,
                     "task " + tid_name(p.tid) + " has exited (" + why.to_string() + ")"),
              poll_count);
}

void Peers::on_exit(Tid t, std::uint64_t poll_count) {
  if (t == self_ || !tid::valid(t)) return;
  Peer& p = get(t);
  if (!p.dead())
    mark_dead(p, Status(Errc::kPeerLost, "task " + tid_name(t) + " has exited"), poll_count);
}

void Peers::mark_dead(Peer& p, Status why, std::uint64_t poll_count) {
  if (p.dead()) return;
  p.state = Peer::State::kDead;
  ++dead_count_;
  p.error = std::move(why);
  p.dead_poll = poll_count;
  p.dead_since = std::chrono::steady_clock::now();
  COHORT_LOG_DEBUG(kLog) << "peer dead: " << p.error.to_string();
}

bool Peers::gone_for_recv(Tid t, std::uint64_t poll_count) {
  Peer* p = find(t);
  if (!p || !p->dead()) return false;
  if (p->live == 0) return poll_count > p->dead_poll;
  return std::chrono::steady_clock::now() - p->dead_since > kRecvGrace;
}

Status Peers::error(const Peer& p) {
  if (!p.error.is_ok()) return p.error;
  return Status(Errc::kPeerLost, "task " + tid_name(p.tid) + " has exited");
}

std::string_view Peers::transport_name(const Peer& p) const {
  if (p.out == transport::kNoPeer || p.ep >= eps_.size()) return {};
  return eps_[p.ep].transport->name();
}

}  // namespace cohort::lib
