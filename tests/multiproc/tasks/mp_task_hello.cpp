// mp_task_hello [--fail-rank R CODE]: prints "hello from rank R of N" on
// stdout and "note from rank R" on stderr, and exits 0 — or CODE on rank R,
// for testing exit-code propagation.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  int fail_rank = -1;
  int fail_code = 0;
  if (argc > 3 && std::strcmp(argv[1], "--fail-rank") == 0) {
    fail_rank = std::atoi(argv[2]);
    fail_code = std::atoi(argv[3]);
  }
  return run_task([&](cohort::Session& s) {
    std::printf("hello from rank %d of %d\n", s.rank(), s.job_size());
    std::fflush(stdout);
    std::fprintf(stderr, "note from rank %d\n", s.rank());
    std::fflush(stderr);
    return s.rank() == fail_rank ? fail_code : 0;
  });
}
