// mp_task_sender COUNT [wait]: (with "wait": after kTagGo from its parent)
// sends COUNT messages {int32 i} to its parent on kTagData, then exits 0 at
// once, without waiting for anything.
#include <cstdlib>
#include <cstring>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 0;
  const bool wait = argc > 2 && std::strcmp(argv[2], "wait") == 0;
  return run_task([&](cohort::Session& s) {
    if (wait) task_recv(s, s.parent(), kTagGo);
    for (std::int32_t i = 0; i < count; ++i) {
      cohort::Message m;
      m << i;
      s.send(s.parent(), kTagData, m);
    }
    return 0;
  });
}
