// daemon/task_table.hpp — every task this daemon knows: live ones, jobs, and
// the records of those that exited.
//
// A task is either *spawned* (a child process this daemon started; it exits
// when the daemon reaps it) or *enrolled by hand* (a program, or the `cohort`
// tool, that connected with claimed_tid 0; it exits when its connection
// closes). Tids are tid::make(host, n) with n counting from 1 and never reused
// while the daemon lives, so any tid of this host at or below the counter that
// is not alive has exited — even when its exit record was already evicted.
//
// Jobs are the sets spawned together (a hand-started task is a job of one);
// job tids are kept in rank order, with kNoTid for a rank that failed to
// start. Exit records and finished jobs are bounded (kMaxExitRecords,
// kMaxFinishedJobs): the oldest are forgotten first.
//
// Pure bookkeeping: no system calls, no sending. Single-threaded.
#pragma once

#include <sys/types.h>

#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"
#include "daemon/client_conn.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

inline constexpr std::size_t kMaxExitRecords = 65536;
inline constexpr std::size_t kMaxFinishedJobs = 65536;

struct Task {
  Tid tid = kNoTid;
  Tid parent = kNoTid;
  std::uint32_t job = 0;
  std::int32_t rank = 0;
  std::int32_t job_size = 1;
  pid_t pid = 0;
  std::string program;
  proto::TaskState state = proto::TaskState::kStarting;
  bool spawned = false;  // our child: exits when reaped
  bool is_tool = false;  // the `cohort` command: never listed
  ConnId conn = 0;       // its enrolled connection, 0 while it has none
  /// Transports it reported for its peers (TransportChoice), one per peer.
  std::vector<proto::TransportChoice> transports;
};

struct ExitRecord {
  std::int32_t exit_code = 0;  // -1 when killed by a signal (or unknown)
  std::int32_t signal = 0;
};

class TaskTable {
 public:
  explicit TaskTable(std::uint32_t host) : host_(host) {}

  std::uint32_t host() const noexcept { return host_; }

  /// The next tid of this host; kOutOfMemory once the 20-bit space is spent.
  Result<Tid> allocate_tid();
  /// A new job whose ranks are `tids` (kNoTid for ranks that never started).
  std::uint32_t add_job(std::vector<Tid> tids);
  /// Record job `id` of another host (a job spanning hosts) with its tids.
  std::uint32_t add_job_as(std::uint32_t id, std::vector<Tid> tids);
  /// Replace the tid of `rank` in `job` (a rank that failed to start becomes kNoTid).
  void set_job_rank(std::uint32_t job, std::int32_t rank, Tid tid);
  /// Called once all of a job's tasks were added: a job none of whose ranks
  /// started is finished at once (so that it is forgotten in turn).
  void seal_job(std::uint32_t job);

  Task& add(Task t);
  Task* find(Tid t);
  Task* find_by_pid(pid_t pid);
  /// Record the exit of a live task: forget it, keep an ExitRecord.
  void mark_exited(Tid t, ExitRecord rec);

  /// Was this tid ever handed out here? (Alive or exited.)
  bool ever_existed(Tid t) const noexcept;
  const ExitRecord* exit_record(Tid t) const;
  /// The job's tids in rank order, or nullptr for an unknown (or forgotten) job.
  const std::vector<Tid>* job_tids(std::uint32_t job) const;

  const std::map<Tid, Task>& live() const noexcept { return live_; }
  /// Live tasks that are not tools.
  std::size_t task_count() const noexcept;
  /// Live tasks that are our children (what a halt waits for).
  std::size_t child_count() const noexcept { return by_pid_.size(); }

 private:
  struct Job {
    std::vector<Tid> tids;
    std::size_t live = 0;
  };
  void job_member_gone(std::uint32_t job);

  std::uint32_t host_;
  std::uint32_t counter_ = 0;
  std::uint32_t next_job_ = 1;
  std::map<Tid, Task> live_;               // ordered: ListTasks answers by tid
  std::unordered_map<pid_t, Tid> by_pid_;  // spawned tasks only
  std::unordered_map<Tid, ExitRecord> exits_;
  std::deque<Tid> exit_order_;
  std::unordered_map<std::uint32_t, Job> jobs_;
  std::deque<std::uint32_t> finished_jobs_;
};

}  // namespace cohort::daemon
