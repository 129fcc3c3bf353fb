#include "daemon/task_table.hpp"

namespace cohort::daemon {

Result<Tid> TaskTable::allocate_tid() {
  if (counter_ >= tid::kLocalMask)
    return Status(Errc::kOutOfMemory, "host " + std::to_string(host_) +
                                          " has used all its task ids; halt and restart the VM");
  return tid::make(host_, ++counter_);
}

std::uint32_t TaskTable::add_job(std::vector<Tid> tids) {
  // Jobs of hosts other than 1 carry their host in the high bits, so that a
  // job spanning hosts keeps one number everywhere (add_job_as).
  std::uint32_t id = host_ == 1 ? next_job_++ : ((host_ << tid::kHostShift) | next_job_++);
  return add_job_as(id, std::move(tids));
}

std::uint32_t TaskTable::add_job_as(std::uint32_t id, std::vector<Tid> tids) {
  Job j;
  j.tids = std::move(tids);
  j.live = 0;  // counted as tasks are added
  jobs_.emplace(id, std::move(j));
  return id;
}

void TaskTable::set_job_rank(std::uint32_t job, std::int32_t rank, Tid t) {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || rank < 0 || static_cast<std::size_t>(rank) >= it->second.tids.size())
    return;
  it->second.tids[static_cast<std::size_t>(rank)] = t;
}

void TaskTable::seal_job(std::uint32_t job) {
  auto it = jobs_.find(job);
  if (it != jobs_.end() && it->second.live == 0) finished_jobs_.push_back(job);
}

Task& TaskTable::add(Task t) {
  if (t.spawned && t.pid > 0) by_pid_[t.pid] = t.tid;
  if (auto it = jobs_.find(t.job); it != jobs_.end()) ++it->second.live;
  Tid id = t.tid;
  return live_.insert_or_assign(id, std::move(t)).first->second;
}

Task* TaskTable::find(Tid t) {
  auto it = live_.find(t);
  return it == live_.end() ? nullptr : &it->second;
}

Task* TaskTable::find_by_pid(pid_t pid) {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : find(it->second);
}

void TaskTable::mark_exited(Tid t, ExitRecord rec) {
  auto it = live_.find(t);
  if (it == live_.end()) return;
  if (it->second.spawned) by_pid_.erase(it->second.pid);
  std::uint32_t job = it->second.job;
  live_.erase(it);

  exits_[t] = rec;
  exit_order_.push_back(t);
  while (exit_order_.size() > kMaxExitRecords) {
    exits_.erase(exit_order_.front());
    exit_order_.pop_front();
  }
  job_member_gone(job);
}

void TaskTable::job_member_gone(std::uint32_t job) {
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.live == 0) return;
  if (--it->second.live > 0) return;
  // The job is over; keep answering JobTids for it for a while.
  finished_jobs_.push_back(job);
  while (finished_jobs_.size() > kMaxFinishedJobs) {
    jobs_.erase(finished_jobs_.front());
    finished_jobs_.pop_front();
  }
}

bool TaskTable::ever_existed(Tid t) const noexcept {
  return tid::valid(t) && tid::host_of(t) == host_ && tid::local_of(t) >= 1 &&
         tid::local_of(t) <= counter_;
}

const ExitRecord* TaskTable::exit_record(Tid t) const {
  auto it = exits_.find(t);
  return it == exits_.end() ? nullptr : &it->second;
}

const std::vector<Tid>* TaskTable::job_tids(std::uint32_t job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? nullptr : &it->second.tids;
}

std::size_t TaskTable::task_count() const noexcept {
  std::size_t n = 0;
  for (auto& [tid, t] : live_)
    if (!t.is_tool) ++n;
  return n;
}

}  // namespace cohort::daemon
