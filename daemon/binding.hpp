// daemon/binding.hpp — where spawned tasks run: planning CPU bindings on a
// Topology, and applying one to a process being started.
//
// Planning (BindPlanner, pure bookkeeping, testable on synthetic topologies):
//   core  each task gets one core: round robin, starting after the core
//         handed out last, over the cores no other bound task of this daemon
//         holds; once every core is held, over the least used ones.
//   numa  each task gets one NUMA node, round robin over the least used.
//   auto  core while this host's spawned tasks (running + new) do not
//         outnumber its cores; otherwise none (oversubscribed: the kernel
//         balances better than fixed placement).
//   none  not bound.
// plan() reserves nothing; assign() records a task once it runs and
// release() forgets it when it exits, so later plans avoid its core.
// Without a known topology (no hwloc) nothing is bound: auto quietly, core and
// numa with a note the daemon logs as a warning (the job runs, unbound).
//
// Applying (AffinityScope): the daemon sets its own thread's affinity to the
// task's CPUs around posix_spawn() and restores it after. The child inherits
// the mask at clone(), so the task is bound from its first instruction: no
// window where it runs (and first-touches memory, or starts threads)
// elsewhere, as binding the pid after the spawn would leave. The daemon is
// single-threaded, so borrowing its mask for the call is safe. Plans on a
// topology that is not this machine's (HWLOC_XMLFILE) are never applied.
//
// A task sees its binding in COHORT_BIND ("core:3", "numa:0", "none"), which
// the daemon always sets, and through sched_getaffinity().
#pragma once

#include <cohort/tid.hpp>

#include <sched.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"
#include "daemon/topology.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

inline constexpr const char* kBindEnv = "COHORT_BIND";

struct Binding {
  enum class Kind : std::uint8_t { kNone, kCore, kNuma };
  Kind kind = Kind::kNone;
  std::uint32_t index = 0;     // the core or NUMA node (hwloc logical index)
  std::vector<unsigned> cpus;  // OS indexes of its PUs

  bool bound() const noexcept { return kind != Kind::kNone; }
  /// COHORT_BIND's value: "core:3", "numa:1", "none".
  std::string describe() const;
};

/// "auto", "none", "core", "numa".
std::string_view bind_name(proto::BindTo b) noexcept;

class BindPlanner {
 public:
  explicit BindPlanner(Topology topology);

  const Topology& topology() const noexcept { return topo_; }
  /// True when plans may be applied: a known topology of this very machine.
  bool can_apply() const noexcept { return topo_.known() && topo_.this_system; }

  /// Bindings for `count` new tasks under `policy` when `running` spawned
  /// tasks already run on this host. `note` (may be null) receives why the
  /// tasks are not bound as asked, or stays empty.
  std::vector<Binding> plan(proto::BindTo policy, std::size_t count, std::size_t running,
                            std::string* note) const;
  /// Task `t` runs with `b` (a bound one: its core or node is now held).
  void assign(Tid t, const Binding& b);
  /// Task `t` has exited: its core or node is free again.
  void release(Tid t);
  /// Bound tasks on core / NUMA node `i` (for tests and logs).
  std::uint32_t core_users(std::uint32_t i) const noexcept;
  std::uint32_t numa_users(std::uint32_t i) const noexcept;

 private:
  struct Held {
    Binding::Kind kind;
    std::uint32_t index;
  };
  /// Round robin from `start` over the least used entries of `users`.
  static std::uint32_t pick(const std::vector<std::uint32_t>& users, std::uint32_t start);

  Topology topo_;
  std::vector<std::uint32_t> core_users_, numa_users_;
  std::uint32_t next_core_ = 0, next_numa_ = 0;
  std::unordered_map<Tid, Held> held_;
};

/// plan() for a spawn by `who`, ready to apply: bindings that cannot be
/// applied on this machine come back unbound. Logs once per spawn why the
/// tasks are not bound as asked: a warning when core or numa was asked for
/// explicitly, an info line for auto.
std::vector<Binding> plan_spawn(const BindPlanner& planner, proto::BindTo policy,
                                std::size_t count, std::size_t running, const std::string& who);

/// Sets the calling thread's CPU affinity to `cpus` for the scope's lifetime
/// (see above); restores the previous mask on destruction.
class AffinityScope {
 public:
  /// kInvalidArgument when the mask cannot be set (CPUs not allowed here).
  static Result<AffinityScope> bind(std::span<const unsigned> cpus);
  AffinityScope(AffinityScope&& o) noexcept;
  AffinityScope& operator=(AffinityScope&&) = delete;
  ~AffinityScope();

 private:
  AffinityScope() = default;
  cpu_set_t* saved_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cohort::daemon
