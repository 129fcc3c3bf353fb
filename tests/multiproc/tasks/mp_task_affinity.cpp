// mp_task_affinity: reports to its parent (kTagReport) what it was told and
// what the kernel says about where it may run: $COHORT_BIND ("core:3",
// "numa:0", "none"; "" when unset) and the CPUs of sched_getaffinity(), in
// increasing order. Then waits for kTagStop and exits 0.
#include <sched.h>

#include <cstdlib>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([](cohort::Session& s) {
    const char* bind = std::getenv("COHORT_BIND");
    cpu_set_t set;
    CPU_ZERO(&set);
    task_check(::sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity failed");
    std::vector<std::int32_t> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    cohort::Message report;
    report.pack(std::string(bind ? bind : "")).pack(cpus);
    s.send(s.parent(), kTagReport, report);
    (void)task_recv(s, s.parent(), kTagStop);
    return 0;
  });
}
