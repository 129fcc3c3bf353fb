#include "daemon/binding.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace cohort::daemon {

std::string Binding::describe() const {
  switch (kind) {
    case Kind::kCore:
      return "core:" + std::to_string(index);
    case Kind::kNuma:
      return "numa:" + std::to_string(index);
    case Kind::kNone:
      break;
  }
  return "none";
}

std::string_view bind_name(proto::BindTo b) noexcept {
  switch (b) {
    case proto::BindTo::kAuto: return "auto";
    case proto::BindTo::kNone: return "none";
    case proto::BindTo::kCore: return "core";
    case proto::BindTo::kNuma: return "numa";
  }
  return "unknown";
}

BindPlanner::BindPlanner(Topology topology)
    : topo_(std::move(topology)),
      core_users_(topo_.core_cpus.size(), 0),
      numa_users_(topo_.numa_cpus.size(), 0) {}

std::uint32_t BindPlanner::pick(const std::vector<std::uint32_t>& users, std::uint32_t start) {
  const auto n = static_cast<std::uint32_t>(users.size());
  const std::uint32_t least = *std::min_element(users.begin(), users.end());
  for (std::uint32_t k = 0; k < n; ++k) {
    const std::uint32_t i = (start + k) % n;
    if (users[i] == least) return i;
  }
  return start % n;  // not reached: some entry holds the minimum
}

std::vector<Binding> BindPlanner::plan(proto::BindTo policy, std::size_t count,
                                       std::size_t running, std::string* note) const {
  std::vector<Binding> out(count);
  auto say = [&](std::string why) {
    if (note) *note = std::move(why);
  };
  if (policy == proto::BindTo::kNone || count == 0) return out;
  if (!topo_.known()) {
    // Asked for explicitly, it deserves a word; auto just means "if you can".
    if (policy != proto::BindTo::kAuto) say(topo_.note);
    return out;
  }
  Binding::Kind kind = Binding::Kind::kCore;
  if (policy == proto::BindTo::kNuma) kind = Binding::Kind::kNuma;
  if (policy == proto::BindTo::kAuto && running + count > topo_.cores) {
    say("oversubscribed (" + std::to_string(running + count) + " tasks on " +
        std::to_string(topo_.cores) + " cores): not bound");
    return out;
  }
  const bool core = kind == Binding::Kind::kCore;
  std::vector<std::uint32_t> users = core ? core_users_ : numa_users_;
  const auto& cpus = core ? topo_.core_cpus : topo_.numa_cpus;
  if (users.empty()) return out;
  std::uint32_t next = core ? next_core_ : next_numa_;
  for (Binding& b : out) {
    const std::uint32_t i = pick(users, next);
    ++users[i];
    next = i + 1;
    b.kind = kind;
    b.index = i;
    b.cpus = cpus[i];
  }
  return out;
}

void BindPlanner::assign(Tid t, const Binding& b) {
  if (!b.bound()) return;
  const bool core = b.kind == Binding::Kind::kCore;
  auto& users = core ? core_users_ : numa_users_;
  if (b.index >= users.size()) return;
  release(t);  // a tid holds one place at most
  ++users[b.index];
  (core ? next_core_ : next_numa_) = b.index + 1;
  held_[t] = Held{b.kind, b.index};
}

void BindPlanner::release(Tid t) {
  auto it = held_.find(t);
  if (it == held_.end()) return;
  auto& users = it->second.kind == Binding::Kind::kCore ? core_users_ : numa_users_;
  if (it->second.index < users.size() && users[it->second.index] > 0) --users[it->second.index];
  held_.erase(it);
}

std::uint32_t BindPlanner::core_users(std::uint32_t i) const noexcept {
  return i < core_users_.size() ? core_users_[i] : 0;
}

std::uint32_t BindPlanner::numa_users(std::uint32_t i) const noexcept {
  return i < numa_users_.size() ? numa_users_[i] : 0;
}

std::vector<Binding> plan_spawn(const BindPlanner& planner, proto::BindTo policy,
                                std::size_t count, std::size_t running, const std::string& who) {
  std::string note;
  std::vector<Binding> plan = planner.plan(policy, count, running, &note);
  const bool bound = std::any_of(plan.begin(), plan.end(), [](const Binding& b) {
    return b.bound();
  });
  if (bound && !planner.can_apply()) {
    note = planner.topology().note;
    for (Binding& b : plan) b = Binding{};
  }
  if (!note.empty()) {
    if (policy == proto::BindTo::kCore || policy == proto::BindTo::kNuma) {
      COHORT_LOG_WARN("daemon.spawn") << "spawn for " << who << ": --bind-to "
                                      << bind_name(policy) << " not honoured: " << note;
    } else {
      COHORT_LOG_INFO("daemon.spawn") << "spawn for " << who << ": " << note;
    }
  }
  return plan;
}

// ---- applying ------------------------------------------------------------------------

Result<AffinityScope> AffinityScope::bind(std::span<const unsigned> cpus) {
  if (cpus.empty()) return Status(Errc::kInvalidArgument, "no CPU to bind to");
  // Dynamically sized sets: CPU numbers may pass CPU_SETSIZE on large machines.
  const unsigned top = *std::max_element(cpus.begin(), cpus.end());
  const std::size_t ncpus = std::max<std::size_t>(top + 1, CPU_SETSIZE);
  const std::size_t size = CPU_ALLOC_SIZE(ncpus);
  cpu_set_t* saved = CPU_ALLOC(ncpus);
  cpu_set_t* want = CPU_ALLOC(ncpus);
  auto fail = [&](Status st) {
    if (saved) CPU_FREE(saved);
    if (want) CPU_FREE(want);
    return st;
  };
  if (saved == nullptr || want == nullptr) return fail(Status(Errc::kOutOfMemory, "CPU_ALLOC"));
  if (::sched_getaffinity(0, size, saved) != 0)
    return fail(errno_status(Errc::kInternal, "sched_getaffinity", errno));
  CPU_ZERO_S(size, want);
  for (unsigned c : cpus) CPU_SET_S(c, size, want);
  if (::sched_setaffinity(0, size, want) != 0) {
    const int err = errno;
    std::string list;
    for (unsigned c : cpus) list += (list.empty() ? "" : ",") + std::to_string(c);
    return fail(errno_status(Errc::kInvalidArgument, "sched_setaffinity(CPUs " + list + ")", err));
  }
  CPU_FREE(want);
  AffinityScope scope;
  scope.saved_ = saved;
  scope.size_ = size;
  return scope;
}

AffinityScope::AffinityScope(AffinityScope&& o) noexcept : saved_(o.saved_), size_(o.size_) {
  o.saved_ = nullptr;
}

AffinityScope::~AffinityScope() {
  if (saved_ == nullptr) return;
  (void)::sched_setaffinity(0, size_, saved_);  // the mask we had: always allowed
  CPU_FREE(saved_);
}

}  // namespace cohort::daemon
