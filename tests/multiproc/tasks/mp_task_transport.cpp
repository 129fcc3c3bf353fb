// mp_task_transport: a pair (ranks 0 and 1 of a job of 2) that exchange one
// message — rank 0 sends first, so it chooses and rank 1 answers over the
// connection it accepted — then report to the parent (kTagReport) the
// transport each uses to the other and to the parent, and wait for kTagStop,
// so that the test can look at their choices while they are alive.
// With --wait it sends nothing: it only waits for kTagStop (a peer for tests
// whose senders must fail).
#include <cstring>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  const bool wait_only = argc > 1 && std::strcmp(argv[1], "--wait") == 0;
  return run_task([&](cohort::Session& s) {
    if (wait_only) {
      (void)task_recv(s, s.parent(), kTagStop);
      return 0;
    }
    task_check(s.job_size() == 2, "mp_task_transport wants a job of 2");
    const cohort::Tid peer = s.job_tids()[s.rank() == 0 ? 1 : 0];
    cohort::Message ping;
    ping.pack(std::int32_t{s.rank()});
    if (s.rank() == 0) {
      s.send(peer, kTagData, ping);
      (void)task_recv(s, peer, kTagData);
    } else {
      (void)task_recv(s, peer, kTagData);
      s.send(peer, kTagData, ping);
    }
    cohort::Message report;
    report.pack(s.transport_to(peer)).pack(s.transport_to(s.parent()));
    s.send(s.parent(), kTagReport, report);
    (void)task_recv(s, s.parent(), kTagStop);
    return 0;
  });
}
