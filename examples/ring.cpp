// ring — a token goes round all the tasks of a job, K times.
//
//   cohort run -n 4 build/bin/ring 100
//
// Rank r receives the token from rank r-1 and passes it to rank r+1 (the last
// rank passes it back to rank 0). Every task adds one to the token as it
// passes it on, so after K laps of N tasks rank 0 must hold K * N. Messages
// between two tasks never overtake each other, so no lap can get mixed up
// with the next one.
#include <cohort/cohort.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {
constexpr int kTagToken = 1;
}  // namespace

int main(int argc, char** argv) try {
  cohort::Session s;
  const int laps = argc > 1 ? std::stoi(argv[1]) : 10;
  const int n = s.job_size();
  const std::vector<cohort::Tid>& tids = s.job_tids();
  const cohort::Tid next = tids[static_cast<std::size_t>((s.rank() + 1) % n)];
  const cohort::Tid prev = tids[static_cast<std::size_t>((s.rank() + n - 1) % n)];

  auto pass = [&](std::int64_t token) {
    cohort::Message m;
    m << token + 1;
    s.send(next, kTagToken, m);
  };
  auto take = [&] { return s.recv(prev, kTagToken).unpack<std::int64_t>(); };

  std::int64_t token = 0;
  for (int lap = 0; lap < laps; ++lap) {
    if (s.rank() == 0) {
      pass(token);     // rank 0 starts each lap...
      token = take();  // ...and gets the token back at the end of it
    } else {
      pass(take());
    }
  }
  if (s.rank() != 0) return 0;

  const std::int64_t expect = std::int64_t{laps} * n;
  std::printf("token went round %d tasks %d times: %lld (expected %lld) %s\n", n, laps,
              static_cast<long long>(token), static_cast<long long>(expect),
              token == expect ? "ok" : "WRONG");
  return token == expect ? 0 : 1;
} catch (const cohort::Error& e) {
  std::fprintf(stderr, "ring: %s\n", e.what());
  return 1;
}
