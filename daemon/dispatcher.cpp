#include "daemon/dispatcher.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "daemon/cluster.hpp"
#include "daemon/daemon.hpp"
#include "daemon/ids.hpp"

namespace cohort::daemon {
namespace {

/// Compare secrets in time that does not depend on where they differ.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;  // the length is no secret: always kCookieBytes
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

constexpr std::size_t kMaxProgramName = 4096;
constexpr std::size_t kMaxAddresses = 64;
constexpr std::size_t kMaxAddressBytes = 64 * 1024;
// Transport choices: bounded per task (a task with more peers keeps its
// first ones listed) and per reply.
constexpr std::size_t kMaxChoicesPerTask = 4096;
constexpr std::size_t kMaxChoiceText = 256;
constexpr std::size_t kMaxChoicesPerReply = 65536;

}  // namespace

template <class M>
void Dispatcher::run(ClientConn& c, const proto::FrameView& f,
                     void (Dispatcher::*handler)(ClientConn&, M&)) {
  M m;
  Status s = proto::decode(f.body, m);
  if (!s.is_ok()) return d_.conns().close_later(c, s.message(), true);
  (this->*handler)(c, m);
}

void Dispatcher::on_frame(ClientConn& c, const proto::FrameView& f) {
  using proto::MsgType;
  std::string name(proto::msg_type_name(f.type));
  if (f.type == MsgType::kHello) {
    if (c.enrolled()) return d_.conns().close_later(c, "it sent a second Hello", true);
    return run(c, f, &Dispatcher::on_hello);
  }
  if (!c.enrolled()) return d_.conns().close_later(c, "it sent " + name + " before Hello", true);
  // Host administration (AddHosts, RemoveHosts) and the daemon-to-daemon
  // messages, which a client must never send, belong to the cluster.
  if (static_cast<std::uint16_t>(f.type) >= 100) return d_.cluster().on_client_frame(c, f);
  switch (f.type) {
    case MsgType::kBye:
      return run(c, f, &Dispatcher::on_bye);
    case MsgType::kPublish:
      return run(c, f, &Dispatcher::on_publish);
    case MsgType::kResolve:
      return run(c, f, &Dispatcher::on_resolve);
    case MsgType::kSpawn:
      return run(c, f, &Dispatcher::on_spawn);
    case MsgType::kNotify:
      return run(c, f, &Dispatcher::on_notify);
    case MsgType::kKill:
      return run(c, f, &Dispatcher::on_kill);
    case MsgType::kHalt:
      return run(c, f, &Dispatcher::on_halt);
    case MsgType::kListTasks:
      return run(c, f, &Dispatcher::on_list_tasks);
    case MsgType::kListHosts:
      return run(c, f, &Dispatcher::on_list_hosts);
    case MsgType::kJobTids:
      return run(c, f, &Dispatcher::on_job_tids);
    case MsgType::kTransportChoice:
      return run(c, f, &Dispatcher::on_transport_choice);
    case MsgType::kListTransports:
      return run(c, f, &Dispatcher::on_list_transports);
    case MsgType::kHello:
    case MsgType::kWelcome:
    case MsgType::kAck:
    case MsgType::kResolveReply:
    case MsgType::kSpawnReply:
    case MsgType::kOutput:
    case MsgType::kNotifyEvent:
    case MsgType::kTaskList:
    case MsgType::kHostList:
    case MsgType::kJobTidsReply:
    case MsgType::kTransportList:
    default:
      break;
  }
  d_.conns().close_later(c, "it sent " + name + ", which only the daemon sends", true);
}

// ---- enrolment ----------------------------------------------------------------

void Dispatcher::welcome_error(ClientConn& c, Errc code, const std::string& why) {
  proto::Welcome w;
  w.status = proto::to_wire(code, why);
  d_.conns().send(c, w);
  d_.conns().close_later(c, why, true);
}

void Dispatcher::on_hello(ClientConn& c, proto::Hello& m) {
  if (c.peer_uid() != ::getuid())
    return welcome_error(c, Errc::kAuthFailed,
                         "uid " + std::to_string(c.peer_uid()) + " does not own this VM");
  if (!same_secret(m.cookie, d_.cookie()))
    return welcome_error(c, Errc::kAuthFailed,
                         "wrong cookie (a stale COHORT_DIR, or the VM was restarted)");
  if (m.version != 1)
    return welcome_error(
        c, Errc::kUnsupported,
        "protocol version " + std::to_string(m.version) + " is not supported (1 is)");
  if (d_.halting()) return welcome_error(c, Errc::kVmHalted, "the VM is halting");

  TaskTable& tasks = d_.tasks();
  Task* t = nullptr;
  if (m.claimed_tid != kNoTid) {
    t = tasks.find(m.claimed_tid);
    std::string who = "tid " + tid_name(m.claimed_tid);
    if (!t || !t->spawned)
      return welcome_error(c, Errc::kInvalidArgument, who + " was not spawned by this daemon");
    // The spawned process itself, or a process of its group (a shell or a
    // tool such as valgrind that runs the real program as its child).
    if (t->pid != c.peer_pid() && ::getpgid(c.peer_pid()) != t->pid)
      return welcome_error(c, Errc::kInvalidArgument,
                           who + " belongs to pid " + std::to_string(t->pid) + ", not to pid " +
                               std::to_string(c.peer_pid()));
    if (t->conn != 0) return welcome_error(c, Errc::kInvalidArgument, who + " is already enrolled");
    t->state = proto::TaskState::kRunning;
    t->conn = c.id();
    c.enroll(t->tid, false);
  } else {
    auto tid = tasks.allocate_tid();
    if (!tid.is_ok()) return welcome_error(c, tid.status().code(), tid.status().message());
    Task n;
    n.tid = *tid;
    n.job = tasks.add_job({*tid});
    n.pid = c.peer_pid();
    n.program = m.program.substr(0, kMaxProgramName);
    n.state = proto::TaskState::kRunning;
    n.is_tool = m.is_tool;
    n.conn = c.id();
    t = &tasks.add(std::move(n));
    c.enroll(t->tid, t->is_tool);
  }
  proto::Welcome w;
  w.tid = t->tid;
  w.parent = t->parent;
  w.job = t->job;
  w.rank = t->rank;
  w.job_size = t->job_size;
  w.host = d_.hosts().local_index();
  w.host_name = d_.hosts().local_name();
  w.vm_name = d_.vm_name();
  d_.conns().send(c, w);
  COHORT_LOG_DEBUG("daemon.conn") << "enrolled " << c.describe() << " (" << t->program << ")";
}

void Dispatcher::on_bye(ClientConn& c, proto::Bye& m) {
  c.set_bye(m.exit_code);
  d_.conns().close_later(c, "it said goodbye", false);
}

// ---- name service -------------------------------------------------------------

void Dispatcher::on_publish(ClientConn& c, proto::Publish& m) {
  proto::Ack ack;
  ack.req = m.req;
  std::size_t bytes = 0;
  for (const auto& a : m.addresses) bytes += a.transport.size() + a.address.size();
  if (m.addresses.size() > kMaxAddresses || bytes > kMaxAddressBytes) {
    ack.status = proto::to_wire(Errc::kInvalidArgument,
                      "at most " + std::to_string(kMaxAddresses) + " addresses of " +
                          std::to_string(kMaxAddressBytes) + " bytes in all may be published");
  } else {
    d_.names().publish(c.tid(), std::move(m.addresses));
  }
  d_.conns().send(c, ack);
}

void Dispatcher::on_resolve(ClientConn& c, proto::Resolve& m) {
  if (c.watches() >= kMaxWatchesPerConn)
    return d_.conns().close_later(c, "it holds too many watches", true);
  if (tid::host_of(m.tid) != d_.hosts().local_index()) {
    // Another host's task: its daemon answers (and says when it exits). A
    // host that is not in the VM gets an answer at once and no watch.
    bool known = d_.cluster().host_known(tid::host_of(m.tid));
    if (known) d_.notifier().watch_peer(c, m.tid);
    d_.cluster().resolve(c, m.req, m.tid);
    if (known) d_.cluster().watch_remote({m.tid});
    return;
  }
  auto outcome = d_.names().resolve(c, m.req, m.tid);
  if (outcome != NameService::Outcome::kNoSuchTask) d_.notifier().watch_peer(c, m.tid);
}

// ---- tasks --------------------------------------------------------------------

void Dispatcher::on_spawn(ClientConn& c, proto::Spawn& m) {
  proto::SpawnReply r;
  r.req = m.req;
  // Placed on other hosts (or several): the cluster runs it and replies.
  if (d_.cluster().spawn(c, m)) return;
  Status s = d_.halting() ? Status(Errc::kVmHalted, "the VM is halting") : d_.spawner().check(m);
  if (s.is_ok() && !m.host.empty() && !d_.hosts().is_local(m.host))
    s = Status(Errc::kNoSuchHost,
               "host '" + m.host + "' is not in the VM (it has " + d_.hosts().local_name() + ")");
  if (!s.is_ok()) {
    r.status = proto::to_wire(s);
    return d_.conns().send(c, r);
  }
  auto path = d_.spawner().find_program(m);
  if (!path.is_ok()) {
    // The request was fine; no instance can start. Each outcome says why.
    COHORT_LOG_INFO("daemon.spawn")
        << "spawn for " << c.describe() << ": " << path.status().message();
    proto::SpawnOutcome failed;
    failed.status = proto::to_wire(path.status());
    r.tasks.assign(static_cast<std::size_t>(m.count), failed);
    return d_.conns().send(c, r);
  }

  // Every tid first, so that each task can be told its whole job.
  TaskTable& tasks = d_.tasks();
  std::vector<Tid> tids;
  for (std::int32_t i = 0; i < m.count; ++i) {
    auto t = tasks.allocate_tid();
    if (!t.is_ok()) {
      r.status = proto::to_wire(t.status());
      return d_.conns().send(c, r);
    }
    tids.push_back(*t);
  }
  r.job = tasks.add_job(tids);
  const std::vector<std::string> env = d_.spawner().base_env(m);
  const ConnId output_to = (m.flags & proto::kSpawnForwardOutput) ? c.id() : 0;
  const std::vector<Binding> binds = plan_spawn(d_.binder(), m.bind_to, tids.size(),
                                                tasks.child_count(), c.describe());
  std::size_t started = 0;
  for (std::int32_t rank = 0; rank < m.count; ++rank) {
    TaskIdentity id{tids[static_cast<std::size_t>(rank)], c.tid(), r.job, rank, m.count};
    proto::SpawnOutcome o;
    const Binding& bind = binds[static_cast<std::size_t>(rank)];
    auto proc = d_.spawner().start(m, *path, env, id, &bind);
    if (!proc.is_ok()) {
      o.status = proto::to_wire(proc.status());
      tasks.set_job_rank(r.job, rank, kNoTid);
      r.tasks.push_back(std::move(o));
      continue;
    }
    Task t;
    t.tid = id.tid;
    t.parent = id.parent;
    t.job = id.job;
    t.rank = rank;
    t.job_size = m.count;
    t.pid = proc->pid;
    t.program = m.program;
    t.spawned = true;
    tasks.add(std::move(t));
    if (proc->bound) d_.binder().assign(id.tid, bind);
    Status fwd = d_.output().add(id.tid, output_to, std::move(proc->out), std::move(proc->err));
    if (!fwd.is_ok()) {  // the task runs on; its output is lost
      COHORT_LOG_ERROR("daemon.output")
          << "cannot read the output of " << tid_name(id.tid) << ": " << fwd.to_string();
    }
    // Registered before the reply goes out and before the loop can reap the
    // task, so not even an instant exit is missed.
    if (m.exit_tag != proto::kNoTag) d_.notifier().watch_exit(c, id.tid, m.exit_tag);
    o.tid = id.tid;
    r.tasks.push_back(std::move(o));
    ++started;
  }
  tasks.seal_job(r.job);
  COHORT_LOG_INFO("daemon.spawn") << "started " << started << " of " << m.count << " x " << *path
                                  << " as job " << r.job << " for " << c.describe();
  for (const auto& o : r.tasks)
    if (o.tid == kNoTid) {
      COHORT_LOG_INFO("daemon.spawn") << "job " << r.job << ": " << o.status.message;
      break;
    }
  d_.conns().send(c, r);
}

// ---- notifications ------------------------------------------------------------

void Dispatcher::on_notify(ClientConn& c, proto::Notify& m) {
  proto::Ack ack;
  ack.req = m.req;
  switch (m.kind) {
    case proto::NotifyKind::kTaskExit: {
      if (c.watches() + m.tids.size() > kMaxWatchesPerConn)
        return d_.conns().close_later(c, "it holds too many watches", true);
      // Tids already gone are reported before the Ack, so a client that has
      // its Ack holds every event the request produced at once.
      std::vector<Tid> remote;
      for (Tid t : m.tids) {
        if (tid::host_of(t) != d_.hosts().local_index()) {
          d_.notifier().watch_exit(c, t, m.tag);  // its daemon reports the exit
          remote.push_back(t);
          continue;
        }
        if (d_.tasks().find(t)) {
          d_.notifier().watch_exit(c, t, m.tag);
          continue;
        }
        const ExitRecord* rec = d_.tasks().exit_record(t);
        d_.notifier().send_exit_now(c, t, m.tag, rec ? *rec : ExitRecord{-1, 0});
      }
      if (!remote.empty()) d_.cluster().watch_remote(remote);
      break;
    }
    case proto::NotifyKind::kHostAdd:
    case proto::NotifyKind::kHostDelete:
      if (c.watches() >= kMaxWatchesPerConn)
        return d_.conns().close_later(c, "it holds too many watches", true);
      d_.notifier().watch_hosts(c, m.kind, m.tag);
      break;
    default:
      ack.status = proto::to_wire(Errc::kInvalidArgument,
                        "notify kind " + std::to_string(static_cast<int>(m.kind)) +
                            " cannot be requested (task exit, host add and host delete can)");
  }
  d_.conns().send(c, ack);
}

// ---- control ------------------------------------------------------------------

void Dispatcher::on_kill(ClientConn& c, proto::Kill& m) {
  proto::Ack ack;
  ack.req = m.req;
  Task* t = d_.tasks().find(m.tid);
  if (m.signal >= 0 && m.signal <= SIGRTMAX && tid::host_of(m.tid) != d_.hosts().local_index())
    return d_.cluster().kill(c, m.req, m.tid, m.signal);
  if (m.signal < 0 || m.signal > SIGRTMAX) {
    ack.status =
        proto::to_wire(Errc::kInvalidArgument, "signal " + std::to_string(m.signal) + " is not valid");
  } else if (!t) {
    ack.status = proto::to_wire(Errc::kNoSuchTask, d_.names().why_not(m.tid));
  } else {
    // A spawned task leads its own process group and the signal reaches its
    // helpers too; a hand-started one may share its group with a shell, so
    // only the process itself is signalled.
    int rc = t->spawned ? ::kill(-t->pid, m.signal) : -1;
    if (rc != 0) rc = ::kill(t->pid, m.signal);
    if (rc != 0)
      ack.status = proto::to_wire(
          errno_status(errno == ESRCH ? Errc::kNoSuchTask : Errc::kPermissionDenied,
                       "kill(" + tid_name(m.tid) + ", " + std::to_string(m.signal) + ")", errno));
    else
      COHORT_LOG_DEBUG("daemon.task")
          << c.describe() << " sent signal " << m.signal << " to " << tid_name(m.tid);
  }
  d_.conns().send(c, ack);
}

void Dispatcher::on_halt(ClientConn& c, proto::Halt& m) {
  proto::Ack ack;
  ack.req = m.req;
  d_.conns().send(c, ack);
  d_.begin_halt("requested by " + c.describe());
}

void Dispatcher::on_list_tasks(ClientConn& c, proto::ListTasks& m) {
  proto::TaskList r;
  r.req = m.req;
  for (const auto& [tid, t] : d_.tasks().live()) {
    if (t.is_tool) continue;
    proto::TaskInfo i;
    i.tid = t.tid;
    i.parent = t.parent;
    i.job = t.job;
    i.rank = t.rank;
    i.pid = t.pid;
    i.host = d_.hosts().local_index();
    i.program = t.program;
    i.state = t.state;
    r.tasks.push_back(std::move(i));
  }
  d_.cluster().list_tasks(c, std::move(r));  // adds the other hosts' tasks
}

void Dispatcher::on_list_hosts(ClientConn& c, proto::ListHosts& m) {
  proto::HostList r;
  r.req = m.req;
  r.hosts = d_.cluster().host_list(static_cast<std::uint32_t>(d_.tasks().task_count()));
  d_.conns().send(c, r);
}

void Dispatcher::on_job_tids(ClientConn& c, proto::JobTids& m) {
  proto::JobTidsReply r;
  r.req = m.req;
  if (const auto* tids = d_.tasks().job_tids(m.job))
    r.tids = *tids;
  else
    r.status =
        proto::to_wire(Errc::kNotFound, "job " + std::to_string(m.job) + " is unknown (or long finished)");
  d_.conns().send(c, r);
}

// ---- transport choices --------------------------------------------------------

void Dispatcher::on_transport_choice(ClientConn& c, proto::TransportChoice& m) {
  // One-way: nothing to answer. Text beyond any real transport name or
  // reason is a confused client, not worth the connection.
  Task* t = d_.tasks().find(c.tid());
  if (!t) return;
  if (!tid::valid(m.peer) || m.transport.size() > kMaxChoiceText ||
      m.reason.size() > kMaxChoiceText) {
    COHORT_LOG_WARN("daemon.conn") << "ignoring a malformed TransportChoice from " << c.describe();
    return;
  }
  for (auto& known : t->transports)
    if (known.peer == m.peer) {
      known = std::move(m);
      return;
    }
  if (t->transports.size() < kMaxChoicesPerTask) t->transports.push_back(std::move(m));
}

void Dispatcher::on_list_transports(ClientConn& c, proto::ListTransports& m) {
  proto::TransportList r;
  r.req = m.req;
  for (const auto& [tid, t] : d_.tasks().live()) {
    if (t.is_tool || (m.tid != kNoTid && tid != m.tid)) continue;
    for (const auto& ch : t.transports) {
      if (r.records.size() == kMaxChoicesPerReply) {
        r.truncated = true;
        break;
      }
      r.records.push_back({tid, ch.peer, ch.transport, ch.reason});
    }
  }
  d_.conns().send(c, r);
}

}  // namespace cohort::daemon
