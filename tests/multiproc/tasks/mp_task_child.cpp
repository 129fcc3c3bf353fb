// mp_task_child: reports {int32 rank, int32 job_size, int32 parent, int32 tid}
// to its parent on kTagReport, waits for kTagGo, exits 0.
#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    cohort::Message m;
    m << static_cast<std::int32_t>(s.rank()) << static_cast<std::int32_t>(s.job_size())
      << static_cast<std::int32_t>(s.parent()) << static_cast<std::int32_t>(s.tid());
    s.send(s.parent(), kTagReport, m);
    task_recv(s, s.parent(), kTagGo);
    return 0;
  });
}
