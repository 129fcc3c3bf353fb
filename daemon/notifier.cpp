#include "daemon/notifier.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

proto::NotifyEvent Notifier::exit_event(Tid t, std::int32_t tag, const ExitRecord& rec) {
  proto::NotifyEvent ev;
  ev.kind = proto::NotifyKind::kTaskExit;
  ev.tag = tag;
  ev.subject = t;
  ev.exit_code = rec.exit_code;
  ev.signal = rec.signal;
  return ev;
}

void Notifier::watch_exit(ClientConn& c, Tid t, std::int32_t tag) {
  exit_watches_[t].push_back({c.id(), tag});
  by_conn_[c.id()].insert(t);
  ++c.watches();
}

void Notifier::watch_peer(ClientConn& c, Tid t) {
  if (peer_watches_[t].insert(c.id()).second) {
    by_conn_[c.id()].insert(t);
    ++c.watches();
  }
}

void Notifier::host_event(proto::NotifyKind kind, std::uint32_t index) {
  proto::NotifyEvent ev;
  ev.kind = kind;
  ev.subject = static_cast<std::int32_t>(index);
  for (const HostWatch& w : host_watches_) {
    if (w.kind != kind) continue;
    ev.tag = w.tag;
    conns_.send(w.conn, ev);
  }
}

std::vector<Tid> Notifier::watched_on_host(std::uint32_t index) const {
  std::vector<Tid> out;
  for (const auto& [t, w] : exit_watches_)
    if (tid::host_of(t) == index) out.push_back(t);
  for (const auto& [t, w] : peer_watches_)
    if (tid::host_of(t) == index && !exit_watches_.count(t)) out.push_back(t);
  return out;
}

void Notifier::watch_hosts(ClientConn& c, proto::NotifyKind kind, std::int32_t tag) {
  host_watches_.push_back({c.id(), kind, tag});
  ++c.watches();
}

void Notifier::send_exit_now(ClientConn& c, Tid t, std::int32_t tag, const ExitRecord& rec) {
  conns_.send(c, exit_event(t, tag, rec));
}

void Notifier::task_exited(Tid t, const ExitRecord& rec) {
  if (auto it = exit_watches_.find(t); it != exit_watches_.end()) {
    for (const ExitWatch& w : it->second) {
      if (conns_.send(w.conn, exit_event(t, w.tag, rec))) {
        COHORT_LOG_DEBUG("daemon.notify")
            << "task exit of " << tid_name(t) << " to connection " << w.conn;
      }
      if (auto b = by_conn_.find(w.conn); b != by_conn_.end()) b->second.erase(t);
    }
    exit_watches_.erase(it);
  }
  if (auto it = peer_watches_.find(t); it != peer_watches_.end()) {
    proto::NotifyEvent ev;
    ev.kind = proto::NotifyKind::kPeerExit;
    ev.subject = t;
    ev.exit_code = rec.exit_code;
    ev.signal = rec.signal;
    for (ConnId id : it->second) {
      conns_.send(id, ev);
      if (auto b = by_conn_.find(id); b != by_conn_.end()) b->second.erase(t);
    }
    peer_watches_.erase(it);
  }
}

void Notifier::vm_halting() {
  proto::NotifyEvent ev;
  ev.kind = proto::NotifyKind::kVmHalt;
  conns_.for_each_open([&](ClientConn& c) {
    if (c.enrolled()) conns_.send(c, ev);
  });
}

void Notifier::conn_closed(ConnId id) {
  std::erase_if(host_watches_, [id](const HostWatch& w) { return w.conn == id; });
  auto it = by_conn_.find(id);
  if (it == by_conn_.end()) return;
  for (Tid t : it->second) {
    if (auto e = exit_watches_.find(t); e != exit_watches_.end()) {
      std::erase_if(e->second, [id](const ExitWatch& w) { return w.conn == id; });
      if (e->second.empty()) exit_watches_.erase(e);
    }
    if (auto p = peer_watches_.find(t); p != peer_watches_.end()) {
      p->second.erase(id);
      if (p->second.empty()) peer_watches_.erase(p);
    }
  }
  by_conn_.erase(it);
}

}  // namespace cohort::daemon
