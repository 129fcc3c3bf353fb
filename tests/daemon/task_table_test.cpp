#include "daemon/task_table.hpp"

#include <gtest/gtest.h>

namespace cohort::daemon {
namespace {

Task spawned(Tid t, std::uint32_t job, pid_t pid) {
  Task task;
  task.tid = t;
  task.job = job;
  task.pid = pid;
  task.spawned = true;
  return task;
}

TEST(DaemonTaskTable, TidsCountUpFromOne) {
  TaskTable tt(1);
  EXPECT_EQ(*tt.allocate_tid(), tid::make(1, 1));
  EXPECT_EQ(*tt.allocate_tid(), tid::make(1, 2));
  EXPECT_TRUE(tt.ever_existed(tid::make(1, 2)));
  EXPECT_FALSE(tt.ever_existed(tid::make(1, 3)));
  EXPECT_FALSE(tt.ever_existed(tid::make(2, 1)));
  EXPECT_FALSE(tt.ever_existed(tid::daemon_of(1)));
}

TEST(DaemonTaskTable, ExitKeepsARecordAndFreesThePid) {
  TaskTable tt(1);
  Tid a = *tt.allocate_tid();
  std::uint32_t job = tt.add_job({a});
  tt.add(spawned(a, job, 4242));
  EXPECT_EQ(tt.find_by_pid(4242)->tid, a);
  EXPECT_EQ(tt.child_count(), 1u);
  tt.mark_exited(a, ExitRecord{3, 0});
  EXPECT_EQ(tt.find(a), nullptr);
  EXPECT_EQ(tt.find_by_pid(4242), nullptr);
  ASSERT_NE(tt.exit_record(a), nullptr);
  EXPECT_EQ(tt.exit_record(a)->exit_code, 3);
  ASSERT_NE(tt.job_tids(job), nullptr);
  EXPECT_EQ(*tt.job_tids(job), std::vector<Tid>{a});
}

TEST(DaemonTaskTable, ExitRecordsAndFinishedJobsAreBounded) {
  TaskTable tt(1);
  Tid first = kNoTid;
  std::uint32_t first_job = 0;
  for (std::size_t i = 0; i < kMaxExitRecords + 10; ++i) {
    Tid t = *tt.allocate_tid();
    std::uint32_t job = tt.add_job({t});
    if (i == 0) first = t, first_job = job;
    Task task;
    task.tid = t;
    task.job = job;
    tt.add(std::move(task));
    tt.mark_exited(t, ExitRecord{0, 0});
  }
  EXPECT_EQ(tt.exit_record(first), nullptr);  // forgotten...
  EXPECT_TRUE(tt.ever_existed(first));        // ...but known to have existed
  EXPECT_EQ(tt.job_tids(first_job), nullptr);
}

TEST(DaemonTaskTable, AJobWithNoLiveRankIsFinishedWhenSealed) {
  TaskTable tt(1);
  Tid a = *tt.allocate_tid();
  std::uint32_t job = tt.add_job({a});
  tt.set_job_rank(job, 0, kNoTid);
  tt.seal_job(job);
  ASSERT_NE(tt.job_tids(job), nullptr);
  EXPECT_EQ((*tt.job_tids(job))[0], kNoTid);
}

}  // namespace
}  // namespace cohort::daemon
