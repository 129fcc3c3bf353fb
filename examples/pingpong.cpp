// pingpong — how long does a message take from one task to another?
//
//   cohort run -n 2 build/bin/pingpong
//
// Rank 0 sends a message of raw bytes to rank 1, which sends it straight
// back; half the round trip is the one-way latency. Raw byte messages
// (Session::send with a span) skip typed packing: the payload goes from our
// buffer to the wire and from the wire into the receiver's buffer.
// For careful measurements use `cohort bench pingpong` (bench/pingpong.cpp).
#include <cohort/cohort.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <span>
#include <vector>

namespace {
constexpr int kTag = 1;
}  // namespace

int main() try {
  cohort::Session s;
  if (s.job_size() != 2) {
    std::fprintf(stderr, "pingpong: run me as two tasks: cohort run -n 2 pingpong\n");
    return 2;
  }
  const cohort::Tid peer = s.job_tids()[static_cast<std::size_t>(1 - s.rank())];
  const std::size_t sizes[] = {0, 8, 1024, 64 * 1024, 1024 * 1024};
  std::vector<std::byte> buf(sizes[std::size(sizes) - 1]);

  if (s.rank() == 0) std::printf("%10s %14s %12s\n", "bytes", "latency (us)", "MB/s");
  for (std::size_t size : sizes) {
    std::span<std::byte> msg(buf.data(), size);
    const int iters = size >= 65536 ? 50 : 1000;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      if (s.rank() == 0) {
        s.send(peer, kTag, msg);
        s.recv(peer, kTag, msg);  // receive straight into our buffer
      } else {
        s.recv(peer, kTag, msg);
        s.send(peer, kTag, msg);
      }
    }
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    if (s.rank() == 0) {
      double one_way_us = took.count() / iters / 2;
      std::printf("%10zu %14.2f %12.1f\n", size, one_way_us,
                  size ? static_cast<double>(size) / one_way_us : 0.0);
    }
  }
  return 0;
} catch (const cohort::Error& e) {
  std::fprintf(stderr, "pingpong: %s\n", e.what());
  return 1;
}
