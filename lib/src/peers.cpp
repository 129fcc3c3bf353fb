#include "lib/src/peers.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/endian.hpp"
#include "base/log.hpp"
#include "lib/src/daemon_link.hpp"

namespace cohort::lib {
namespace {

constexpr const char* kLog = "lib.peers";
// Hello bytes: magic, u32 tid (little-endian), u16 token length, token (none yet).
constexpr char kHelloMagic[4] = {'C', 'H', 'T', '1'};
constexpr std::size_t kHelloSize = 10;
// How long a receive from a dead peer waits for the transport to report its
// connections down before giving up on them.
constexpr auto kRecvGrace = std::chrono::seconds(2);

}  // namespace

std::string tid_name(Tid t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%x", static_cast<unsigned>(t));
  return buf;
}

std::string Peers::hello_bytes(Tid self) {
  std::string h(kHelloSize, '\0');
  std::memcpy(h.data(), kHelloMagic, 4);
  store_le<std::uint32_t>(h.data() + 4, static_cast<std::uint32_t>(self));
  store_le<std::uint16_t>(h.data() + 8, 0);
  return h;
}

Tid Peers::tid_from_hello(std::span<const std::byte> hello) {
  if (hello.size() < kHelloSize || std::memcmp(hello.data(), kHelloMagic, 4) != 0) return kNoTid;
  auto t = static_cast<Tid>(load_le<std::uint32_t>(hello.data() + 4));
  return tid::valid(t) ? t : kNoTid;
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
  for (std::size_t i = 0; i < eps_.size(); ++i) {
    LocalEndpoint& le = eps_[i];
    for (const auto& a : p.addresses) {
      if (a.transport != le.transport->name()) continue;
      if (!le.transport->reaches(le.address, a.address)) continue;
      auto id = le.endpoint->connect(a.address);
      if (!id.is_ok()) {
        COHORT_LOG_WARN(kLog) << "connect to " << tid_name(p.tid) << " over " << a.transport << ": "
                              << id.status().to_string();
        continue;
      }
      p.ep = static_cast<std::uint8_t>(i);
      p.out = *id;
      by_conn_[key(p.ep, p.out)] = p.tid;
      ++p.live;
      COHORT_LOG_DEBUG(kLog) << "sending to " << tid_name(p.tid) << " over " << a.transport;
      return Status();
    }
  }
  std::string theirs, ours;
  for (const auto& a : p.addresses) theirs += (theirs.empty() ? "" : ",") + a.transport;
  for (const auto& le : eps_) ours += (ours.empty() ? "" : ",") + std::string(le.transport->name());
  return Status(Errc::kUnsupported, "no transport reaches task " + tid_name(p.tid) +
                                        ": it offers [" + theirs + "], this task has [" + ours +
                                        "]; check COHORT_TRANSPORTS on both sides");
}

void Peers::on_accepted(std::uint8_t ep, transport::PeerId id, Tid t) {
  Peer& p = get(t);
  by_conn_[key(ep, id)] = t;
  ++p.live;
  p.seen = true;
  // Answer over the same connection: no second connection, no Resolve needed.
  if (p.out == transport::kNoPeer && !p.dead()) {
    p.ep = ep;
    p.out = id;
  }
  COHORT_LOG_DEBUG(kLog) << tid_name(t) << " connected to us";
}

void Peers::on_down(std::uint8_t ep, transport::PeerId id, const Status& why,
                    std::uint64_t poll_count) {
  auto it = by_conn_.find(key(ep, id));
  if (it == by_conn_.end()) return;
  Peer& p = get(it->second);
  by_conn_.erase(it);
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
