// proto/daemon_messages.hpp — messages between daemons (TCP links) and the
// host administration requests of the `cohort` tool. Numbers are >= 100 and
// listed in COHORT_PROTO_DAEMON_MESSAGES (messages.hpp), so FrameBuffer
// accepts them; the same framing and codec as every other message.
//
// A daemon link opens with a mutual challenge-response (daemon/auth.hpp):
//   both sides:  PeerAuth {challenge, own index (0 = joining), vm}
//   both sides:  PeerProof {HMAC(cookie, direction || peer's challenge)}
// Nothing else is accepted before both proofs check out. Then:
//   joining daemon -> master: JoinRequest      master: JoinReply (index, table, seq)
//   master -> every daemon:   HostEvent (numbered; applied in seq order everywhere)
//   every daemon -> every other it knows: Heartbeat (each period)
// Cross-host tasks (the daemon of the spawner is the "origin"):
//   origin -> target: AllocTids, then StartTasks (the whole job's tids known)
//   target -> origin: Output lines (proto::Output) and TaskExited
//   any -> owner:     WatchTasks (answered by TaskExited), RemoteResolve,
//                     RemoteKill, RemoteListTasks
// Requests between daemons carry `id`, chosen by the asker, echoed in the reply.
#pragma once

#include <cohort/tid.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "proto/messages.hpp"

namespace cohort::proto {

// ---- link set-up ---------------------------------------------------------------

struct PeerAuth {
  static constexpr MsgType kType = MsgType::kPeerAuth;
  std::uint32_t version = 1;
  std::string challenge;       // 32 random bytes
  std::uint32_t index = 0;     // the sender's host index; 0 while joining
  std::string vm_name;
  template <class F>
  void fields(F& f) { f(version); f(challenge); f(index); f(vm_name); }
};

struct PeerProof {
  static constexpr MsgType kType = MsgType::kPeerProof;
  std::string mac;             // HMAC-SHA256 of the peer's challenge
  template <class F>
  void fields(F& f) { f(mac); }
};

// ---- membership ----------------------------------------------------------------

struct JoinRequest {           // joining daemon -> master; reply JoinReply
  static constexpr MsgType kType = MsgType::kJoinRequest;
  HostInfo host;               // index 0; address = where its daemon listens (tcp:...)
  template <class F>
  void fields(F& f) { f(host); }
};

struct JoinReply {
  static constexpr MsgType kType = MsgType::kJoinReply;
  WireStatus status;
  std::uint32_t index = 0;     // the joining daemon's host index
  std::uint64_t seq = 0;       // the last event the table includes
  std::uint32_t master = 0;
  std::vector<HostInfo> hosts; // the whole table, the new host included
  template <class F>
  void fields(F& f) { f(status); f(index); f(seq); f(master); f(hosts); }
};

enum class HostEventKind : std::uint8_t { kAdd = 1, kDelete = 2 };

struct HostEvent {             // master -> every daemon
  static constexpr MsgType kType = MsgType::kHostEvent;
  std::uint64_t seq = 0;
  HostEventKind kind = HostEventKind::kAdd;
  std::uint32_t master = 0;    // the master after this event
  HostInfo host;
  template <class F>
  void fields(F& f) { f(seq); f(kind); f(master); f(host); }
};

struct Heartbeat {
  static constexpr MsgType kType = MsgType::kHeartbeat;
  std::uint32_t index = 0;
  std::uint64_t seq = 0;       // the last event the sender applied
  std::uint32_t master = 0;    // the master the sender follows
  std::uint8_t hears_master = 1;  // and whether it heard it within the timeout
  template <class F>
  void fields(F& f) { f(index); f(seq); f(master); f(hears_master); }
};

// ---- cross-host tasks ----------------------------------------------------------

struct AllocTids {             // origin -> target; reply AllocTidsReply
  static constexpr MsgType kType = MsgType::kAllocTids;
  std::uint32_t id = 0;
  std::int32_t count = 0;
  template <class F>
  void fields(F& f) { f(id); f(count); }
};

struct AllocTidsReply {
  static constexpr MsgType kType = MsgType::kAllocTidsReply;
  std::uint32_t id = 0;
  WireStatus status;
  std::vector<Tid> tids;
  template <class F>
  void fields(F& f) { f(id); f(status); f(tids); }
};

struct StartTasks {            // origin -> target; reply StartTasksReply
  static constexpr MsgType kType = MsgType::kStartTasks;
  std::uint32_t id = 0;
  Tid parent = 0;
  std::uint32_t job = 0;
  std::vector<Tid> job_tids;   // the whole job in rank order
  std::vector<std::int32_t> ranks;  // the ranks to start here
  Spawn spawn;                 // program, args, env, cwd, flags
  template <class F>
  void fields(F& f) { f(id); f(parent); f(job); f(job_tids); f(ranks); f(spawn); }
};

struct StartTasksReply {
  static constexpr MsgType kType = MsgType::kStartTasksReply;
  std::uint32_t id = 0;
  std::vector<SpawnOutcome> tasks;  // one per rank asked for, same order
  template <class F>
  void fields(F& f) { f(id); f(tasks); }
};

struct TaskExited {            // owner -> the daemons that watch the task
  static constexpr MsgType kType = MsgType::kTaskExited;
  Tid tid = 0;
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  template <class F>
  void fields(F& f) { f(tid); f(exit_code); f(signal); }
};

struct WatchTasks {            // -> owner: send TaskExited for each (at once if gone)
  static constexpr MsgType kType = MsgType::kWatchTasks;
  std::vector<Tid> tids;
  template <class F>
  void fields(F& f) { f(tids); }
};

struct RemoteResolve {         // -> owner; reply RemoteResolveReply (deferred like Resolve)
  static constexpr MsgType kType = MsgType::kRemoteResolve;
  std::uint32_t id = 0;
  Tid tid = 0;
  template <class F>
  void fields(F& f) { f(id); f(tid); }
};

struct RemoteResolveReply {
  static constexpr MsgType kType = MsgType::kRemoteResolveReply;
  std::uint32_t id = 0;
  WireStatus status;
  std::vector<AddressEntry> addresses;
  template <class F>
  void fields(F& f) { f(id); f(status); f(addresses); }
};

struct RemoteKill {            // -> owner; reply RemoteAck
  static constexpr MsgType kType = MsgType::kRemoteKill;
  std::uint32_t id = 0;
  Tid tid = 0;
  std::int32_t signal = 15;
  template <class F>
  void fields(F& f) { f(id); f(tid); f(signal); }
};

struct RemoteAck {
  static constexpr MsgType kType = MsgType::kRemoteAck;
  std::uint32_t id = 0;
  WireStatus status;
  template <class F>
  void fields(F& f) { f(id); f(status); }
};

struct RemoteListTasks {       // -> any daemon; reply RemoteTaskList (its live tasks)
  static constexpr MsgType kType = MsgType::kRemoteListTasks;
  std::uint32_t id = 0;
  template <class F>
  void fields(F& f) { f(id); }
};

struct RemoteTaskList {
  static constexpr MsgType kType = MsgType::kRemoteTaskList;
  std::uint32_t id = 0;
  std::vector<TaskInfo> tasks;
  template <class F>
  void fields(F& f) { f(id); f(tasks); }
};

struct StopDaemon {            // master -> a host being removed
  static constexpr MsgType kType = MsgType::kStopDaemon;
  bool drain = false;          // wait for its tasks instead of killing them
  template <class F>
  void fields(F& f) { f(drain); }
};

// ---- host administration (the `cohort` tool -> its daemon) ----------------------

struct HostStart {
  std::string name;
  std::string agent;           // empty: the VM's default launch agent
  std::int32_t slots = 0;      // the hostfile's options for it (0 / empty: defaults)
  std::string wdir;
  std::string path;
  template <class F>
  void fields(F& f) { f(name); f(agent); f(slots); f(wdir); f(path); }
};

struct AddHosts {              // reply AddHostsReply once every host joined or failed
  static constexpr MsgType kType = MsgType::kAddHosts;
  std::uint32_t req = 0;
  std::vector<HostStart> hosts;
  std::string agent;           // default launch agent: "ssh", "slurm" or a template
  std::int32_t timeout_ms = 30000;
  std::string hostfile;        // hostfile text (daemon/hostfile.hpp), hosts added after `hosts`
  std::string hostfile_name;   // for its error messages (FILE:LINE)
  template <class F>
  void fields(F& f) { f(req); f(hosts); f(agent); f(timeout_ms); f(hostfile); f(hostfile_name); }
};

struct HostStartOutcome {
  std::string name;
  std::uint32_t index = 0;     // 0 when it could not be started
  WireStatus status;           // the agent's own error output when it failed
  template <class F>
  void fields(F& f) { f(name); f(index); f(status); }
};

struct AddHostsReply {
  static constexpr MsgType kType = MsgType::kAddHostsReply;
  std::uint32_t req = 0;
  WireStatus status;
  std::vector<HostStartOutcome> hosts;
  template <class F>
  void fields(F& f) { f(req); f(status); f(hosts); }
};

struct RemoveHosts {           // reply Ack once each host is gone
  static constexpr MsgType kType = MsgType::kRemoveHosts;
  std::uint32_t req = 0;
  std::vector<std::string> names;
  bool drain = false;
  template <class F>
  void fields(F& f) { f(req); f(names); f(drain); }
};

}  // namespace cohort::proto
