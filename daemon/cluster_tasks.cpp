// Tasks across hosts: placement and two-phase spawn (tids first, so every task
// knows its whole job), output and exits sent home, and Resolve, Kill, Notify
// and ListTasks forwarded to the daemon that owns a tid (tid::host_of).
#include <signal.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "base/log.hpp"
#include "daemon/binding.hpp"
#include "daemon/cluster.hpp"
#include "daemon/daemon.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {

namespace {
constexpr const char* kLog = "daemon.spawn";

}  // namespace


proto::SpawnOutcome Cluster::start_local(const proto::Spawn& m, const std::string& path,
                                         const std::vector<std::string>& env,
                                         const TaskIdentity& id, ConnId output_to,
                                         const Binding& bind) {
  proto::SpawnOutcome o;
  auto proc = d_.spawner().start(m, path, env, id, &bind);
  if (!proc.is_ok()) {
    o.status = proto::to_wire(proc.status().code(), proc.status().message());
    return o;
  }
  Task t;
  t.tid = id.tid;
  t.parent = id.parent;
  t.job = id.job;
  t.rank = id.rank;
  t.job_size = id.job_size;
  t.pid = proc->pid;
  t.program = m.program;
  t.spawned = true;
  d_.tasks().add(std::move(t));
  if (proc->bound) d_.binder().assign(id.tid, bind);
  Status fwd = d_.output().add(id.tid, output_to, std::move(proc->out), std::move(proc->err));
  if (!fwd.is_ok())
    COHORT_LOG_ERROR("daemon.output") << "cannot read the output of " << tid_name(id.tid) << ": "
                                      << fwd.to_string();
  o.tid = id.tid;
  return o;
}

bool Cluster::spawn(ClientConn& c, proto::Spawn& m) {
  if (d_.halting() || m.count <= 0 || m.count > kMaxSpawnCount) return false;
  // Candidate hosts: those named (comma list), else every host.
  std::vector<std::uint32_t> cand;
  if (!m.host.empty()) {
    for (const std::string& n : split_addresses(m.host)) {
      std::uint32_t i = find_host(n);
      if (i == 0) return false;  // the dispatcher reports the unknown host
      if (std::find(cand.begin(), cand.end(), i) == cand.end()) cand.push_back(i);
    }
  } else if (m.map_by != 0) {
    for (const auto& [i, h] : hosts_) cand.push_back(i);
  } else {
    return false;  // no placement asked for: this host, as always
  }
  std::vector<std::uint32_t> place;
  auto slots = [&](std::uint32_t i) -> std::int32_t {
    if (m.per_host > 0) return m.per_host;
    if (m.map_by != 1) return 1;  // by host (the default for a host list): one per round
    auto it = hosts_.find(i);
    if (it == hosts_.end()) return 1;
    if (it->second.slots > 0) return static_cast<std::int32_t>(it->second.slots);  // hostfile
    return it->second.ncpus == 0 ? 1 : static_cast<std::int32_t>(it->second.ncpus);
  };
  while (static_cast<std::int32_t>(place.size()) < m.count)
    for (std::uint32_t i : cand)
      for (std::int32_t k = 0; k < slots(i) && static_cast<std::int32_t>(place.size()) < m.count; ++k)
        place.push_back(i);
  if (std::all_of(place.begin(), place.end(), [&](std::uint32_t i) { return i == self_; })) {
    m.host.clear();  // all here: the ordinary path
    return false;
  }
  if (!d_.spawner().check(m).is_ok()) return false;  // the dispatcher answers with the reason

  std::uint32_t op_id = next_id_++;
  auto op = std::make_unique<SpawnOp>();
  op->conn = c.id();
  op->parent = c.tid();
  op->m = m;
  op->host_of_rank = place;
  op->tids.assign(place.size(), kNoTid);
  op->outcomes.resize(place.size());
  std::map<std::uint32_t, std::int32_t> per;
  for (std::uint32_t i : place) ++per[i];
  for (std::size_t r = 0; r < place.size(); ++r)
    if (place[r] == self_) {
      auto t = d_.tasks().allocate_tid();
      if (t.is_ok()) op->tids[r] = *t;
    }
  for (auto [host, n] : per) {
    if (host == self_) continue;
    std::uint32_t id = next_id_++;
    proto::AllocTids a;
    a.id = id;
    a.count = n;
    if (!send_to(host, a)) continue;  // its ranks fail below
    pending_[id] = Pending{Pending::Kind::kSpawnAlloc, 0, 0, op_id, host, 0};
    ++op->open;
  }
  spawn_ops_[op_id] = std::move(op);
  if (spawn_ops_[op_id]->open == 0) start_phase(op_id);
  return true;
}

void Cluster::start_phase(std::uint32_t op_id) {
  SpawnOp& op = *spawn_ops_[op_id];
  op.job = d_.tasks().add_job(op.tids);
  std::map<std::uint32_t, std::vector<std::int32_t>> ranks;
  for (std::size_t r = 0; r < op.host_of_rank.size(); ++r) {
    if (op.tids[r] == kNoTid) {
      if (op.outcomes[r].status.code == 0)
        op.outcomes[r].status = proto::to_wire(Errc::kHostLost, "host " + std::to_string(op.host_of_rank[r]) +
                                                          " could not take the task");
      continue;
    }
    ranks[op.host_of_rank[r]].push_back(static_cast<std::int32_t>(r));
  }
  const std::int32_t size = static_cast<std::int32_t>(op.tids.size());
  for (auto& [host, rs] : ranks) {
    if (host == self_) {
      auto path = d_.spawner().find_program(op.m);
      std::vector<std::string> env = d_.spawner().base_env(op.m);
      ConnId out_to = (op.m.flags & proto::kSpawnForwardOutput) ? op.conn : 0;
      const std::vector<Binding> binds = plan_spawn(d_.binder(), op.m.bind_to, rs.size(),
                                                    d_.tasks().child_count(), tid_name(op.parent));
      for (std::size_t i = 0; i < rs.size(); ++i) {
        const std::int32_t r = rs[i];
        auto& o = op.outcomes[static_cast<std::size_t>(r)];
        if (!path.is_ok()) {
          o.status = proto::to_wire(path.status().code(), path.status().message());
          continue;
        }
        TaskIdentity id{op.tids[static_cast<std::size_t>(r)], op.parent, op.job, r, size};
        o = start_local(op.m, *path, env, id, out_to, binds[i]);
      }
      continue;
    }
    std::uint32_t id = next_id_++;
    proto::StartTasks st;
    st.id = id;
    st.parent = op.parent;
    st.job = op.job;
    st.job_tids = op.tids;
    st.ranks = rs;
    st.spawn = op.m;
    if (!send_to(host, st)) continue;
    pending_[id] = Pending{Pending::Kind::kSpawnStart, 0, 0, op_id, host, 0};
    ++op.open;
  }
  d_.tasks().seal_job(op.job);
  if (op.open == 0) finish_spawn(op_id);
}

void Cluster::finish_spawn(std::uint32_t op_id) {
  auto it = spawn_ops_.find(op_id);
  if (it == spawn_ops_.end()) return;
  SpawnOp& op = *it->second;
  proto::SpawnReply r;
  r.req = op.m.req;
  r.job = op.job;
  ClientConn* c = d_.conns().find(op.conn);
  std::size_t started = 0;
  std::vector<std::pair<Tid, ExitRecord>> replay;
  for (std::size_t k = 0; k < op.outcomes.size(); ++k) {
    auto& o = op.outcomes[k];
    if (o.tid == kNoTid && o.status.code == 0)
      o.status = proto::to_wire(Errc::kHostLost, "host " + std::to_string(op.host_of_rank[k]) + " was lost");
    if (o.tid != kNoTid) {
      ++started;
      if (c && op.m.exit_tag != proto::kNoTag) d_.notifier().watch_exit(*c, o.tid, op.m.exit_tag);
      // Tasks that ended while other hosts were still starting theirs: their
      // exits came before anybody watched them; report them now.
      std::optional<ExitRecord> early;
      if (tid::host_of(o.tid) == self_) {
        if (!d_.tasks().find(o.tid))
          if (const ExitRecord* rec = d_.tasks().exit_record(o.tid)) early = *rec;
      } else if (auto e = early_exits_.find(o.tid); e != early_exits_.end()) {
        early = e->second;
        early_exits_.erase(e);
      } else {
        watched_remote_.insert(o.tid);  // the owner reports its exit to us (StartTasks)
      }
      if (early) replay.emplace_back(o.tid, *early);
    } else {
      d_.tasks().set_job_rank(op.job, static_cast<std::int32_t>(k), kNoTid);
    }
    r.tasks.push_back(o);
  }
  COHORT_LOG_INFO(kLog) << "started " << started << " of " << op.outcomes.size() << " x "
                        << op.m.program << " as job " << op.job << " across hosts";
  if (c) d_.conns().send(*c, r);
  // After the reply: the spawner knows the tids before it hears of their ends.
  for (const auto& [t, rec] : replay) d_.notifier().task_exited(t, rec);
  spawn_ops_.erase(it);
  if (spawn_ops_.empty()) early_exits_.clear();
}

void Cluster::on_task_frame(PeerLink& l, const proto::FrameView& f) {
  using proto::MsgType;
  const std::uint32_t from = l.peer_index;
  auto decode = [&](auto& m) {
    Status s = proto::decode(f.body, m);
    if (!s.is_ok()) close_link(l, s.message(), true);
    return s.is_ok();
  };
  // Replies: find and retire the pending request.
  auto take = [&](std::uint32_t id) -> std::optional<Pending> {
    auto it = pending_.find(id);
    if (it == pending_.end()) return std::nullopt;
    Pending p = it->second;
    pending_.erase(it);
    return p;
  };
  switch (f.type) {
    case MsgType::kAllocTids: {
      proto::AllocTids m;
      if (!decode(m)) return;
      proto::AllocTidsReply r;
      r.id = m.id;
      for (std::int32_t i = 0; i < m.count && i < kMaxSpawnCount; ++i) {
        auto t = d_.tasks().allocate_tid();
        if (!t.is_ok()) {
          r.status = proto::to_wire(t.status().code(), t.status().message());
          break;
        }
        r.tids.push_back(*t);
      }
      return send(l, r);
    }
    case MsgType::kAllocTidsReply: {
      proto::AllocTidsReply m;
      if (!decode(m)) return;
      auto p = take(m.id);
      if (!p || !spawn_ops_.count(p->op)) return;
      SpawnOp& op = *spawn_ops_[p->op];
      std::size_t k = 0;
      for (std::size_t r = 0; r < op.host_of_rank.size() && k < m.tids.size(); ++r)
        if (op.host_of_rank[r] == p->host) op.tids[r] = m.tids[k++];
      if (--op.open == 0) start_phase(p->op);
      return;
    }
    case MsgType::kStartTasks: {
      proto::StartTasks m;
      if (!decode(m)) return;
      proto::StartTasksReply r;
      r.id = m.id;
      d_.tasks().add_job_as(m.job, m.job_tids);
      auto path = d_.spawner().find_program(m.spawn);
      std::vector<std::string> env = d_.spawner().base_env(m.spawn);
      ConnId out_to = (m.spawn.flags & proto::kSpawnForwardOutput) ? (kRemoteDest | from) : 0;
      // Bound like local spawns, over this host's cores.
      const std::vector<Binding> binds =
          plan_spawn(d_.binder(), m.spawn.bind_to, m.ranks.size(), d_.tasks().child_count(),
                     "a spawn from host " + std::to_string(from));
      std::size_t next_bind = 0;
      for (std::int32_t rank : m.ranks) {
        proto::SpawnOutcome o;
        if (rank < 0 || static_cast<std::size_t>(rank) >= m.job_tids.size()) {
          o.status = proto::to_wire(Errc::kInvalidArgument, "rank out of range");
        } else if (!path.is_ok()) {
          o.status = proto::to_wire(path.status().code(), path.status().message() + " (on host " +
                                                    std::to_string(self_) + ")");
        } else {
          TaskIdentity id{m.job_tids[static_cast<std::size_t>(rank)], m.parent, m.job, rank,
                          static_cast<std::int32_t>(m.job_tids.size())};
          o = start_local(m.spawn, *path, env, id, out_to, binds[next_bind++]);
          if (o.tid != kNoTid) remote_watchers_[o.tid].insert(from);
        }
        r.tasks.push_back(std::move(o));
      }
      d_.tasks().seal_job(m.job);
      return send(l, r);
    }
    case MsgType::kStartTasksReply: {
      proto::StartTasksReply m;
      if (!decode(m)) return;
      auto p = take(m.id);
      if (!p || !spawn_ops_.count(p->op)) return;
      SpawnOp& op = *spawn_ops_[p->op];
      std::size_t k = 0;
      for (std::size_t r = 0; r < op.host_of_rank.size() && k < m.tasks.size(); ++r)
        if (op.host_of_rank[r] == p->host && op.tids[r] != kNoTid) {
          op.outcomes[r] = m.tasks[k++];
          // Their output may come before the other hosts answer: route it now.
          if (op.outcomes[r].tid != kNoTid && (op.m.flags & proto::kSpawnForwardOutput))
            remote_output_[op.outcomes[r].tid] = op.conn;
        }
      if (--op.open == 0) finish_spawn(p->op);
      return;
    }
    case MsgType::kOutput: {
      proto::Output m;
      if (!decode(m)) return;
      if (auto it = remote_output_.find(m.tid); it != remote_output_.end())
        d_.conns().send(it->second, m);
      return;
    }
    case MsgType::kTaskExited: {
      proto::TaskExited m;
      if (!decode(m)) return;
      remote_output_.erase(m.tid);
      // A task of a spawn still waiting for other hosts: its watchers are
      // registered when the spawn completes (finish_spawn), which replays it.
      if (!watched_remote_.erase(m.tid) && !spawn_ops_.empty())
        early_exits_[m.tid] = ExitRecord{m.exit_code, m.signal};
      d_.notifier().task_exited(m.tid, ExitRecord{m.exit_code, m.signal});
      return;
    }
    case MsgType::kWatchTasks: {
      proto::WatchTasks m;
      if (!decode(m)) return;
      for (Tid t : m.tids) {
        if (d_.tasks().find(t)) {
          remote_watchers_[t].insert(from);
          continue;
        }
        const ExitRecord* rec = d_.tasks().exit_record(t);
        proto::TaskExited e;
        e.tid = t;
        e.exit_code = rec ? rec->exit_code : -1;
        e.signal = rec ? rec->signal : 0;
        send(l, e);
      }
      return;
    }
    case MsgType::kRemoteResolve: {
      proto::RemoteResolve m;
      if (!decode(m)) return;
      proto::RemoteResolveReply r;
      r.id = m.id;
      const Task* t = d_.tasks().find(m.tid);
      if (const auto* a = d_.names().addresses_of(m.tid)) {
        r.addresses = *a;
      } else if (t && !t->is_tool) {
        remote_resolves_[m.tid].push_back({from, m.id});  // answered when it publishes
        remote_watchers_[m.tid].insert(from);
        return;
      } else {
        r.status = proto::to_wire(Errc::kNoSuchTask, t ? "task " + tid_name(m.tid) + " is the cohort command"
                                             : d_.names().why_not(m.tid));
      }
      if (t) remote_watchers_[m.tid].insert(from);
      return send(l, r);
    }
    case MsgType::kRemoteResolveReply: {
      proto::RemoteResolveReply m;
      if (!decode(m)) return;
      auto p = take(m.id);
      if (!p) return;
      proto::ResolveReply r;
      r.req = p->req;
      r.status = m.status;
      r.host = p->host;
      r.addresses = std::move(m.addresses);
      d_.conns().send(p->conn, r);
      return;
    }
    case MsgType::kRemoteKill: {
      proto::RemoteKill m;
      if (!decode(m)) return;
      proto::RemoteAck r;
      r.id = m.id;
      Task* t = d_.tasks().find(m.tid);
      if (!t)
        r.status = proto::to_wire(Errc::kNoSuchTask, d_.names().why_not(m.tid));
      else if ((t->spawned ? ::kill(-t->pid, m.signal) : -1) != 0 && ::kill(t->pid, m.signal) != 0)
        r.status = proto::to_wire(Errc::kNoSuchTask, "kill(" + tid_name(m.tid) + ") failed");
      return send(l, r);
    }
    case MsgType::kRemoteAck: {
      proto::RemoteAck m;
      if (!decode(m)) return;
      auto p = take(m.id);
      if (!p) return;
      proto::Ack a;
      a.req = p->req;
      a.status = m.status;
      d_.conns().send(p->conn, a);
      return;
    }
    case MsgType::kRemoteListTasks: {
      proto::RemoteListTasks m;
      if (!decode(m)) return;
      proto::RemoteTaskList r;
      r.id = m.id;
      for (const auto& [tid, t] : d_.tasks().live()) {
        if (t.is_tool) continue;
        proto::TaskInfo i;
        i.tid = t.tid;
        i.parent = t.parent;
        i.job = t.job;
        i.rank = t.rank;
        i.pid = t.pid;
        i.host = self_;
        i.program = t.program;
        i.state = t.state;
        r.tasks.push_back(std::move(i));
      }
      return send(l, r);
    }
    case MsgType::kRemoteTaskList: {
      proto::RemoteTaskList m;
      if (!decode(m)) return;
      auto p = take(m.id);
      if (!p) return;
      auto it = list_ops_.find(p->op);
      if (it == list_ops_.end()) return;
      for (auto& t : m.tasks) it->second.list.tasks.push_back(std::move(t));
      if (--it->second.open == 0) {
        std::sort(it->second.list.tasks.begin(), it->second.list.tasks.end(),
                  [](const auto& a, const auto& b) { return a.tid < b.tid; });
        d_.conns().send(it->second.conn, it->second.list);
        list_ops_.erase(it);
      }
      return;
    }
    default:
      return close_link(l, "it sent " + std::string(proto::msg_type_name(f.type)) +
                               ", which daemons do not send each other", true);
  }
}

void Cluster::resolve(ClientConn& c, std::uint32_t req, Tid t) {
  std::uint32_t owner = tid::host_of(t);
  proto::RemoteResolve m;
  m.id = next_id_++;
  m.tid = t;
  if (!host_known(owner) || !send_to(owner, m)) {
    proto::ResolveReply r;
    r.req = req;
    r.status = proto::to_wire(Errc::kNoSuchTask, "task " + tid_name(t) + " is on host " +
                                           std::to_string(owner) + ", which is not in the VM");
    return d_.conns().send(c, r);
  }
  pending_[m.id] = Pending{Pending::Kind::kResolve, c.id(), req, 0, owner, t};
}

void Cluster::resolve_settled(Tid t) {
  auto it = remote_resolves_.find(t);
  if (it == remote_resolves_.end()) return;
  auto waiting = std::move(it->second);
  remote_resolves_.erase(it);
  for (auto [host, id] : waiting) {
    proto::RemoteResolveReply r;
    r.id = id;
    if (const auto* a = d_.names().addresses_of(t))
      r.addresses = *a;
    else
      r.status = proto::to_wire(Errc::kNoSuchTask, "task " + tid_name(t) + " has exited");
    send_to(host, r);
  }
}

void Cluster::kill(ClientConn& c, std::uint32_t req, Tid t, std::int32_t sig) {
  std::uint32_t owner = tid::host_of(t);
  proto::RemoteKill m;
  m.id = next_id_++;
  m.tid = t;
  m.signal = sig;
  if (!host_known(owner) || !send_to(owner, m)) {
    proto::Ack a;
    a.req = req;
    a.status = proto::to_wire(Errc::kNoSuchTask, "task " + tid_name(t) + " is on host " +
                                           std::to_string(owner) + ", which is not in the VM");
    return d_.conns().send(c, a);
  }
  pending_[m.id] = Pending{Pending::Kind::kKill, c.id(), req, 0, owner, t};
}

void Cluster::watch_remote(const std::vector<Tid>& tids) {
  proto::WatchTasks w;
  std::map<std::uint32_t, std::vector<Tid>> by_host;
  for (Tid t : tids) {
    std::uint32_t owner = tid::host_of(t);
    if (owner == self_) continue;
    if (!host_known(owner)) {
      d_.notifier().task_exited(t, ExitRecord{-1, 0});  // its host is gone
      continue;
    }
    if (watched_remote_.insert(t).second) by_host[owner].push_back(t);
  }
  for (auto& [h, ts] : by_host) {
    w.tids = ts;
    send_to(h, w);
  }
}

void Cluster::list_tasks(ClientConn& c, proto::TaskList local) {
  std::uint32_t op = next_id_++;
  ListOp lo;
  lo.conn = c.id();
  lo.list = std::move(local);
  for (const auto& [i, h] : hosts_) {
    if (i == self_) continue;
    proto::RemoteListTasks m;
    m.id = next_id_++;
    if (!send_to(i, m)) continue;
    pending_[m.id] = Pending{Pending::Kind::kList, c.id(), 0, op, i, 0};
    ++lo.open;
  }
  if (lo.open == 0) return d_.conns().send(c, lo.list);
  list_ops_[op] = std::move(lo);
}

void Cluster::task_exited(Tid t, const ExitRecord& rec) {
  auto it = remote_watchers_.find(t);
  if (it == remote_watchers_.end()) return;
  proto::TaskExited e;
  e.tid = t;
  e.exit_code = rec.exit_code;
  e.signal = rec.signal;
  for (std::uint32_t h : it->second) send_to(h, e);
  remote_watchers_.erase(it);
}

void Cluster::forward_output(std::uint32_t host, const proto::Output& o) {
  send_to(host, o);
}

void Cluster::fail_pending_for(std::uint32_t host) {
  std::vector<std::pair<std::uint32_t, Pending>> gone;
  for (const auto& [id, p] : pending_)
    if (p.host == host) gone.emplace_back(id, p);
  for (auto& [id, p] : gone) {
    pending_.erase(id);
    const std::string why = "host " + std::to_string(host) + " was lost";
    switch (p.kind) {
      case Pending::Kind::kResolve: {
        proto::ResolveReply r;
        r.req = p.req;
        r.status = proto::to_wire(Errc::kNoSuchTask, "task " + tid_name(p.tid) + " is gone: " + why);
        d_.conns().send(p.conn, r);
        break;
      }
      case Pending::Kind::kKill: {
        proto::Ack a;
        a.req = p.req;
        a.status = proto::to_wire(Errc::kNoSuchTask, why);
        d_.conns().send(p.conn, a);
        break;
      }
      case Pending::Kind::kList: {
        auto it = list_ops_.find(p.op);
        if (it != list_ops_.end() && --it->second.open == 0) {
          d_.conns().send(it->second.conn, it->second.list);
          list_ops_.erase(it);
        }
        break;
      }
      case Pending::Kind::kSpawnAlloc:
      case Pending::Kind::kSpawnStart: {
        auto it = spawn_ops_.find(p.op);
        if (it == spawn_ops_.end()) break;
        if (--it->second->open == 0) {
          if (p.kind == Pending::Kind::kSpawnAlloc)
            start_phase(p.op);
          else
            finish_spawn(p.op);
        }
        break;
      }
    }
  }
}

}  // namespace cohort::daemon
