// mp_task_halo ITERATIONS SIZE: the tasks of a job, in a ring, exchange SIZE
// bytes with both neighbours per iteration, the way a stencil code swaps halos:
// irecv from both sides, isend to both sides, wait_all. With SIZE past the
// eager limit every message is a rendezvous that completes only while its
// sender is itself waiting for its own sends. Each received halo is checked
// (pattern seeded by sender rank, direction and iteration).
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

namespace {
constexpr int kTagRightward = 31;  // sent to rank+1
constexpr int kTagLeftward = 32;   // sent to rank-1
std::uint32_t seed(int rank, int tag, int iter) {
  return static_cast<std::uint32_t>(rank * 7919 + tag * 131 + iter);
}
}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::size_t size = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 256 * 1024;
  return run_task([&](cohort::Session& s) {
    const int n = s.job_size();
    const int r = s.rank();
    const std::vector<cohort::Tid>& tids = s.job_tids();
    const int next = (r + 1) % n;
    const int prev = (r + n - 1) % n;
    std::vector<std::byte> from_prev(size), from_next(size), to_next(size), to_prev(size);
    for (int it = 0; it < iterations; ++it) {
      fill_pattern(to_next, seed(r, kTagRightward, it));
      fill_pattern(to_prev, seed(r, kTagLeftward, it));
      std::vector<cohort::Request> reqs;
      reqs.push_back(s.irecv(tids[prev], kTagRightward, std::span<std::byte>(from_prev)));
      reqs.push_back(s.irecv(tids[next], kTagLeftward, std::span<std::byte>(from_next)));
      reqs.push_back(s.isend(tids[next], kTagRightward, std::span<const std::byte>(to_next)));
      reqs.push_back(s.isend(tids[prev], kTagLeftward, std::span<const std::byte>(to_prev)));
      s.wait_all(reqs);
      task_check(reqs[0].info().size == size && reqs[1].info().size == size,
                 "iteration " + std::to_string(it) + ": halo of the wrong size");
      long long bad_prev = pattern_mismatch(from_prev, seed(prev, kTagRightward, it));
      long long bad_next = pattern_mismatch(from_next, seed(next, kTagLeftward, it));
      task_check(bad_prev < 0 && bad_next < 0,
                 "iteration " + std::to_string(it) + ": halo from rank " +
                     std::to_string(bad_prev >= 0 ? prev : next) + " differs at byte " +
                     std::to_string(bad_prev >= 0 ? bad_prev : bad_next));
    }
    return 0;
  });
}
