// mp_task_ring: the tasks of one job pass a token round a ring, `laps` times
// (argv[1], default 3). Each task adds its rank and checks the value it got
// against what the ranks before it must have added; rank 0 reports
// {laps, final value} to its parent on kTagReport.
#include <cstdlib>
#include <string>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  const int laps = argc > 1 ? std::atoi(argv[1]) : 3;
  return run_task([&](cohort::Session& s) {
    const int n = s.job_size();
    const int r = s.rank();
    const std::vector<cohort::Tid>& tids = s.job_tids();
    task_check(n >= 2, "the ring needs at least 2 tasks, job_size() is " + std::to_string(n));
    task_check(tids.size() == static_cast<std::size_t>(n),
               "job_tids() has " + std::to_string(tids.size()) + " entries for job_size() " +
                   std::to_string(n));
    task_check(tids[r] == s.tid(), "job_tids()[rank()] is not tid()");
    const cohort::Tid next = tids[(r + 1) % n];
    const cohort::Tid prev = tids[(r + n - 1) % n];
    const std::int64_t per_lap = static_cast<std::int64_t>(n) * (n - 1) / 2;

    std::int64_t token = 0;
    for (std::int32_t lap = 0; lap < laps; ++lap) {
      if (r == 0) {
        cohort::Message out;
        out << lap << token;
        s.send(next, kTagToken, out);
      }
      cohort::Message in = task_recv(s, prev, kTagToken);
      task_check(in.source() == prev, "token came from " + std::to_string(in.source()));
      std::int32_t got_lap = in.unpack<std::int32_t>();
      std::int64_t value = in.unpack<std::int64_t>();
      // What every rank before this one (this lap) and every earlier lap added.
      const std::int64_t expect = r == 0 ? (lap + 1) * per_lap
                                         : lap * per_lap + static_cast<std::int64_t>(r) * (r - 1) / 2;
      task_check(got_lap == lap && value == expect,
                 "rank " + std::to_string(r) + " lap " + std::to_string(lap) + ": got lap " +
                     std::to_string(got_lap) + " value " + std::to_string(value) +
                     ", expected " + std::to_string(expect));
      token = value;
      if (r != 0) {
        token += r;
        cohort::Message out;
        out << lap << token;
        s.send(next, kTagToken, out);
      }
    }
    if (r == 0) {
      cohort::Message report;
      report << static_cast<std::int32_t>(laps) << token;
      s.send(s.parent(), kTagReport, report);
    }
    return 0;
  });
}
