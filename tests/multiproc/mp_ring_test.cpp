// Whole jobs of real tasks: a token ring, a halo exchange, and master/worker
// with this test as the master.
#include <map>
#include <set>
#include <vector>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

class MpJobs : public MultiprocTest {};

TEST_F(MpJobs, EightTasksPassATokenRoundARing) {
  constexpr int kTasks = 8;
  constexpr int kLaps = 5;
  std::vector<Tid> tids = spawn_ok(bin("mp_task_ring"), {std::to_string(kLaps)}, kTasks);

  Message report = must_recv(tids[0], kTagReport);
  EXPECT_EQ(report.unpack<std::int32_t>(), kLaps);
  EXPECT_EQ(report.unpack<std::int64_t>(), std::int64_t{kLaps} * kTasks * (kTasks - 1) / 2)
      << "each lap adds 0 + 1 + ... + 7";

  bool unsupported = false;
  expect_clean_exits(wait_exits(tids), &unsupported);
  if (unsupported) GTEST_SKIP() << "a ring task reported it cannot run here";
}

// A halo exchange round a ring with messages past the eager limit: every
// task has two rendezvous sends and two receives in flight at once.
TEST_F(MpJobs, HaloExchangeWithNonBlockingRendezvous) {
  const std::string size = std::to_string(4 * eager_limit() + 3);
  std::vector<Tid> tids = spawn_ok(bin("mp_task_halo"), {"5", size}, 6);
  bool unsupported = false;
  expect_clean_exits(wait_exits(tids), &unsupported);
  if (unsupported) GTEST_SKIP() << "a halo task reported it cannot run here";
}

// Work is handed out dynamically: each result is answered with the next item
// for the worker that sent it, so the master always receives from any source.
TEST_F(MpJobs, MasterHandsOutAThousandItemsToWorkers) {
  constexpr int kWorkers = 4;
  constexpr int kItems = 1000;
  constexpr int kInFlightPerWorker = 2;
  std::vector<Tid> workers = spawn_ok(bin("mp_task_worker"), {}, kWorkers);
  Session& s = session();

  auto values_of = [](std::int32_t item) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(item % 17));
    for (std::size_t j = 0; j < v.size(); ++j) v[j] = std::int64_t{item} * 31 + std::int64_t(j);
    return v;
  };
  auto expected_sum = [&](std::int32_t item) {
    std::int64_t sum = 0;
    for (std::int64_t x : values_of(item)) sum += x * x;
    return sum;
  };
  std::int32_t next_item = 0;
  auto send_work = [&](Tid worker) {
    Message m;
    m << next_item << values_of(next_item);
    s.send(worker, kTagWork, m);
    ++next_item;
  };

  for (int k = 0; k < kInFlightPerWorker; ++k)
    for (Tid w : workers) send_work(w);

  std::set<std::int32_t> done;
  std::map<Tid, int> per_worker;
  for (int received = 0; received < kItems; ++received) {
    Message r = must_recv(kAnyTid, kTagResult);
    ASSERT_EQ(r.tag(), kTagResult);
    auto item = r.unpack<std::int32_t>();
    auto rank = r.unpack<std::int32_t>();
    auto sum = r.unpack<std::int64_t>();
    ASSERT_TRUE(rank >= 0 && rank < kWorkers) << "rank " << rank;
    ASSERT_EQ(r.source(), workers[rank]) << "result's source is not the worker of rank " << rank;
    ASSERT_TRUE(item >= 0 && item < next_item) << "result for item " << item << " never sent";
    ASSERT_TRUE(done.insert(item).second) << "item " << item << " answered twice";
    ASSERT_EQ(sum, expected_sum(item)) << "wrong result for item " << item;
    ++per_worker[r.source()];
    if (next_item < kItems) send_work(r.source());
  }
  EXPECT_EQ(done.size(), static_cast<std::size_t>(kItems));
  EXPECT_EQ(per_worker.size(), static_cast<std::size_t>(kWorkers))
      << "every worker started with work, so every worker must have answered";

  for (Tid w : workers) s.send(w, kTagStop, Message());
  bool unsupported = false;
  expect_clean_exits(wait_exits(workers), &unsupported);
  if (unsupported) GTEST_SKIP() << "a worker reported it cannot run here";
}

}  // namespace
}  // namespace cohort::mptest
