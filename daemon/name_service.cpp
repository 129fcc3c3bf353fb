#include "daemon/name_service.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

void NameService::reply(ConnId conn, std::uint32_t req, Tid t,
                        const std::vector<proto::AddressEntry>* addrs) {
  proto::ResolveReply r;
  r.req = req;
  if (addrs) {
    r.host = tid::host_of(t);
    r.addresses = *addrs;
  } else {
    r.status.code = static_cast<std::uint16_t>(Errc::kNoSuchTask);
    r.status.message = why_not(t);
  }
  conns_.send(conn, r);
}

void NameService::publish(Tid t, std::vector<proto::AddressEntry> addresses) {
  auto& stored = addresses_[t];
  stored = std::move(addresses);
  if (settled_hook_) settled_hook_(t);
  auto it = pending_.find(t);
  if (it == pending_.end()) return;
  for (const Pending& p : it->second) {
    if (ClientConn* c = conns_.find(p.conn)) --c->pending_resolves();
    reply(p.conn, p.req, t, &stored);
  }
  COHORT_LOG_DEBUG("daemon.names")
      << "answered " << it->second.size() << " deferred resolve(s) of " << tid_name(t);
  pending_.erase(it);
}

NameService::Outcome NameService::resolve(ClientConn& asker, std::uint32_t req, Tid t) {
  if (auto it = addresses_.find(t); it != addresses_.end()) {
    reply(asker.id(), req, t, &it->second);
    return Outcome::kAnswered;
  }
  auto live = tasks_.live().find(t);
  if (live == tasks_.live().end()) {
    reply(asker.id(), req, t, nullptr);
    return Outcome::kNoSuchTask;
  }
  if (live->second.is_tool) {
    // The `cohort` command never publishes: waiting for it would hang the
    // asker (a task sending to the `cohort run` that spawned it).
    proto::ResolveReply r;
    r.req = req;
    r.status.code = static_cast<std::uint16_t>(Errc::kNoSuchTask);
    r.status.message = "task " + tid_name(t) + " is the cohort command, which takes no messages";
    conns_.send(asker, r);
    return Outcome::kNoSuchTask;
  }
  if (asker.pending_resolves() >= kMaxPendingResolves) {
    conns_.close_later(
        asker, "over " + std::to_string(kMaxPendingResolves) + " deferred resolves outstanding",
        true);
    return Outcome::kNoSuchTask;
  }
  ++asker.pending_resolves();
  pending_[t].push_back({asker.id(), req});
  COHORT_LOG_DEBUG("daemon.names")
      << "resolve of " << tid_name(t) << " by " << asker.describe() << " waits until it publishes";
  return Outcome::kDeferred;
}

void NameService::task_exited(Tid t) {
  addresses_.erase(t);
  if (settled_hook_) settled_hook_(t);
  auto it = pending_.find(t);
  if (it == pending_.end()) return;
  for (const Pending& p : it->second) {
    if (ClientConn* c = conns_.find(p.conn)) --c->pending_resolves();
    reply(p.conn, p.req, t, nullptr);
  }
  pending_.erase(it);
}

void NameService::conn_closed(ClientConn& c) {
  // A spawned task that left keeps its addresses until it is reaped; a
  // hand-started one exits with its connection (task_exited).
  if (c.pending_resolves() == 0) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::erase_if(it->second, [&](const Pending& p) { return p.conn == c.id(); });
    it = it->second.empty() ? pending_.erase(it) : std::next(it);
  }
}

std::string NameService::why_not(Tid t) const {
  std::string name = "task " + tid_name(t);
  if (!tid::valid(t) || tid::is_daemon(t)) return name + " is not a task id";
  if (tid::host_of(t) != tasks_.host())
    return name + " is on host " + std::to_string(tid::host_of(t)) + ", which is not in the VM";
  if (tasks_.ever_existed(t)) return name + " has exited";
  return name + " never existed";
}

}  // namespace cohort::daemon
