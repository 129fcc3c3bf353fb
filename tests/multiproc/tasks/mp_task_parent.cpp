// mp_task_parent: a program written to run both spawned by a master and on
// its own (PVM's `if (pvm_parent() == PvmNoParent)` pattern): if parent() names
// a task it sends it one message. Prints what happened — "parent: none",
// "parent: sent" or "parent: <error name>" — and exits 0. It must never hang.
#include <cstdio>
#include <string>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    std::string what = "none";
    if (s.parent() != cohort::kNoTid) {
      try {
        cohort::Message m;
        m << std::int32_t{s.rank()};
        s.send(s.parent(), kTagReport, m);
        what = "sent";
      } catch (const cohort::Error& e) {
        what = std::string(cohort::errc_name(e.errc()));
      }
    }
    std::printf("parent: %s\n", what.c_str());
    return 0;
  });
}
