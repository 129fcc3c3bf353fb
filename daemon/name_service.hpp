// daemon/name_service.hpp — where each task can be reached.
//
// A task publishes its transport addresses (Publish); a peer asks for them on
// its first send (Resolve). The common race — rank 0 resolves rank 1 before
// rank 1 has enrolled or published — is handled by deferring the reply: the
// Resolve waits here until the task publishes (answered with its addresses)
// or exits (answered kNoSuchTask "has exited"). Nothing is exchanged
// all-to-all, and a task's addresses are forgotten when it exits.
//
// The `cohort` tool never publishes; resolving it fails at once instead of
// waiting for ever (a task sending to the `cohort run` that spawned it).
//
// Replies are sent through ConnTable by ConnId, so a resolver that went away
// costs nothing. Deferred Resolves per connection are bounded
// (kMaxPendingResolves). Single-threaded.
#pragma once

#include <cohort/tid.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/client_conn.hpp"
#include "daemon/task_table.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

inline constexpr std::uint32_t kMaxPendingResolves = 1u << 16;

class NameService {
 public:
  NameService(ConnTable& conns, const TaskTable& tasks) : conns_(conns), tasks_(tasks) {}

  /// Store (or replace) the addresses of live task `t`; answer its deferred Resolves.
  void publish(Tid t, std::vector<proto::AddressEntry> addresses);

  enum class Outcome { kAnswered, kDeferred, kNoSuchTask };
  /// Answer `req` of `asker` about `t` now, or defer it until `t` publishes or
  /// exits. The caller adds the asker as a kPeerExit watcher unless kNoSuchTask.
  Outcome resolve(ClientConn& asker, std::uint32_t req, Tid t);

  /// `t` exited: fail its deferred Resolves, forget its addresses.
  void task_exited(Tid t);
  void conn_closed(ClientConn& c);

  /// Why `t` cannot be resolved: "task t0x100003 has exited", "... never existed".
  std::string why_not(Tid t) const;

  /// The published addresses of `t`, or nullptr.
  const std::vector<proto::AddressEntry>* addresses_of(Tid t) const {
    auto it = addresses_.find(t);
    return it == addresses_.end() ? nullptr : &it->second;
  }
  /// Called after `t` published or exited: the cluster answers the Resolves
  /// that other hosts deferred here.
  void set_settled_hook(std::function<void(Tid)> hook) { settled_hook_ = std::move(hook); }

 private:
  struct Pending {
    ConnId conn;
    std::uint32_t req;
  };
  void reply(ConnId conn, std::uint32_t req, Tid t, const std::vector<proto::AddressEntry>* addrs);

  ConnTable& conns_;
  const TaskTable& tasks_;
  std::unordered_map<Tid, std::vector<proto::AddressEntry>> addresses_;
  std::unordered_map<Tid, std::vector<Pending>> pending_;
  std::function<void(Tid)> settled_hook_;
};

}  // namespace cohort::daemon
