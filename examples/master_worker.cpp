// master_worker — rank 0 hands out work, the other ranks do it.
//
//   cohort run -n 4 build/bin/master_worker [INTERVALS] [CHUNKS]
//
// The work: pi as the integral of 4 / (1 + x^2) from 0 to 1 by the midpoint
// rule, cut into CHUNKS pieces. The master gives every worker one piece, and
// each time a result comes back it answers that worker with the next piece
// (or "stop"), so fast workers take more pieces than slow ones. The master
// checks the sum against pi and exits non-zero when it is off.
#include <cohort/cohort.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

namespace {

constexpr int kTagWork = 1;    // master -> worker: a chunk index
constexpr int kTagResult = 2;  // worker -> master: the chunk's partial sum
constexpr int kTagStop = 3;    // master -> worker: no more work
constexpr double kPi = 3.14159265358979323846;

// The midpoint-rule sum over chunk `c` of `chunks`, for `intervals` in all.
double integrate(std::int64_t c, std::int64_t chunks, std::int64_t intervals) {
  const double h = 1.0 / static_cast<double>(intervals);
  const std::int64_t begin = intervals * c / chunks, end = intervals * (c + 1) / chunks;
  double sum = 0;
  for (std::int64_t i = begin; i < end; ++i) {
    double x = (static_cast<double>(i) + 0.5) * h;
    sum += 4.0 / (1.0 + x * x);
  }
  return sum * h;
}

void worker(cohort::Session& s, cohort::Tid master, std::int64_t chunks, std::int64_t intervals) {
  for (;;) {
    cohort::Message m = s.recv(master, cohort::kAnyTag);
    if (m.tag() == kTagStop) return;
    auto c = m.unpack<std::int64_t>();
    cohort::Message r;
    r << c << integrate(c, chunks, intervals);
    s.send(master, kTagResult, r);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  cohort::Session s;
  const std::int64_t intervals = argc > 1 ? std::stoll(argv[1]) : 10'000'000;
  const std::int64_t chunks = argc > 2 ? std::stoll(argv[2]) : 200;
  const cohort::Tid master = s.job_tids()[0];
  if (s.rank() != 0) {
    worker(s, master, chunks, intervals);
    return 0;
  }

  double pi = 0;
  if (s.job_size() == 1) {
    for (std::int64_t c = 0; c < chunks; ++c) pi += integrate(c, chunks, intervals);
  } else {
    std::int64_t next = 0, done = 0;
    auto give = [&](cohort::Tid w) {
      cohort::Message m;
      if (next < chunks) {
        m << next++;
        s.send(w, kTagWork, m);
      } else {
        s.send(w, kTagStop, m);
      }
    };
    for (int r = 1; r < s.job_size(); ++r) give(s.job_tids()[static_cast<std::size_t>(r)]);
    while (done < chunks) {
      cohort::Message m = s.recv(cohort::kAnyTid, kTagResult);
      (void)m.unpack<std::int64_t>();  // the chunk index; a real program would record it
      pi += m.unpack<double>();
      ++done;
      give(m.source());  // the next chunk, or stop, to whoever just finished
    }
  }
  const double err = std::fabs(pi - kPi);
  std::printf("pi ~ %.12f from %lld intervals in %lld chunks on %d tasks; error %.2e %s\n", pi,
              static_cast<long long>(intervals), static_cast<long long>(chunks), s.job_size(), err,
              err < 1e-9 ? "ok" : "WRONG");
  return err < 1e-9 ? 0 : 1;
} catch (const cohort::Error& e) {
  std::fprintf(stderr, "master_worker: %s\n", e.what());
  return 1;
}
