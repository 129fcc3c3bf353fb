// daemon/notifier.hpp — who wants to hear about which event.
//
// Three kinds of watches, all answered with proto::NotifyEvent frames:
//   - kTaskExit: a client asked (Notify, or Spawn with exit_tag) to be told
//     when a task exits, with a tag of its choice. One event per watch.
//   - kPeerExit: a client resolved a tid; when that task exits the client's
//     library marks the peer dead, so sends fail and receives stop waiting.
//     Registered by the name service's callers, once per (client, tid).
//   - kHostAdd / kHostDelete: kept for the multi-host daemon; with one host
//     nothing ever fires them.
// kVmHalt goes to every enrolled connection without a watch.
//
// Watches are keyed by ConnId; a watcher that disconnected is forgotten in
// conn_closed(). Single-threaded; sends through ConnTable.
#pragma once

#include <cohort/tid.hpp>

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/client_conn.hpp"
#include "daemon/task_table.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

/// Most watches one connection may hold; past it the client is dropped.
inline constexpr std::uint64_t kMaxWatchesPerConn = 1u << 22;

class Notifier {
 public:
  explicit Notifier(ConnTable& conns) : conns_(conns) {}

  /// One kTaskExit event with `tag` when `t` exits.
  void watch_exit(ClientConn& c, Tid t, std::int32_t tag);
  /// A kPeerExit event when `t` exits; at most one per (connection, tid).
  void watch_peer(ClientConn& c, Tid t);
  void watch_hosts(ClientConn& c, proto::NotifyKind kind, std::int32_t tag);

  /// `t` already exited (or never existed): send its kTaskExit event now.
  void send_exit_now(ClientConn& c, Tid t, std::int32_t tag, const ExitRecord& rec);
  /// `t` exited: every watcher gets its event; the watches are gone.
  void task_exited(Tid t, const ExitRecord& rec);
  /// kVmHalt to every enrolled connection.
  void vm_halting();
  /// A kHostAdd / kHostDelete event about host `index` to the clients that asked.
  void host_event(proto::NotifyKind kind, std::uint32_t index);
  /// Tids of host `index` that someone here watches (exit or peer watches):
  /// what must be reported as exited when that host is lost.
  std::vector<Tid> watched_on_host(std::uint32_t index) const;
  void conn_closed(ConnId id);

  static proto::NotifyEvent exit_event(Tid t, std::int32_t tag, const ExitRecord& rec);

 private:
  struct ExitWatch {
    ConnId conn;
    std::int32_t tag;
  };
  struct HostWatch {
    ConnId conn;
    proto::NotifyKind kind;
    std::int32_t tag;
  };

  ConnTable& conns_;
  std::unordered_map<Tid, std::vector<ExitWatch>> exit_watches_;
  std::unordered_map<Tid, std::unordered_set<ConnId>> peer_watches_;
  std::vector<HostWatch> host_watches_;
  std::unordered_map<ConnId, std::unordered_set<Tid>> by_conn_;  // tids each client watches
};

}  // namespace cohort::daemon
