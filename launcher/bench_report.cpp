#include "launcher/bench_report.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <string>

#include "launcher/cli_format.hpp"

namespace cohort::cli {

std::optional<PingpongPoint> parse_pingpong_line(std::string_view line) {
  constexpr std::string_view kPrefix = "pingpong ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  PingpongPoint pt;
  int seen = 0;
  while (!line.empty()) {
    auto sp = line.find(' ');
    std::string_view item = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(item.substr(0, eq)), val(item.substr(eq + 1));
    // strtod, not from_chars: libstdc++ 12 has no floating from_chars on every target.
    char* end = nullptr;
    double d = std::strtod(val.c_str(), &end);
    if (end == val.c_str()) continue;
    if (key == "size") pt.size = static_cast<std::size_t>(d), seen |= 1;
    else if (key == "iters") pt.iters = static_cast<long>(d);
    else if (key == "latency_us") pt.latency_us = d, seen |= 2;
    else if (key == "bandwidth_MBps") pt.bandwidth_mbps = d, seen |= 4;
  }
  if (seen != 7) return std::nullopt;
  return pt;
}

namespace {

std::string ratio(double a, double b) {
  if (a <= 0 || b <= 0) return "-";
  return format_fixed(a / b, 2);
}

std::string latency(double us) { return us < 100 ? format_fixed(us, 2) : format_fixed(us, 0); }

std::string bandwidth(std::size_t size, double mbps) {
  return size == 0 ? "-" : format_fixed(mbps, mbps < 10 ? 2 : 0);
}

}  // namespace

void print_comparison(std::FILE* to, const PingpongSeries& cohort, const PingpongSeries& mpi) {
  bool with_mpi = !mpi.empty();
  std::vector<std::string> header = {"size", "cohort us"};
  if (with_mpi) header.insert(header.end(), {"MPI us", "ratio"});
  header.push_back("cohort MB/s");
  if (with_mpi) header.insert(header.end(), {"MPI MB/s", "ratio"});
  Table t(header, std::vector<bool>(header.size(), true));
  // Every size that either side measured, so a gap shows up as '-'.
  std::map<std::size_t, int> sizes;
  for (const auto& [s, _] : cohort) sizes[s] = 1;
  for (const auto& [s, _] : mpi) sizes[s] = 1;
  for (const auto& [size, _] : sizes) {
    auto c = cohort.find(size);
    auto m = mpi.find(size);
    double cl = c != cohort.end() ? c->second.latency_us : 0;
    double cb = c != cohort.end() ? c->second.bandwidth_mbps : 0;
    double ml = m != mpi.end() ? m->second.latency_us : 0;
    double mb = m != mpi.end() ? m->second.bandwidth_mbps : 0;
    std::vector<std::string> row = {format_size(size), cl > 0 ? latency(cl) : "-"};
    if (with_mpi) row.insert(row.end(), {ml > 0 ? latency(ml) : "-", ratio(cl, ml)});
    row.push_back(c != cohort.end() ? bandwidth(size, cb) : "-");
    if (with_mpi)
      row.insert(row.end(), {m != mpi.end() ? bandwidth(size, mb) : "-",
                             size == 0 ? "-" : ratio(cb, mb)});
    t.add(row);
  }
  t.print(to);
  if (with_mpi)
    std::fprintf(to, "latency: one way, median of repetitions; ratio = cohort / MPI "
                     "(latency: lower is better; bandwidth: higher is better)\n");
}

Status write_csv(const std::string& path, const std::string& transport,
                 const PingpongSeries& cohort, const PingpongSeries& mpi) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return errno_status(Errc::kIoError, "cannot write " + path, errno);
  std::fprintf(f, "system,transport,size,metric,value\n");
  auto rows = [&](const char* system, const PingpongSeries& series) {
    for (const auto& [size, pt] : series) {
      std::fprintf(f, "%s,%s,%zu,latency_us,%.3f\n", system, transport.c_str(), size,
                   pt.latency_us);
      std::fprintf(f, "%s,%s,%zu,bandwidth_MBps,%.3f\n", system, transport.c_str(), size,
                   pt.bandwidth_mbps);
    }
  };
  rows("cohort", cohort);
  rows("openmpi", mpi);
  if (std::fclose(f) != 0) return errno_status(Errc::kIoError, "cannot write " + path, errno);
  return Status();
}

}  // namespace cohort::cli
