// bench/pingpong.cpp — the cohort half of `cohort bench pingpong`.
//
// Two tasks (ranks 0 and 1 of a job) bounce a raw byte message back and
// forth. For each size: a warm-up, then R repetitions of `iters` round trips,
// each repetition timed as a whole; the median repetition gives the one-way
// latency (half a round trip) and the bandwidth (size / one-way time).
// Rank 0 prints one line per size, the form bench/mpi/pingpong_mpi.c shares:
//
//   pingpong size=1024 iters=1000 latency_us=12.345 bandwidth_MBps=82.95
//
// Usage (normally started by `cohort bench pingpong`, or by hand):
//   cohort run -n 2 build/bin/bench_pingpong [--sizes 0,8,1K] [--iters N] [--reps R]
#include <cohort/cohort.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace {

constexpr int kTag = 7;

struct Plan {
  std::vector<std::size_t> sizes;
  long iters = 1000;  // round trips per repetition up to 64 KiB
  int reps = 5;
};

// "64K", "1M", "4096" -> bytes; 0 with *ok = false on nonsense.
std::size_t parse_size(const std::string& s, bool* ok) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  *ok = end != s.c_str();
  if (*end == 'K' || *end == 'k') v <<= 10, ++end;
  else if (*end == 'M' || *end == 'm') v <<= 20, ++end;
  if (*end != '\0') *ok = false;
  return static_cast<std::size_t>(v);
}

bool parse_plan(int argc, char** argv, Plan* p) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string opt = argv[i], val = argv[i + 1];
    if (opt == "--iters") {
      p->iters = std::max(1L, std::atol(val.c_str()));
    } else if (opt == "--reps") {
      p->reps = std::max(1, std::atoi(val.c_str()));
    } else if (opt == "--sizes") {
      std::size_t pos = 0;
      while (pos <= val.size()) {
        std::size_t comma = std::min(val.find(',', pos), val.size());
        bool ok = false;
        p->sizes.push_back(parse_size(val.substr(pos, comma - pos), &ok));
        if (!ok) return false;
        pos = comma + 1;
      }
    } else {
      return false;
    }
  }
  if ((argc - 1) % 2 != 0) return false;
  if (p->sizes.empty()) {
    p->sizes.push_back(0);  // the default of `cohort bench pingpong` too
    for (std::size_t s = 1; s <= (16u << 20); s *= 4) p->sizes.push_back(s);
  }
  return true;
}

// Fewer round trips for big messages, so that every size takes similar time.
long iters_for(std::size_t size, long base) {
  if (size <= 65536) return base;
  return std::max(3L, static_cast<long>(static_cast<double>(base) * 65536.0 / size));
}

}  // namespace

int main(int argc, char** argv) try {
  Plan plan;
  if (!parse_plan(argc, argv, &plan)) {
    std::fprintf(stderr, "usage: bench_pingpong [--sizes 0,8,1K,1M] [--iters N] [--reps R]\n");
    return 2;
  }
  cohort::Session s;
  if (s.job_size() != 2) {
    std::fprintf(stderr, "bench_pingpong: needs exactly 2 tasks, got %d\n", s.job_size());
    return 2;
  }
  const bool ping = s.rank() == 0;
  const cohort::Tid peer = s.job_tids()[ping ? 1 : 0];
  const std::size_t max_size = *std::max_element(plan.sizes.begin(), plan.sizes.end());
  std::vector<std::byte> buf(std::max<std::size_t>(max_size, 1));
  std::memset(buf.data(), 0x5a, buf.size());  // touch every page before timing

  // One round trip; the receive lands straight in `buf`.
  auto round_trip = [&](std::size_t size) {
    std::span<std::byte> msg(buf.data(), size);
    if (ping) {
      s.send(peer, kTag, msg);
      if (s.recv(peer, kTag, msg).size != size) throw std::runtime_error("short message");
    } else {
      if (s.recv(peer, kTag, msg).size != size) throw std::runtime_error("short message");
      s.send(peer, kTag, msg);
    }
  };

  if (ping) {
    round_trip(0);  // connect before asking which transport was chosen
    std::printf("# cohort pingpong: t%x <-> t%x over %s, %d repetitions per size, median\n",
                static_cast<unsigned>(s.tid()), static_cast<unsigned>(peer),
                s.transport_to(peer).c_str(), plan.reps);
    std::fflush(stdout);
  } else {
    round_trip(0);
  }

  std::vector<double> rep_us(static_cast<std::size_t>(plan.reps));
  for (std::size_t size : plan.sizes) {
    const long iters = iters_for(size, plan.iters);
    for (long i = 0; i < std::max(1L, iters / 10); ++i) round_trip(size);  // warm-up
    for (double& t : rep_us) {
      auto start = std::chrono::steady_clock::now();
      for (long i = 0; i < iters; ++i) round_trip(size);
      std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
      t = took.count() / static_cast<double>(iters);
    }
    if (!ping) continue;
    std::sort(rep_us.begin(), rep_us.end());
    const double one_way = rep_us[rep_us.size() / 2] / 2;
    std::printf("pingpong size=%zu iters=%ld latency_us=%.3f bandwidth_MBps=%.3f\n", size, iters,
                one_way, static_cast<double>(size) / one_way);
    std::fflush(stdout);  // one line at a time: the daemon forwards lines as they come
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_pingpong: %s\n", e.what());
  return 1;
}
