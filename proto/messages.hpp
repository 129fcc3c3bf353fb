// proto/messages.hpp — every control message between a task (or the `cohort`
// command) and its local daemon. One struct per message type; `fields()` lists
// the wire layout once (see codec.hpp). Requests carry `req`, a number chosen by
// the client and echoed in the reply, so that replies can be told apart from
// events (Output, NotifyEvent) that the daemon sends at any time.
//
// Conversation:
//   client: Hello                    daemon: Welcome (identity, or an error and close)
//   client: Publish/Resolve/Spawn/…  daemon: the matching reply with the same req
//                                    daemon: Output, NotifyEvent whenever they happen
//   client: Bye                      (clean leave; closing the socket means the same)
//
// Adding a message: add it to COHORT_PROTO_MESSAGES, define its struct with
// kType, and give it a case in the daemon's dispatcher. Never renumber.
#pragma once

#include <cohort/tid.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::proto {

// X(name, number)
#define COHORT_PROTO_MESSAGES(X) \
  X(Hello, 1)                    \
  X(Welcome, 2)                  \
  X(Bye, 3)                      \
  X(Ack, 4)                      \
  X(Publish, 10)                 \
  X(Resolve, 11)                 \
  X(ResolveReply, 12)            \
  X(Spawn, 20)                   \
  X(SpawnReply, 21)              \
  X(Output, 22)                  \
  X(Notify, 30)                  \
  X(NotifyEvent, 31)             \
  X(Kill, 40)                    \
  X(Halt, 41)                    \
  X(ListTasks, 50)               \
  X(TaskList, 51)                \
  X(ListHosts, 52)               \
  X(HostList, 53)                \
  X(JobTids, 54)                 \
  X(JobTidsReply, 55)            \
  X(TransportChoice, 56)         \
  X(ListTransports, 57)          \
  X(TransportList, 58)           \
  COHORT_PROTO_DAEMON_MESSAGES(X)

// Daemon-to-daemon messages and host administration (numbers >= 100); their
// structs are in proto/daemon_messages.hpp.
#define COHORT_PROTO_DAEMON_MESSAGES(X) \
  X(PeerAuth, 100)                      \
  X(PeerProof, 101)                     \
  X(JoinRequest, 102)                   \
  X(JoinReply, 103)                     \
  X(HostEvent, 104)                     \
  X(Heartbeat, 105)                     \
  X(AllocTids, 106)                     \
  X(AllocTidsReply, 107)                \
  X(StartTasks, 108)                    \
  X(StartTasksReply, 109)               \
  X(TaskExited, 110)                    \
  X(WatchTasks, 111)                    \
  X(RemoteResolve, 112)                 \
  X(RemoteResolveReply, 113)            \
  X(RemoteKill, 114)                    \
  X(RemoteAck, 115)                     \
  X(RemoteListTasks, 116)               \
  X(RemoteTaskList, 117)                \
  X(StopDaemon, 118)                    \
  X(AddHosts, 120)                      \
  X(AddHostsReply, 121)                 \
  X(RemoveHosts, 122)

enum class MsgType : std::uint16_t {
#define COHORT_PROTO_ENUM(name, num) k##name = num,
  COHORT_PROTO_MESSAGES(COHORT_PROTO_ENUM)
#undef COHORT_PROTO_ENUM
};

/// "Spawn" for kSpawn; "unknown" otherwise.
std::string_view msg_type_name(MsgType t) noexcept;
/// True for numbers that name a message in this protocol version.
bool msg_type_known(std::uint16_t t) noexcept;

/// A status on the wire: an Errc value (0 = OK) and its message.
struct WireStatus {
  std::uint16_t code = 0;
  std::string message;
  template <class F>
  void fields(F& f) {
    f(code);
    f(message);
  }
};

/// A Status as it travels: its code, and its message when it is an error.
inline WireStatus to_wire(const Status& s) {
  WireStatus w;
  w.code = static_cast<std::uint16_t>(s.code());
  if (!s.is_ok()) w.message = s.message();
  return w;
}
inline WireStatus to_wire(Errc code, std::string message) {
  return to_wire(Status(code, std::move(message)));
}

// ---- enrolment -------------------------------------------------------------

struct Hello {
  static constexpr MsgType kType = MsgType::kHello;
  std::uint32_t version = 1;
  std::string cookie;          // the VM's secret (Unix socket: only the owner can connect)
  std::int32_t pid = 0;
  Tid claimed_tid = 0;         // COHORT_TID when spawned by the daemon, else 0 (new task)
  std::string program;         // for `cohort ps`
  bool is_tool = false;        // the `cohort` command: not listed as a task
  template <class F>
  void fields(F& f) {
    f(version); f(cookie); f(pid); f(claimed_tid); f(program); f(is_tool);
  }
};

struct Welcome {
  static constexpr MsgType kType = MsgType::kWelcome;
  WireStatus status;
  Tid tid = 0;
  Tid parent = 0;
  std::uint32_t job = 0;
  std::int32_t rank = 0;
  std::int32_t job_size = 1;
  std::uint32_t host = 0;      // host index
  std::string host_name;
  std::string vm_name;
  template <class F>
  void fields(F& f) {
    f(status); f(tid); f(parent); f(job); f(rank); f(job_size); f(host); f(host_name); f(vm_name);
  }
};

struct Bye {
  static constexpr MsgType kType = MsgType::kBye;
  std::int32_t exit_code = 0;
  template <class F>
  void fields(F& f) { f(exit_code); }
};

struct Ack {
  static constexpr MsgType kType = MsgType::kAck;
  std::uint32_t req = 0;
  WireStatus status;
  template <class F>
  void fields(F& f) { f(req); f(status); }
};

// ---- name service ----------------------------------------------------------

struct AddressEntry {
  std::string transport;       // "tcp", "shm", ...
  std::string address;         // opaque bytes the transport understands
  template <class F>
  void fields(F& f) { f(transport); f(address); }
};

struct Publish {               // reply: Ack
  static constexpr MsgType kType = MsgType::kPublish;
  std::uint32_t req = 0;
  std::vector<AddressEntry> addresses;
  template <class F>
  void fields(F& f) { f(req); f(addresses); }
};

struct Resolve {               // reply: ResolveReply; also watches `tid` (NotifyKind::kPeerExit)
  static constexpr MsgType kType = MsgType::kResolve;
  std::uint32_t req = 0;
  Tid tid = 0;
  template <class F>
  void fields(F& f) { f(req); f(tid); }
};

struct ResolveReply {
  static constexpr MsgType kType = MsgType::kResolveReply;
  std::uint32_t req = 0;
  WireStatus status;           // kNoSuchTask: never existed or already exited (message says which)
  std::uint32_t host = 0;
  std::vector<AddressEntry> addresses;
  template <class F>
  void fields(F& f) { f(req); f(status); f(host); f(addresses); }
};

// ---- tasks -----------------------------------------------------------------

inline constexpr std::int32_t kNoTag = INT32_MIN;

/// CPU binding of spawned tasks. kAuto: one core each while the host's spawned
/// tasks do not outnumber its cores, else none. Values are fixed on the wire.
enum class BindTo : std::uint8_t { kAuto = 0, kNone = 1, kCore = 2, kNuma = 3 };

enum SpawnFlags : std::uint32_t {
  kSpawnForwardOutput = 1u << 0,  // send the tasks' stdout/stderr lines to the spawner as Output
  // cwd / PATH are the spawner's own, passed on by default rather than asked
  // for: a host's hostfile wdir= / path= take their place there.
  kSpawnCwdInherited = 1u << 1,
  kSpawnPathInherited = 1u << 2,
};

struct Spawn {                 // reply: SpawnReply
  static constexpr MsgType kType = MsgType::kSpawn;
  std::uint32_t req = 0;
  std::string program;         // a path, or a name looked up in PATH
  std::vector<std::string> args;   // argv[1..]
  std::vector<std::string> env;    // extra NAME=VALUE entries
  std::string cwd;             // empty: the daemon's working directory
  std::int32_t count = 1;
  std::uint32_t flags = kSpawnForwardOutput;
  std::string host;            // empty: any host; else a host name
  std::int32_t exit_tag = kNoTag;  // if set: a kTaskExit NotifyEvent per task, registered atomically
  BindTo bind_to = BindTo::kAuto;  // where the daemon pins each task (daemon/binding.hpp)
  // Placement over hosts (`host` may also list several: "h1,h2"):
  std::uint8_t map_by = 0;     // 0: the named host, else this one; 1: by slot; 2: round robin by host
  std::int32_t per_host = 0;   // > 0: at most this many per host in each round
  template <class F>
  void fields(F& f) {
    f(req); f(program); f(args); f(env); f(cwd); f(count); f(flags); f(host); f(exit_tag);
    f(bind_to); f(map_by); f(per_host);
  }
};

struct SpawnOutcome {
  Tid tid = 0;                 // 0 when this instance failed
  WireStatus status;           // why it failed, naming program and reason
  template <class F>
  void fields(F& f) { f(tid); f(status); }
};

struct SpawnReply {
  static constexpr MsgType kType = MsgType::kSpawnReply;
  std::uint32_t req = 0;
  WireStatus status;           // failure of the whole request (bad arguments)
  std::uint32_t job = 0;
  std::vector<SpawnOutcome> tasks;  // one per requested instance, in rank order
  template <class F>
  void fields(F& f) { f(req); f(status); f(job); f(tasks); }
};

enum class Stream : std::uint8_t { kStdout = 1, kStderr = 2 };

struct Output {                // daemon -> spawner: one line (without '\n') of a task's output
  static constexpr MsgType kType = MsgType::kOutput;
  Tid tid = 0;
  Stream stream = Stream::kStdout;
  std::string data;
  template <class F>
  void fields(F& f) { f(tid); f(stream); f(data); }
};

// ---- notifications ---------------------------------------------------------

enum class NotifyKind : std::uint8_t {
  kTaskExit = 1,               // subject = the task's tid
  kHostDelete = 2,             // subject = host index
  kHostAdd = 3,                // subject = host index
  kPeerExit = 4,               // internal: a tid this task resolved has exited (lib marks it dead)
  kVmHalt = 5,                 // the VM is halting; the task should leave
};

struct Notify {                // reply: Ack. Tids already gone are notified at once.
  static constexpr MsgType kType = MsgType::kNotify;
  std::uint32_t req = 0;
  NotifyKind kind = NotifyKind::kTaskExit;
  std::int32_t tag = 0;
  std::vector<Tid> tids;       // kTaskExit: the tasks to watch
  template <class F>
  void fields(F& f) { f(req); f(kind); f(tag); f(tids); }
};

struct NotifyEvent {
  static constexpr MsgType kType = MsgType::kNotifyEvent;
  NotifyKind kind = NotifyKind::kTaskExit;
  std::int32_t tag = 0;
  std::int32_t subject = 0;    // tid, or host index
  std::int32_t exit_code = 0;  // kTaskExit: exit status if it exited normally, else -1
  std::int32_t signal = 0;     // kTaskExit: the signal that killed it, else 0
  template <class F>
  void fields(F& f) { f(kind); f(tag); f(subject); f(exit_code); f(signal); }
};

// ---- control ---------------------------------------------------------------

struct Kill {                  // reply: Ack
  static constexpr MsgType kType = MsgType::kKill;
  std::uint32_t req = 0;
  Tid tid = 0;
  std::int32_t signal = 15;
  template <class F>
  void fields(F& f) { f(req); f(tid); f(signal); }
};

struct Halt {                  // reply: Ack, then the daemon kills every task and exits
  static constexpr MsgType kType = MsgType::kHalt;
  std::uint32_t req = 0;
  template <class F>
  void fields(F& f) { f(req); }
};

enum class TaskState : std::uint8_t { kStarting = 1, kRunning = 2, kExited = 3 };

struct TaskInfo {
  Tid tid = 0;
  Tid parent = 0;
  std::uint32_t job = 0;
  std::int32_t rank = 0;
  std::int32_t pid = 0;
  std::uint32_t host = 0;
  std::string program;
  TaskState state = TaskState::kRunning;
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  template <class F>
  void fields(F& f) {
    f(tid); f(parent); f(job); f(rank); f(pid); f(host); f(program); f(state); f(exit_code);
    f(signal);
  }
};

struct ListTasks {
  static constexpr MsgType kType = MsgType::kListTasks;
  std::uint32_t req = 0;
  template <class F>
  void fields(F& f) { f(req); }
};

struct TaskList {
  static constexpr MsgType kType = MsgType::kTaskList;
  std::uint32_t req = 0;
  std::vector<TaskInfo> tasks;  // live tasks, by tid
  template <class F>
  void fields(F& f) { f(req); f(tasks); }
};

struct HostInfo {
  std::uint32_t index = 0;
  std::string name;
  std::string address;         // where its daemon listens ("unix:PATH" on one host)
  std::string arch;            // e.g. "x86_64-le"
  std::uint32_t ncpus = 0;
  std::uint32_t ntasks = 0;
  std::int32_t daemon_pid = 0;
  // Topology as hwloc sees it (0 = unknown: built without hwloc).
  std::uint32_t packages = 0;
  std::uint32_t numa_nodes = 0;
  std::uint32_t cores = 0;
  std::uint32_t pus = 0;
  std::string topology_note;   // empty, or why binding is off ("synthetic topology", "no hwloc")
  std::uint32_t slots = 0;     // tasks placed here per round of --map-by slot (0: ncpus)
  template <class F>
  void fields(F& f) {
    f(index); f(name); f(address); f(arch); f(ncpus); f(ntasks); f(daemon_pid);
    f(packages); f(numa_nodes); f(cores); f(pus); f(topology_note); f(slots);
  }
};

struct ListHosts {
  static constexpr MsgType kType = MsgType::kListHosts;
  std::uint32_t req = 0;
  template <class F>
  void fields(F& f) { f(req); }
};

struct HostList {
  static constexpr MsgType kType = MsgType::kHostList;
  std::uint32_t req = 0;
  std::vector<HostInfo> hosts;
  template <class F>
  void fields(F& f) { f(req); f(hosts); }
};

struct JobTids {               // the tids of a job in rank order (reply: JobTidsReply)
  static constexpr MsgType kType = MsgType::kJobTids;
  std::uint32_t req = 0;
  std::uint32_t job = 0;
  template <class F>
  void fields(F& f) { f(req); f(job); }
};

struct JobTidsReply {
  static constexpr MsgType kType = MsgType::kJobTidsReply;
  std::uint32_t req = 0;
  WireStatus status;
  std::vector<Tid> tids;
  template <class F>
  void fields(F& f) { f(req); f(status); f(tids); }
};

// ---- transport choices -----------------------------------------------------

/// Task -> daemon, one-way, once per peer: the transport this task chose (or
/// accepted) for its messages to `peer`, and why (lib/src/selection.hpp).
struct TransportChoice {
  static constexpr MsgType kType = MsgType::kTransportChoice;
  Tid peer = 0;
  std::string transport;       // "shm", "tcp", ...
  std::string reason;          // "same host", "forced by COHORT_TRANSPORTS=tcp", ...
  template <class F>
  void fields(F& f) { f(peer); f(transport); f(reason); }
};

struct ListTransports {        // reply: TransportList
  static constexpr MsgType kType = MsgType::kListTransports;
  std::uint32_t req = 0;
  Tid tid = 0;                 // 0: every live task
  template <class F>
  void fields(F& f) { f(req); f(tid); }
};

struct TransportRecord {
  Tid task = 0;                // who chose
  Tid peer = 0;                // for messages to whom
  std::string transport;
  std::string reason;
  template <class F>
  void fields(F& f) { f(task); f(peer); f(transport); f(reason); }
};

struct TransportList {
  static constexpr MsgType kType = MsgType::kTransportList;
  std::uint32_t req = 0;
  std::vector<TransportRecord> records;  // by task, then in the order chosen
  bool truncated = false;      // more records than one reply carries
  template <class F>
  void fields(F& f) { f(req); f(records); f(truncated); }
};

}  // namespace cohort::proto

// The structs of COHORT_PROTO_DAEMON_MESSAGES, so that every message listed
// above is defined wherever the list is.
#include "proto/daemon_messages.hpp"
