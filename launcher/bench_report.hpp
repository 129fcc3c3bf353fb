// launcher/bench_report.hpp — the results of `cohort bench pingpong`: parsing
// what the benchmark programs print, and the comparison table and CSV file.
//
// Both benchmark programs (bench/pingpong.cpp over cohort and
// bench/mpi/pingpong_mpi.c over Open MPI) print one line per message size:
//
//   pingpong size=1024 iters=1000 latency_us=12.345 bandwidth_MBps=82.95
//
// latency_us is one way (half the median round trip), bandwidth_MBps is
// size / one-way time in 10^6 bytes per second. Lines starting with '#' are
// comments; anything else is ignored.
#pragma once

#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace cohort::cli {

struct PingpongPoint {
  std::size_t size = 0;
  long iters = 0;
  double latency_us = 0;
  double bandwidth_mbps = 0;
};

/// Results by message size.
using PingpongSeries = std::map<std::size_t, PingpongPoint>;

/// The point in one "pingpong size=..." line, or nullopt for any other line.
std::optional<PingpongPoint> parse_pingpong_line(std::string_view line);

/// The side-by-side table: size, latencies, ratio, bandwidths, ratio. `mpi` may
/// be empty (cohort only).
void print_comparison(std::FILE* to, const PingpongSeries& cohort, const PingpongSeries& mpi);

/// Write `system,transport,size,metric,value` rows for both series.
Status write_csv(const std::string& path, const std::string& transport,
                 const PingpongSeries& cohort, const PingpongSeries& mpi);

}  // namespace cohort::cli
