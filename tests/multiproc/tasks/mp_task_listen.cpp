// mp_task_listen: says what reaches it on kTagData, for mp_security_test.cpp,
// which connects to it with transport endpoints of its own (some with hello
// bytes that carry no valid token) rather than as a task.
//
// It sends its parent kTagReady (by then its endpoints are open and published),
// then receives on kTagData from any task. A message from another task is
// printed as "got <n> bytes from t<hex>" and reported to the parent on
// kTagReport (source, size). A message from the parent ends a round: the
// listener prints "nothing" if no other message came in it, acks with the
// count on kTagAck, and exits 0 when the parent's message holds 0 (1: another
// round follows). Every wait is bounded (task_recv).
#include <cstdint>
#include <cstdio>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    s.send(s.parent(), kTagReady, cohort::Message());
    std::int32_t got = 0;
    for (;;) {
      cohort::Message m = task_recv(s, cohort::kAnyTid, kTagData);
      if (m.source() != s.parent()) {
        std::printf("got %zu bytes from t%x\n", m.size(), static_cast<unsigned>(m.source()));
        std::fflush(stdout);
        cohort::Message r;
        r << std::int32_t{m.source()} << static_cast<std::uint64_t>(m.size());
        s.send(s.parent(), kTagReport, r);
        ++got;
        continue;
      }
      if (got == 0) {
        std::printf("nothing\n");
        std::fflush(stdout);
      }
      cohort::Message ack;
      ack << got;
      s.send(s.parent(), kTagAck, ack);
      if (m.unpack<std::int32_t>() == 0) return 0;
      got = 0;
    }
  });
}
