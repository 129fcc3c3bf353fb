// The blocking half of the public Session API: enrolment, identity, tasks,
// notifications and blocking point-to-point messages.
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "base/env.hpp"
#include "base/log.hpp"
#include "base/signals.hpp"
#include "lib/src/session_impl.hpp"

namespace cohort {

void raise(const Status& st) { throw Error(st.code(), st.message()); }

namespace {

constexpr const char* kLog = "lib.session";
constexpr std::uint32_t kUserContext = 0;
constexpr const char* kBindToEnv = "COHORT_BIND_TO";

std::string program_name() {
  std::string s;
  int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n > 0) s.assign(buf, ::strnlen(buf, static_cast<std::size_t>(n)));
  }
  return s;
}

Result<Tid> claimed_tid() {
  COHORT_ASSIGN_OR_RETURN(std::int64_t t, env::get_int(env::kTid, 0));
  if (t < 0 || t > INT32_MAX)
    return Status(Errc::kInvalidArgument,
                  std::string(env::kTid) + "=" + std::to_string(t) + " is not a task id; unset it");
  return static_cast<Tid>(t);
}

[[noreturn, gnu::cold]] void bad_tag(int tag) {
  throw Error(Errc::kInvalidArgument,
              "tag " + std::to_string(tag) + " is negative; message tags are 0 or more");
}
inline void check_tag(int tag) {
  if (tag < 0) [[unlikely]]
    bad_tag(tag);
}

[[noreturn, gnu::cold]] void bad_source(Tid source) {
  throw Error(Errc::kInvalidArgument,
              "receive from " + std::to_string(source) + ": give a task id or cohort::kAnyTid");
}
inline void check_source(Tid source) {
  if (source != kAnyTid && source <= 0) [[unlikely]]
    bad_source(source);
}

MessageInfo info_of(const lib::RecvOp& op) {
  return {op.env.source, op.env.tag, op.env.size};
}

/// The binding a spawn asks for: the option, else $COHORT_BIND_TO, else auto.
proto::BindTo bind_request(BindTo option) {
  if (option == BindTo::kAuto) {
    if (auto v = env::get(kBindToEnv); v && !v->empty()) {
      auto b = parse_bind_to(*v);
      if (!b)
        throw Error(Errc::kInvalidArgument, std::string(kBindToEnv) + "='" + *v +
                                                "' is not auto, none, core or numa; fix or unset it");
      option = *b;
    }
  }
  return static_cast<proto::BindTo>(option);
}

}  // namespace

std::optional<BindTo> parse_bind_to(std::string_view text) noexcept {
  if (text == "auto") return BindTo::kAuto;
  if (text == "none") return BindTo::kNone;
  if (text == "core") return BindTo::kCore;
  if (text == "numa") return BindTo::kNuma;
  return std::nullopt;
}

std::string_view to_string(BindTo b) noexcept {
  switch (b) {
    case BindTo::kAuto: return "auto";
    case BindTo::kNone: return "none";
    case BindTo::kCore: return "core";
    case BindTo::kNuma: return "numa";
  }
  return "unknown";
}

std::uint8_t wire_flags(const Message& m) noexcept {
  if (m.is_raw()) return lib::kFlagRaw;
  // A received message forwarded as is keeps its sender's order.
  return m.foreign_order() ? (lib::kNativeOrderFlag ^ lib::kFlagBigEndian) : lib::kNativeOrderFlag;
}

// ---- enrolment ----------------------------------------------------------------------

Session::Session(const SessionOptions& options) : impl_(std::make_unique<Impl>()) {
  cohort::reset_foreign_handlers();  // so that `cohort kill` ends us as a signal should
  std::string dir = options.dir;
  if (dir.empty()) dir = value_or_throw(env::vm_dir(env::vm_name(options.vm), false));
  lib::Engine::Options eo;
  eo.spin = std::chrono::microseconds(value_or_throw(env::get_int(env::kSpinUs, 200)));
  const std::int64_t eager = value_or_throw(env::get_int(env::kEagerLimit, 0));
  if (eager < 0 || eo.spin.count() < 0)
    throw Error(Errc::kInvalidArgument, std::string(env::kEagerLimit) + " and " + env::kSpinUs +
                                            " must not be negative; unset them or give a number");
  eo.eager_limit = static_cast<std::size_t>(eager);

  proto::Hello hello;
  hello.pid = static_cast<std::int32_t>(::getpid());
  hello.claimed_tid = options.as_tool ? kNoTid : value_or_throw(claimed_tid());
  hello.program = program_name();
  hello.is_tool = options.as_tool;
  proto::Welcome welcome;
  auto link = value_or_throw(lib::DaemonLink::open(dir, hello, welcome, std::chrono::seconds(30)));

  Impl& s = *impl_;
  s.tid = welcome.tid;
  s.parent = welcome.parent;
  s.job = welcome.job;
  s.rank = welcome.rank;
  s.job_size = welcome.job_size;
  s.host = welcome.host;
  s.host_name = welcome.host_name;
  s.vm_name = welcome.vm_name;
  s.as_tool = options.as_tool;
  if (!options.as_tool) log::set_process_tag(lib::tid_name(s.tid));

  s.engine = std::make_unique<lib::Engine>(std::move(link), s.tid, s.host, eo);
  // Tasks publish at once (peers' Resolves wait for it); tools only when they send.
  if (!options.as_tool) throw_if_error(s.engine->open_endpoints());
  COHORT_LOG_DEBUG(kLog) << "enrolled as " << lib::tid_name(s.tid) << " in " << dir;
}

Session::~Session() {
  try {
    impl_.reset();
  } catch (const std::exception& e) {
    COHORT_LOG_ERROR(kLog) << "leaving the VM: " << e.what();
  } catch (...) {
    COHORT_LOG_ERROR(kLog) << "leaving the VM failed";
  }
}

Session::Impl::~Impl() {
  // Requests outlive us only as empty shells: withdraw what they started.
  while (Request::State* s = requests.front()) {
    requests.erase(s);
    if (engine) abandon(*s);
    s->impl = nullptr;
  }
  if (engine) engine->close();
}

// ---- identity -------------------------------------------------------------------------

Tid Session::tid() const noexcept {
  return impl_->tid;
}
Tid Session::parent() const noexcept {
  return impl_->parent;
}
std::uint32_t Session::job() const noexcept {
  return impl_->job;
}
int Session::rank() const noexcept {
  return impl_->rank;
}
int Session::job_size() const noexcept {
  return impl_->job_size;
}
std::uint32_t Session::host() const noexcept {
  return impl_->host;
}
const std::string& Session::host_name() const noexcept {
  return impl_->host_name;
}

const std::vector<Tid>& Session::job_tids() {
  Impl& s = *impl_;
  if (s.job_tids) return *s.job_tids;
  if (s.job == 0) {  // started by hand: a job of one
    s.job_tids = std::vector<Tid>{s.tid};
    return *s.job_tids;
  }
  s.check_usable();
  proto::JobTids req;
  req.job = s.job;
  auto reply = value_or_throw(s.engine->call<proto::JobTidsReply>(req));
  throw_if_error(lib::from_wire(reply.status).with_context("job_tids"));
  s.job_tids = std::move(reply.tids);
  return *s.job_tids;
}

// ---- tasks ------------------------------------------------------------------------------

std::vector<SpawnOutcome> Session::spawn(const std::string& program,
                                         const std::vector<std::string>& args, int count,
                                         const SpawnOptions& options) {
  Impl& s = *impl_;
  s.check_usable();
  if (count <= 0)
    throw Error(Errc::kInvalidArgument,
                "spawn '" + program + "': count " + std::to_string(count) + " must be at least 1");
  if (program.empty()) throw Error(Errc::kInvalidArgument, "spawn: the program name is empty");
  proto::Spawn req;
  req.program = program;
  req.args = args;
  req.env = options.env;
  auto has = [&](std::string_view name) {
    for (const auto& e : req.env)
      if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
        return true;
    return false;
  };
  // Relative paths and PATH lookups behave as they would in this process; the
  // tuning variables the user set here apply to the tasks too.
  std::uint32_t inherited = 0;
  if (!has("PATH")) inherited |= proto::kSpawnPathInherited;
  for (const char* name :
       {"PATH", env::kLog, env::kTransports, env::kEagerLimit, env::kSpinUs, kBindToEnv})
    if (auto v = env::get(name); v && !has(name)) req.env.push_back(std::string(name) + "=" + *v);
  req.cwd = options.cwd;
  if (req.cwd.empty()) {
    char buf[PATH_MAX];
    if (::getcwd(buf, sizeof buf)) req.cwd = buf;
    inherited |= proto::kSpawnCwdInherited;
  }
  req.count = count;
  req.flags = (options.forward_output ? std::uint32_t{proto::kSpawnForwardOutput} : 0u) | inherited;
  req.host = options.host;
  req.map_by = static_cast<std::uint8_t>(options.map_by);
  req.per_host = options.per_host;
  req.exit_tag = options.exit_notify_tag ? *options.exit_notify_tag : proto::kNoTag;
  req.bind_to = bind_request(options.bind_to);

  s.engine->begin_spawn();
  auto reply = s.engine->call<proto::SpawnReply>(req);
  if (reply.is_ok() && lib::from_wire(reply->status).is_ok()) {
    auto fn = options.on_output ? std::make_shared<lib::OutputFn>(options.on_output) : nullptr;
    for (const auto& t : reply->tasks)
      if (t.tid != kNoTid) s.engine->set_output_sink(t.tid, fn);
  }
  s.engine->end_spawn();
  if (!reply.is_ok()) throw_if_error(reply.status());
  throw_if_error(lib::from_wire(reply->status).with_context("spawn '" + program + "'"));

  std::vector<SpawnOutcome> out;
  out.reserve(reply->tasks.size());
  for (const auto& t : reply->tasks) {
    SpawnOutcome o;
    o.tid = t.tid;
    o.error = static_cast<Errc>(t.status.code);
    o.message = t.status.message;
    if (o.error == Errc::kOk && o.tid == kNoTid) {
      o.error = Errc::kInternal;
      o.message = "the daemon gave no tid for '" + program + "'";
    }
    out.push_back(std::move(o));
  }
  return out;
}

void Session::notify(NotifyKind kind, int tag, std::span<const Tid> tids) {
  Impl& s = *impl_;
  s.check_usable();
  check_tag(tag);
  proto::Notify req;
  req.kind = static_cast<proto::NotifyKind>(kind);
  req.tag = tag;
  req.tids.assign(tids.begin(), tids.end());
  auto ack = value_or_throw(s.engine->call<proto::Ack>(req));
  throw_if_error(lib::from_wire(ack.status).with_context("notify"));
}

Notification Session::decode_notification(Message& m) {
  m.rewind();
  Notification n;
  const auto kind = m.unpack<std::uint8_t>();
  if (kind < 1 || kind > 3)
    throw Error(Errc::kTypeMismatch,
                "not a notification message (kind " + std::to_string(kind) + ")");
  n.kind = static_cast<NotifyKind>(kind);
  const auto subject = m.unpack<std::int32_t>();
  if (n.kind == NotifyKind::kTaskExit)
    n.tid = subject;
  else
    n.host = static_cast<std::uint32_t>(subject);
  n.exit_code = m.unpack<std::int32_t>();
  n.signal = m.unpack<std::int32_t>();
  return n;
}

void Session::kill(Tid tid, int signal) {
  Impl& s = *impl_;
  s.check_usable();
  proto::Kill req;
  req.tid = tid;
  req.signal = signal;
  auto ack = value_or_throw(s.engine->call<proto::Ack>(req));
  throw_if_error(lib::from_wire(ack.status).with_context("kill " + lib::tid_name(tid)));
}

std::vector<TaskInfo> Session::tasks() {
  Impl& s = *impl_;
  s.check_usable();
  proto::ListTasks req;
  auto list = value_or_throw(s.engine->call<proto::TaskList>(req));
  std::vector<TaskInfo> out;
  out.reserve(list.tasks.size());
  for (auto& t : list.tasks)
    out.push_back({t.tid, t.parent, t.job, t.rank, t.pid, t.host, std::move(t.program)});
  return out;
}

std::vector<HostInfo> Session::hosts() {
  Impl& s = *impl_;
  s.check_usable();
  proto::ListHosts req;
  auto list = value_or_throw(s.engine->call<proto::HostList>(req));
  std::vector<HostInfo> out;
  out.reserve(list.hosts.size());
  for (auto& h : list.hosts)
    out.push_back({h.index, std::move(h.name), std::move(h.address), std::move(h.arch), h.ncpus,
                   h.ntasks, h.daemon_pid, h.packages, h.numa_nodes, h.cores, h.pus,
                   std::move(h.topology_note), h.slots > 0 ? h.slots : h.ncpus});
  return out;
}

std::vector<TransportChoice> Session::transport_choices(Tid task) {
  Impl& s = *impl_;
  s.check_usable();
  proto::ListTransports req;
  req.tid = task;
  auto list = value_or_throw(s.engine->call<proto::TransportList>(req));
  std::vector<TransportChoice> out;
  out.reserve(list.records.size());
  for (auto& r : list.records)
    out.push_back({r.task, r.peer, std::move(r.transport), std::move(r.reason)});
  return out;
}

void Session::halt() {
  Impl& s = *impl_;
  s.check_usable();
  proto::Halt req;
  auto ack = value_or_throw(s.engine->call<proto::Ack>(req));
  throw_if_error(lib::from_wire(ack.status).with_context("halt"));
}

// ---- blocking messages -----------------------------------------------------------------

void Session::send(Tid dest, int tag, const Message& m) {
  Impl& s = *impl_;
  s.check_usable();
  check_tag(tag);
  throw_if_error(s.engine->send(dest, tag, kUserContext, wire_flags(m), m.bytes()));
  s.maybe_poll();
}

void Session::send(Tid dest, int tag, std::span<const std::byte> bytes) {
  Impl& s = *impl_;
  s.check_usable();
  check_tag(tag);
  throw_if_error(s.engine->send(dest, tag, kUserContext, lib::kFlagRaw, bytes));
  s.maybe_poll();
}

void Session::mcast(std::span<const Tid> dests, int tag, const Message& m) {
  Impl& s = *impl_;
  s.check_usable();
  check_tag(tag);
  // Start every send, then wait for them all: slow peers do not serialise the rest.
  std::vector<lib::SendOp> ops(dests.size());
  Status first;
  std::size_t started = 0;
  for (; started < dests.size(); ++started) {
    Status st = s.engine->start_send(ops[started], dests[started], tag, kUserContext, wire_flags(m),
                                     m.bytes());
    if (!st.is_ok()) {
      first = std::move(st);
      break;
    }
  }
  for (std::size_t i = 0; i < started; ++i) {
    Status st = s.engine->finish_send(ops[i]);
    if (first.is_ok() && !st.is_ok()) first = std::move(st);
  }
  throw_if_error(first);
}

Message Session::recv(Tid source, int tag) {
  Impl& s = *impl_;
  s.check_usable();
  check_source(source);
  Message m;
  lib::RecvOp op;
  op.source = source;
  op.tag = tag;
  op.context = kUserContext;
  op.message = &m;
  throw_if_error(s.engine->recv(op));
  throw_if_error(op.status);
  return m;
}

std::optional<Message> Session::recv_for(Tid source, int tag, std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  s.check_usable();
  check_source(source);
  std::optional<Message> m(std::in_place);
  lib::RecvOp op;
  op.source = source;
  op.tag = tag;
  op.context = kUserContext;
  op.message = &*m;
  Status st = s.engine->recv(op, lib::Clock::now() + timeout);
  if (st.code() == Errc::kTimeout) return std::nullopt;
  throw_if_error(st);
  throw_if_error(op.status);
  return m;
}

MessageInfo Session::recv(Tid source, int tag, std::span<std::byte> buffer) {
  Impl& s = *impl_;
  s.check_usable();
  check_source(source);
  lib::RecvOp op;
  op.source = source;
  op.tag = tag;
  op.context = kUserContext;
  op.has_buffer = true;
  op.buffer = buffer;
  throw_if_error(s.engine->recv(op));
  throw_if_error(op.status);
  return info_of(op);
}

std::optional<MessageInfo> Session::probe(Tid source, int tag) {
  Impl& s = *impl_;
  s.check_usable();
  check_source(source);
  const lib::UnexpectedMsg* m = s.engine->probe(source, tag, kUserContext);
  if (!m) return std::nullopt;
  return MessageInfo{m->env.source, m->env.tag, m->env.size};
}

std::string Session::transport_to(Tid peer) {
  Impl& s = *impl_;
  s.check_usable();
  if (peer == s.tid) return "self";
  auto p = s.engine->peer_for_send(peer);
  throw_if_error(p.status());
  return s.engine->transport_to(peer);
}

}  // namespace cohort
