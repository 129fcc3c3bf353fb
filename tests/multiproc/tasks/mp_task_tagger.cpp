// mp_task_tagger: sends its parent the messages of kTaggerTags in order, each
// {int32 rank, int32 index}, then {int32 rank} on kTagDone; then waits for
// kTagGo and exits 0.
#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    const cohort::Tid parent = s.parent();
    const auto rank = static_cast<std::int32_t>(s.rank());
    for (std::int32_t i = 0; i < static_cast<std::int32_t>(std::size(kTaggerTags)); ++i) {
      cohort::Message m;
      m << rank << i;
      s.send(parent, kTaggerTags[i], m);
    }
    cohort::Message done;
    done << rank;
    s.send(parent, kTagDone, done);
    task_recv(s, parent, kTagGo);
    return 0;
  });
}
