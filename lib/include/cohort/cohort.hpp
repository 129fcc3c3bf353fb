// cohort/cohort.hpp — the cohort C++ API.
//
// A Session enrolls this process in a cohort virtual machine (its local
// daemon) and gives it a task id. Tasks spawn other tasks anywhere in the VM
// and exchange messages with them: matched by source and tag (wildcards
// kAnyTid, kAnyTag), never overtaking each other between one sender and one
// receiver. Errors throw cohort::Error with a message that says what to do.
//
//   #include <cohort/cohort.hpp>
//   int main() {
//     cohort::Session s;                         // enroll (COHORT_* env from the daemon)
//     if (s.rank() == 0) {
//       for (int i = 1; i < s.job_size(); ++i) {
//         cohort::Message m = s.recv(cohort::kAnyTid, 1);
//         std::cout << m.unpack<std::string>() << "\n";
//       }
//     } else {
//       cohort::Message m;
//       m << "hello from " + std::to_string(s.rank());
//       s.send(s.job_tids()[0], 1, m);
//     }
//   }                                            // ~Session leaves the VM
//
// Threading: a Session is used by one thread at a time. Progress (reading the
// network and the daemon) happens inside Session calls on the caller's thread;
// callbacks given here (SpawnOptions::on_output) run there too, never on a
// thread of the library's own.
#pragma once

#include <cohort/errc.hpp>
#include <cohort/error.hpp>
#include <cohort/message.hpp>
#include <cohort/tid.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cohort {

struct SessionOptions {
  std::string vm;              ///< VM name (default: $COHORT_VM or "default")
  std::string dir;             ///< VM runtime directory (default: $COHORT_DIR or per-user)
  bool as_tool = false;        ///< an administrative client (the `cohort` command): not a task
};

enum class OutputStream : std::uint8_t { kStdout = 1, kStderr = 2 };

/// Where the daemon pins each spawned task (`cohort run --bind-to`).
enum class BindTo : std::uint8_t {
  kAuto = 0,   ///< one core each while the host's spawned tasks do not outnumber its cores, else none
  kNone = 1,   ///< not bound
  kCore = 2,   ///< one core each, round robin over the cores no other bound task holds
  kNuma = 3,   ///< one NUMA node each, round robin
};
/// "auto", "none", "core", "numa" -> BindTo; std::nullopt for anything else.
std::optional<BindTo> parse_bind_to(std::string_view text) noexcept;
std::string_view to_string(BindTo b) noexcept;

/// How a spawn spreads its tasks over the hosts (see SpawnOptions::map_by).
enum class MapBy : std::uint8_t {
  kDefault = 0,  ///< on `host` (several: one per host in turn), else on the spawner's host
  kSlot = 1,     ///< fill each host's slots (its CPUs, or per_host) before the next
  kHost = 2,     ///< one task per host in turn (per_host at a time when set)
};

struct SpawnOptions {
  std::string host;                       ///< only on this host (empty: anywhere); "h1,h2": those
  MapBy map_by = MapBy::kDefault;         ///< placement over the VM's hosts
  int per_host = 0;                       ///< > 0: at most this many per host in each round
  std::vector<std::string> env;           ///< extra NAME=VALUE entries for the tasks
  std::string cwd;                        ///< working directory (empty: the daemon's)
  /// Each line the tasks print, delivered inside Session calls on this thread.
  /// Empty: lines are written to this process's stdout/stderr as "[t<tid>] line".
  std::function<void(Tid, OutputStream, std::string_view)> on_output;
  bool forward_output = true;             ///< false: the tasks' output goes to the daemon's log
  /// If set, a task-exit notification (see Session::notify) with this tag for each
  /// task, registered with the spawn so that no exit can be missed.
  std::optional<int> exit_notify_tag;
  /// kAuto: $COHORT_BIND_TO when set (auto, none, core, numa), else the daemon's
  /// auto rule. A task reads its binding in $COHORT_BIND ("core:3", "numa:0",
  /// "none") or with sched_getaffinity().
  BindTo bind_to = BindTo::kAuto;
};

/// One requested instance of a spawn: its tid, or why it could not start.
struct SpawnOutcome {
  Tid tid = kNoTid;            ///< kNoTid when it failed
  Errc error = Errc::kOk;
  std::string message;         ///< names the program and the reason
  bool ok() const noexcept { return error == Errc::kOk; }
};

enum class NotifyKind : std::uint8_t {
  kTaskExit = 1,               ///< one message per watched task when it exits
  kHostDelete = 2,             ///< a host left the VM
  kHostAdd = 3,                ///< a host joined the VM
};

/// The payload of a notification message (its source is the daemon's tid,
/// tid::daemon_of(host)); unpack it with Session::decode_notification().
struct Notification {
  NotifyKind kind = NotifyKind::kTaskExit;
  Tid tid = kNoTid;            ///< kTaskExit: the task that exited
  std::uint32_t host = 0;      ///< kHost*: the host index
  int exit_code = 0;           ///< kTaskExit: exit status, or -1 when killed by a signal
  int signal = 0;              ///< kTaskExit: the signal that killed it, else 0
};

struct TaskInfo {
  Tid tid = kNoTid;
  Tid parent = kNoTid;
  std::uint32_t job = 0;
  int rank = 0;
  int pid = 0;
  std::uint32_t host = 0;
  std::string program;
};

struct HostInfo {
  std::uint32_t index = 0;
  std::string name;
  std::string address;
  std::string arch;
  unsigned ncpus = 0;
  unsigned ntasks = 0;
  int daemon_pid = 0;
  unsigned packages = 0;       ///< topology as hwloc sees it; 0 = unknown (no hwloc)
  unsigned numa_nodes = 0;
  unsigned cores = 0;
  unsigned pus = 0;            ///< processing units (hardware threads)
  std::string topology_note;   ///< empty, or why tasks there are not bound
  unsigned slots = 0;          ///< tasks per round of --map-by slot (the hostfile's slots=, else ncpus)
};

/// Which transport a task uses for its messages to one peer, and why
/// ("same host", "different host", "forced by COHORT_TRANSPORTS=tcp", ...).
struct TransportChoice {
  Tid task = kNoTid;
  Tid peer = kNoTid;
  std::string transport;
  std::string reason;
};

class Session;

/// A non-blocking send or receive in flight. Move-only; complete it with
/// Session::test/wait/wait_any/wait_all before it is destroyed (destroying an
/// unfinished request waits for it).
class Request {
 public:
  Request() = default;
  Request(Request&&) noexcept;
  Request& operator=(Request&&) noexcept;
  ~Request();
  bool valid() const noexcept { return state_ != nullptr; }
  /// After completion of a receive: who sent it, the tag and the size.
  MessageInfo info() const;
  /// After completion of irecv(src, tag) without a buffer: the message.
  Message& message();

  struct State;                // the library's
 private:
  friend class Session;
  explicit Request(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

class Session {
 public:
  explicit Session(const SessionOptions& options = {});
  ~Session();                  ///< leaves the VM
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- identity ----
  Tid tid() const noexcept;
  Tid parent() const noexcept;             ///< kNoTid when started by hand
  std::uint32_t job() const noexcept;
  int rank() const noexcept;               ///< rank in the job (0 when started by hand)
  int job_size() const noexcept;
  std::uint32_t host() const noexcept;     ///< host index
  const std::string& host_name() const noexcept;
  /// The tids of this task's job in rank order (asked once, then cached).
  const std::vector<Tid>& job_tids();

  // ---- tasks ----
  std::vector<SpawnOutcome> spawn(const std::string& program, const std::vector<std::string>& args,
                                  int count, const SpawnOptions& options = {});
  /// Watch `tids` (kTaskExit) or the VM's hosts (kHost*): notifications arrive as
  /// messages with tag `tag`. Tasks already gone are reported at once.
  void notify(NotifyKind kind, int tag, std::span<const Tid> tids = {});
  static Notification decode_notification(Message& m);
  void kill(Tid tid, int signal = 15);
  std::vector<TaskInfo> tasks();
  std::vector<HostInfo> hosts();
  /// Stop the whole VM: every task and every daemon.
  void halt();

  // ---- messages ----
  void send(Tid dest, int tag, const Message& m);
  /// Raw bytes, sent straight from `bytes` (no intermediate copy).
  void send(Tid dest, int tag, std::span<const std::byte> bytes);
  void mcast(std::span<const Tid> dests, int tag, const Message& m);

  Message recv(Tid source = kAnyTid, int tag = kAnyTag);
  /// std::nullopt on timeout.
  std::optional<Message> recv_for(Tid source, int tag, std::chrono::milliseconds timeout);
  /// Receive straight into `buffer`; kTruncated if the message is larger.
  MessageInfo recv(Tid source, int tag, std::span<std::byte> buffer);
  /// Non-blocking: is a matching message here?
  std::optional<MessageInfo> probe(Tid source = kAnyTid, int tag = kAnyTag);

  /// `m` / `bytes` must stay alive and unchanged until the request completes.
  Request isend(Tid dest, int tag, const Message& m);
  Request isend(Tid dest, int tag, std::span<const std::byte> bytes);
  Request irecv(Tid source, int tag);
  Request irecv(Tid source, int tag, std::span<std::byte> buffer);
  bool test(Request& r);
  void wait(Request& r);
  /// Waits until one of `rs` completes and returns its index.
  std::size_t wait_any(std::span<Request> rs);
  void wait_all(std::span<Request> rs);

  /// The transport that carries messages to `peer` ("shm", "tcp", ...), chosen
  /// and connected if not yet (see lib/README.md for the rule). Throws
  /// kUnsupported when no transport reaches it.
  std::string transport_to(Tid peer);
  /// The choices tasks have reported to the daemon: every task's, or `task`'s.
  /// A task reports a peer once it has chosen (or accepted) its connection.
  std::vector<TransportChoice> transport_choices(Tid task = kNoTid);

  struct Impl;                 // the library's
 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cohort
