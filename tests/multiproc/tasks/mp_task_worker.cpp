// mp_task_worker: serves work items from its parent until kTagStop.
// Work (kTagWork): {int32 item, int64[] values}; result (kTagResult) to the
// sender: {int32 item, int32 rank, int64 sum of squares of values}.
#include <string>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    for (;;) {
      cohort::Message m = task_recv(s, s.parent(), cohort::kAnyTag);
      if (m.tag() == kTagStop) return 0;
      task_check(m.tag() == kTagWork, "unexpected tag " + std::to_string(m.tag()));
      std::int32_t item = m.unpack<std::int32_t>();
      std::vector<std::int64_t> values = m.unpack_vector<std::int64_t>();
      task_check(m.at_end(), "work item " + std::to_string(item) + " has trailing data");
      std::int64_t sum = 0;
      for (std::int64_t v : values) sum += v * v;
      cohort::Message r;
      r << item << static_cast<std::int32_t>(s.rank()) << sum;
      s.send(m.source(), kTagResult, r);
    }
  });
}
