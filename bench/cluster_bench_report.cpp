#include "bench/cluster_bench_report.hpp"

#include <algorithm>
#include <fstream>

namespace cohort::bench {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string label(const Measure& m) {
  if (m.what == "boot") return "boot a VM of " + std::to_string(m.hosts) + " hosts";
  if (m.what == "add") return "add 1 host to " + std::to_string(m.hosts);
  if (m.what == "spawn_sleep")
    return "spawn " + std::to_string(m.tasks) + " (sleep) over " + std::to_string(m.hosts);
  return "spawn " + std::to_string(m.tasks) + " tasks over " + std::to_string(m.hosts);
}

bool is_spawn(const Measure& m) { return m.what.rfind("spawn", 0) == 0; }

}  // namespace

void ClusterReport::add(const std::string& system, const Measure& m, double ms) {
  if (std::find(order_.begin(), order_.end(), m) == order_.end()) order_.push_back(m);
  if (std::find(systems_.begin(), systems_.end(), system) == systems_.end())
    systems_.push_back(system);
  samples_[{system, m}].push_back(ms);
}

std::optional<double> ClusterReport::median_ms(const std::string& system, const Measure& m) const {
  auto it = samples_.find({system, m});
  if (it == samples_.end() || it->second.empty()) return std::nullopt;
  std::vector<double> v = it->second;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void ClusterReport::print_table(std::FILE* out, const std::string& reference) const {
  std::fprintf(out, "%-32s %12s %12s %8s %12s %12s\n", "what", "cohort ms", reference.c_str(),
               "ratio", "cohort t/s", "ref t/s");
  for (const Measure& m : order_) {
    auto c = median_ms("cohort", m);
    auto r = median_ms(reference, m);
    std::string cs = c ? fmt("%.1f", *c) : "-";
    std::string rs = r ? fmt("%.1f", *r) : "-";
    std::string ratio = c && r && *r > 0 ? fmt("%.2f", *c / *r) : "-";
    std::string crate = "", rrate = "";
    if (is_spawn(m)) {
      crate = c && *c > 0 ? fmt("%.0f", m.tasks * 1000.0 / *c) : "-";
      rrate = r && *r > 0 ? fmt("%.0f", m.tasks * 1000.0 / *r) : "-";
    }
    std::fprintf(out, "%-32s %12s %12s %8s %12s %12s\n", label(m).c_str(), cs.c_str(), rs.c_str(),
                 ratio.c_str(), crate.c_str(), rrate.c_str());
  }
}

bool ClusterReport::write_csv(const std::string& path) const {
  std::ofstream f(path, std::ios::trunc);
  f << "system,what,hosts,tasks,metric,value\n";
  for (const std::string& system : systems_)
    for (const Measure& m : order_) {
      auto ms = median_ms(system, m);
      if (!ms) continue;
      std::string row = system + "," + m.what + "," + std::to_string(m.hosts) + "," +
                        std::to_string(m.tasks) + ",";
      f << row << "time_ms," << fmt("%.3f", *ms) << "\n";
      if (is_spawn(m) && *ms > 0)
        f << row << "rate_tasks_per_s," << fmt("%.1f", m.tasks * 1000.0 / *ms) << "\n";
    }
  return static_cast<bool>(f);
}

}  // namespace cohort::bench
