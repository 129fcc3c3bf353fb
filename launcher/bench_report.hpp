// launcher/bench_report.hpp — the results of `cohort bench pingpong`: parsing
// what the benchmark programs print, the comparison table, the CSV file and
// its plot.
//
// A run measures several series. A series is one system (cohort, openmpi,
// fi_pingpong, ucx_perftest) over one transport label ("tcp", "shm",
// "ofi:tcp;ofi_rxm", "ucx:posix"); series with the same label are compared,
// cohort against each of the others (its references).
//
// Our two programs (bench/pingpong.cpp over cohort and bench/mpi/pingpong_mpi.c
// over Open MPI) print one line per message size:
//
//   pingpong size=1024 iters=1000 latency_us=12.345 bandwidth_MBps=82.95
//
// latency_us is one way (half the median round trip), bandwidth_MBps is
// size / one-way time in 10^6 bytes per second. Lines starting with '#' are
// comments; anything else is ignored. The fabric tools print their own formats,
// parsed by parse_fi_pingpong_line() and parse_ucx_perftest_line().
//
//   BenchResults r;
//   r.push_back({"cohort", "tcp", "", cohort_points});
//   r.push_back({"openmpi", "tcp", "mpirun ...", mpi_points});
//   print_comparison(stdout, r);
//   COHORT_RETURN_IF_ERROR(write_csv("pingpong.csv", r));
#pragma once

#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::cli {

struct PingpongPoint {
  std::size_t size = 0;
  long iters = 0;             ///< round trips per repetition (0 when unknown)
  double latency_us = 0;      ///< one way
  double bandwidth_mbps = 0;  ///< size / latency, 10^6 B/s
};

/// Results by message size.
using PingpongSeries = std::map<std::size_t, PingpongPoint>;

/// One measured curve.
struct BenchSeries {
  std::string system;     ///< cohort | openmpi | fi_pingpong | ucx_perftest
  std::string transport;  ///< the label series are paired by: tcp, shm, ofi:PROV, ucx:TLS
  std::string method;     ///< how it was run, shown under the table (not in the CSV)
  PingpongSeries points;
};

/// Every series of one invocation, in the order they were measured.
using BenchResults = std::vector<BenchSeries>;

/// The point in one "pingpong size=..." line, or nullopt for any other line.
std::optional<PingpongPoint> parse_pingpong_line(std::string_view line);

/// The transport named in bench_pingpong's first comment line
/// ("# cohort pingpong: t1 <-> t2 over shm, ..."), or nullopt.
std::optional<std::string> parse_pingpong_transport(std::string_view line);

/// fi_pingpong's result line, "bytes #sent #ack total time MB/sec usec/xfer
/// Mxfers/sec" ("8  10k  =10k  156k  1.60s  0.10  79.91  0.01"): the mean time
/// per one-way transfer over the whole run, in µs. nullopt for the header and
/// anything else, and when the acknowledged count differs from the sent count.
std::optional<double> parse_fi_pingpong_line(std::string_view line);

/// One row of `ucx_perftest -f -v` (CSV: "label,iterations,50.0_percentile_lat,
/// avg_lat,overall_lat,..."): the row's label and its overall mean one-way
/// latency in µs. nullopt for the header and anything else.
struct UcxPerftestRow {
  std::string label;
  double overall_lat_us = 0;
};
std::optional<UcxPerftestRow> parse_ucx_perftest_line(std::string_view line);

/// The median of `v` (the upper one of the middle two for an even count); 0 when empty.
double median(std::vector<double> v);

/// For each transport label, in order of first appearance: a heading, one
/// table row per size with every system's latency and bandwidth and the ratio
/// cohort / reference, and how each reference was run. Then one legend line.
void print_comparison(std::FILE* to, const BenchResults& results);

/// Write `system,transport,size,metric,value` rows (a header row first);
/// metric is latency_us or bandwidth_MBps.
Status write_csv(const std::string& path, const BenchResults& results);

/// Draw the CSV file `csv` into the PNG file `png` with gnuplot and
/// plot_pingpong.gp (bench/, copied next to the cohort executable by the build).
/// kUnsupported when gnuplot is not installed, kNotFound without the script.
Status plot_csv(const std::string& csv, const std::string& png, const std::string& title);

/// Read what write_csv() wrote (rows in any order; unknown metrics and blank
/// or '#' lines are skipped). Series come out in order of first appearance.
Result<BenchResults> read_csv(const std::string& path);

}  // namespace cohort::cli
