// bench/cluster_bench_report.hpp — the samples of cohort_cluster_bench and how
// they are shown: a table with cohort / Open MPI ratios, and a CSV.
//
//   ClusterReport r;
//   r.add("cohort", {"boot", 4, 4}, 812.0);        // one repetition, milliseconds
//   r.add("openmpi", {"boot", 4, 4}, 301.5);
//   r.print_table(stdout, "openmpi");
//   r.write_csv("cluster.csv");
//
// Every figure is the median of its repetitions. Nothing here judges a timing.
#pragma once

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace cohort::bench {

/// One measured thing: "boot" (a VM of `hosts`), "add" (one more host to a VM
/// of `hosts`), "spawn" (`tasks` tasks of /bin/true over `hosts`) or
/// "spawn_sleep" (the same with tasks that sleep, their sleep subtracted).
struct Measure {
  std::string what;
  int hosts = 0;
  int tasks = 0;
  auto key() const { return std::tie(what, hosts, tasks); }
  bool operator<(const Measure& o) const { return key() < o.key(); }
  bool operator==(const Measure& o) const { return key() == o.key(); }
};

class ClusterReport {
 public:
  void add(const std::string& system, const Measure& m, double ms);
  /// Median over the repetitions; nullopt when `system` never measured `m`.
  std::optional<double> median_ms(const std::string& system, const Measure& m) const;

  /// One row per measure, in the order first added: cohort's time, the
  /// reference's, cohort / reference, and tasks/s for spawns.
  void print_table(std::FILE* out, const std::string& reference) const;
  /// `system,what,hosts,tasks,metric,value` rows: time_ms for every measure,
  /// and rate_tasks_per_s for spawns. False when the file cannot be written.
  bool write_csv(const std::string& path) const;

 private:
  std::vector<Measure> order_;
  std::map<std::pair<std::string, Measure>, std::vector<double>> samples_;
  std::vector<std::string> systems_;
};

}  // namespace cohort::bench
