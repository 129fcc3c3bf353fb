// daemon/cluster.hpp — the multi-host side of cohortd: links to the other
// daemons, the host table, heartbeats, and work forwarded between hosts.
//
// Every daemon listens on TCP (--listen, port 0 by default) and advertises the
// addresses peers should dial (net_iface.hpp). Links are authenticated both
// ways with the cookie before anything else is read (PeerAuth / PeerProof);
// a failure is one warn line and a dropped connection.
//
// Membership. The master (host 1 at first) owns the table. A joining daemon
// (cohortd --join, see peer_link.hpp join_master) gets its index, the table and
// the event sequence number; the master then broadcasts each change as a
// numbered HostEvent, which every daemon applies in order, so every daemon has
// the same table. Links between other daemons are made lazily, on first use.
//
// Failure detection. Every daemon sends a Heartbeat to every host in its table
// each period (500 ms by default). The master declares a host dead when it has
// heard nothing from it for the timeout (3 s, --heartbeat-timeout) or when its
// link closes, and broadcasts HostDelete. If the master is lost, the survivors
// pick the lowest surviving index as the new master; that daemon announces the
// master's deletion and carries on as master. Deleting a host reports its
// watched tasks as exited (exit -1) and sends kHostDelete notifications.
//
// Cross-host tasks are in cluster_tasks.cpp (see the methods below); starting
// daemons through launch agents in host_starter.hpp.
//
// Owned by Daemon; single-threaded like it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "daemon/binding.hpp"
#include "daemon/client_conn.hpp"
#include "daemon/peer_link.hpp"
#include "daemon/poller.hpp"
#include "daemon/spawner.hpp"
#include "daemon/task_table.hpp"
#include "proto/daemon_messages.hpp"

namespace cohort::daemon {

class Daemon;
class HostStarter;

struct ClusterOptions {
  std::string listen = "0.0.0.0:0";   // IP[:PORT]
  std::string interface;               // forced interface (--interface / COHORT_IF)
  std::optional<JoinResult> joined;    // set when this daemon joined a VM
  std::chrono::milliseconds heartbeat_period{500};
  std::chrono::milliseconds heartbeat_timeout{3000};
  // This host's hostfile options (cohortd --slots/--wdir/--path).
  std::uint32_t slots = 0;
  std::string wdir;
  std::string path;
};

class Cluster {
 public:
  using Clock = std::chrono::steady_clock;

  Cluster(Daemon& d, Poller& poller);
  ~Cluster();

  /// Bind the TCP listener and work out the advertised address (before join).
  static Result<std::pair<UniqueFd, std::string>> bind_listener(const std::string& listen,
                                                                const std::string& iface);
  /// Take the bound listener; adopt the master link when we joined.
  Status open(UniqueFd listener, std::string address, ClusterOptions opts);

  std::uint32_t local_index() const noexcept { return self_; }
  std::uint32_t master() const noexcept { return master_; }
  bool is_master() const noexcept { return master_ == self_; }
  const std::string& address() const noexcept { return address_; }
  const std::map<std::uint32_t, proto::HostInfo>& table() const noexcept { return hosts_; }
  bool host_known(std::uint32_t index) const { return hosts_.count(index) != 0; }
  /// The index of the host named `name` (name, short name or decimal index), or 0.
  std::uint32_t find_host(const std::string& name) const;

  // ---- event loop hooks ----
  void on_listener();
  void on_link(LinkId id, std::uint32_t events);
  Clock::time_point next_deadline() const;
  void on_tick();
  /// Flush links with output; close the ones marked for closing.
  void settle();
  /// Returns true when `pid` was a launch agent (and handles its exit).
  bool child_exited(pid_t pid, int wait_status);
  /// The daemon halts: tell the others we are leaving (no failover needed).
  void halting();

  // ---- from the dispatcher ----
  void on_client_frame(ClientConn& c, const proto::FrameView& f);
  /// Spawn across hosts (placement by the master's table). False when the
  /// request is for this host only and the dispatcher should run it as before.
  bool spawn(ClientConn& c, proto::Spawn& m);
  void resolve(ClientConn& c, std::uint32_t req, Tid t);
  void kill(ClientConn& c, std::uint32_t req, Tid t, std::int32_t sig);
  /// Watch remote tids for exit (registers the local watches first).
  void watch_remote(const std::vector<Tid>& tids);
  void list_tasks(ClientConn& c, proto::TaskList local);
  std::vector<proto::HostInfo> host_list(std::uint32_t local_tasks) const;

  // ---- from the daemon ----
  /// A local task exited: tell the daemons that watch it.
  void task_exited(Tid t, const ExitRecord& rec);

  // ---- for HostStarter ----
  Daemon& daemon() noexcept { return d_; }

 private:
  friend class HostStarter;
  struct Pending {                      // a request to another daemon, by id
    enum class Kind { kSpawnAlloc, kSpawnStart, kResolve, kKill, kList } kind;
    ConnId conn = 0;
    std::uint32_t req = 0;
    std::uint32_t op = 0;               // the spawn operation it belongs to
    std::uint32_t host = 0;
    Tid tid = 0;
  };
  struct SpawnOp {                      // one Spawn placed over several hosts
    ConnId conn = 0;
    Tid parent = 0;
    proto::Spawn m;
    std::vector<std::uint32_t> host_of_rank;
    std::vector<Tid> tids;
    std::vector<proto::SpawnOutcome> outcomes;
    std::uint32_t job = 0;
    std::size_t open = 0;               // replies still awaited in this phase
  };
  struct ListOp {
    ConnId conn = 0;
    proto::TaskList list;
    std::size_t open = 0;
  };
  proto::SpawnOutcome start_local(const proto::Spawn& m, const std::string& path,
                                  const std::vector<std::string>& env, const TaskIdentity& id,
                                  ConnId output_to, const Binding& bind);

  // links (cluster.cpp)
  PeerLink* link_to(std::uint32_t index);  // dials lazily; nullptr if unknown
  PeerLink* find_link(LinkId id);
  LinkId add_link(UniqueFd fd, bool dialled, const std::string& address);
  void close_link(PeerLink& l, const std::string& why, bool warn);
  void link_lost(PeerLink& l);
  void on_frame(PeerLink& l, const proto::FrameView& f);
  void on_auth(PeerLink& l, const proto::FrameView& f);
  template <class M>
  void send(PeerLink& l, const M& m);
  template <class M>
  bool send_to(std::uint32_t index, const M& m);

  // membership (cluster_membership.cpp)
  void on_join(PeerLink& l, proto::JoinRequest& m);
  void on_host_event(PeerLink& l, proto::HostEvent& e);
  void apply(const proto::HostEvent& e);
  void broadcast(proto::HostEventKind kind, const proto::HostInfo& h);
  void host_lost(std::uint32_t index, const std::string& why);
  void heartbeat();
  void check_liveness();
  void on_stop(proto::StopDaemon& m);
  void remove_hosts(ClientConn& c, proto::RemoveHosts& m);
  void drain_check();

  // tasks (cluster_tasks.cpp)
  void on_task_frame(PeerLink& l, const proto::FrameView& f);
  void start_phase(std::uint32_t op_id);
  void finish_spawn(std::uint32_t op_id);
  void resolve_settled(Tid t);
  void forward_output(std::uint32_t host, const proto::Output& o);
  void fail_pending_for(std::uint32_t host);

  Daemon& d_;
  Poller& poller_;
  UniqueFd listen_fd_;
  std::string address_;
  ClusterOptions opts_;
  std::uint32_t self_ = 1;
  std::uint32_t master_ = 1;
  std::uint64_t seq_ = 0;
  std::uint32_t next_index_ = 2;        // master only
  std::map<std::uint32_t, proto::HostInfo> hosts_;
  std::unordered_map<std::uint32_t, Clock::time_point> last_heard_;
  std::set<std::uint32_t> dead_;        // deleted: never dialled or accepted again
  // Whether each host's last heartbeat said it still hears our master.
  std::unordered_map<std::uint32_t, bool> hears_master_;
  // Since when we have been cut off from a master that others still hear.
  std::optional<Clock::time_point> cut_off_since_;

  std::unordered_map<LinkId, std::unique_ptr<PeerLink>> links_;
  std::unordered_map<std::uint32_t, LinkId> by_index_;
  std::vector<LinkId> closing_;
  LinkId next_link_ = 1;
  Clock::time_point next_beat_{};

  std::uint32_t next_id_ = 1;
  std::unordered_map<std::uint32_t, Pending> pending_;
  std::unordered_map<std::uint32_t, std::unique_ptr<SpawnOp>> spawn_ops_;
  std::unordered_map<std::uint32_t, ListOp> list_ops_;
  std::unordered_map<Tid, ConnId> remote_output_;   // remote tid -> spawner's connection
  std::unordered_map<Tid, std::set<std::uint32_t>> remote_watchers_;  // local tid -> hosts
  std::unordered_map<Tid, std::vector<std::pair<std::uint32_t, std::uint32_t>>> remote_resolves_;
  std::set<Tid> watched_remote_;        // remote tids we asked their owners about
  // Exits of remote tasks that came while their spawn waited for other hosts.
  std::unordered_map<Tid, ExitRecord> early_exits_;

  std::unique_ptr<HostStarter> starter_;
  // Removal in progress (master): host index -> the tool waiting, by ConnId/req.
  struct Removal {
    ConnId conn;
    std::uint32_t req;
    std::set<std::uint32_t> hosts;
  };
  std::vector<Removal> removals_;
  bool draining_ = false;               // this daemon was asked to stop with --drain
};

template <class M>
void Cluster::send(PeerLink& l, const M& m) {
  // Until both sides proved the cookie only handshake frames may flow: hold the rest.
  if (!l.ready()) return proto::encode(m, l.held);
  if (!l.queue(m)) close_link(l, "it does not read (64 MiB queued)", true);
}

template <class M>
bool Cluster::send_to(std::uint32_t index, const M& m) {
  PeerLink* l = link_to(index);
  if (!l) return false;
  send(*l, m);
  return true;
}

}  // namespace cohort::daemon
