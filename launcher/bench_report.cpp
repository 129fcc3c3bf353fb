#include "launcher/bench_report.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

#include "launcher/cli_format.hpp"
#include "launcher/subprocess.hpp"

namespace cohort::cli {

namespace {

// strtod, not from_chars: libstdc++ 12 has no floating from_chars on every target.
std::optional<double> to_double(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto p = line.find(sep);
    out.push_back(line.substr(0, p));
    if (p == std::string_view::npos) return out;
    line.remove_prefix(p + 1);
  }
}

std::vector<std::string_view> split_blanks(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<PingpongPoint> parse_pingpong_line(std::string_view line) {
  constexpr std::string_view kPrefix = "pingpong ";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  PingpongPoint pt;
  int seen = 0;
  for (std::string_view item : split_blanks(line)) {
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq);
    auto d = to_double(item.substr(eq + 1));
    if (!d) continue;
    if (key == "size") pt.size = static_cast<std::size_t>(*d), seen |= 1;
    else if (key == "iters") pt.iters = static_cast<long>(*d);
    else if (key == "latency_us") pt.latency_us = *d, seen |= 2;
    else if (key == "bandwidth_MBps") pt.bandwidth_mbps = *d, seen |= 4;
  }
  if (seen != 7) return std::nullopt;
  return pt;
}

std::optional<std::string> parse_pingpong_transport(std::string_view line) {
  constexpr std::string_view kPrefix = "# cohort pingpong:";
  if (line.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  auto at = line.find(" over ");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + 6);
  auto end = rest.find_first_of(", ");
  std::string name(rest.substr(0, end));
  if (name.empty()) return std::nullopt;
  return name;
}

std::optional<double> parse_fi_pingpong_line(std::string_view line) {
  // bytes #sent #ack total time MB/sec usec/xfer Mxfers/sec
  auto f = split_blanks(line);
  if (f.size() != 8) return std::nullopt;
  if (f[0].empty() || f[0][0] < '0' || f[0][0] > '9') return std::nullopt;  // the header
  if (f[2].empty() || f[2][0] != '=') return std::nullopt;  // lost or extra acknowledgements
  auto usec = to_double(f[6]);
  if (!usec || *usec <= 0) return std::nullopt;
  return *usec;
}

std::optional<UcxPerftestRow> parse_ucx_perftest_line(std::string_view line) {
  // label,iterations,50.0_percentile_lat,avg_lat,overall_lat,avg_bw,overall_bw,avg_mr,overall_mr
  auto f = split(trim(line), ',');
  if (f.size() != 9) return std::nullopt;
  auto iters = to_double(trim(f[1]));
  auto overall = to_double(trim(f[4]));
  if (!iters || !overall || *overall <= 0) return std::nullopt;
  return UcxPerftestRow{std::string(trim(f[0])), *overall};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

namespace {

std::string ratio(double a, double b) {
  if (a <= 0 || b <= 0) return "-";
  return format_fixed(a / b, 2);
}

std::string latency(double us) {
  if (us <= 0) return "-";
  return us < 10 ? format_fixed(us, 3) : us < 1000 ? format_fixed(us, 1) : format_fixed(us, 0);
}

std::string bandwidth(double mbps) {
  if (mbps <= 0) return "-";
  return format_fixed(mbps, mbps < 10 ? 2 : 0);
}

const PingpongPoint* find_point(const BenchSeries* s, std::size_t size) {
  if (s == nullptr) return nullptr;
  auto it = s->points.find(size);
  return it == s->points.end() ? nullptr : &it->second;
}

// One transport label: cohort (when measured) and its references.
void print_group(std::FILE* to, const std::string& label,
                 const std::vector<const BenchSeries*>& group) {
  const BenchSeries* cohort = nullptr;
  std::vector<const BenchSeries*> refs;
  for (const BenchSeries* s : group) {
    if (s->system == "cohort" && cohort == nullptr) cohort = s;
    else refs.push_back(s);
  }
  // "ucx:posix: cohort vs openmpi, ucx_perftest"
  std::string others;
  for (const BenchSeries* r : refs) others += (others.empty() ? "" : ", ") + r->system;
  std::string title = label + ": ";
  if (!cohort) title += others + " (cohort not measured)";
  else if (refs.empty()) title += "cohort (no reference measured)";
  else title += "cohort vs " + others;
  std::fprintf(to, "\n%s\n", title.c_str());

  std::vector<std::string> header = {"size"};
  auto add_columns = [&](const char* unit) {
    if (cohort) header.push_back(std::string("cohort ") + unit);
    for (const BenchSeries* r : refs) {
      header.push_back(r->system + " " + unit);
      if (cohort) header.push_back("ratio");
    }
  };
  add_columns("us");
  add_columns("MB/s");
  Table t(header, std::vector<bool>(header.size(), true));

  std::map<std::size_t, int> sizes;  // every size anyone measured: a gap shows as '-'
  for (const BenchSeries* s : group)
    for (const auto& [size, _] : s->points) sizes[size] = 1;
  for (const auto& [size, _] : sizes) {
    std::vector<std::string> row = {format_size(size)};
    const PingpongPoint* c = find_point(cohort, size);
    auto add_values = [&](bool bw) {
      auto value = [&](const PingpongPoint* p) {
        if (p == nullptr) return std::string("-");
        if (bw) return size == 0 ? std::string("-") : bandwidth(p->bandwidth_mbps);
        return latency(p->latency_us);
      };
      if (cohort) row.push_back(value(c));
      for (const BenchSeries* r : refs) {
        const PingpongPoint* p = find_point(r, size);
        row.push_back(value(p));
        if (!cohort) continue;
        if (c == nullptr || p == nullptr || (bw && size == 0)) row.push_back("-");
        else row.push_back(bw ? ratio(c->bandwidth_mbps, p->bandwidth_mbps)
                              : ratio(c->latency_us, p->latency_us));
      }
    };
    add_values(false);
    add_values(true);
    t.add(row);
  }
  t.print(to);
  for (const BenchSeries* s : group)
    if (!s->method.empty()) std::fprintf(to, "  %s: %s\n", s->system.c_str(), s->method.c_str());
}

}  // namespace

void print_comparison(std::FILE* to, const BenchResults& results) {
  std::vector<std::string> labels;
  for (const BenchSeries& s : results)
    if (std::find(labels.begin(), labels.end(), s.transport) == labels.end())
      labels.push_back(s.transport);
  for (const std::string& label : labels) {
    std::vector<const BenchSeries*> group;
    for (const BenchSeries& s : results)
      if (s.transport == label && !s.points.empty()) group.push_back(&s);
    if (!group.empty()) print_group(to, label, group);
  }
  std::fprintf(to,
               "\nus: one-way latency in microseconds (half the median round trip); MB/s: size / "
               "one-way latency, 10^6 B/s;\nratio = cohort / reference (latency: below 1 is "
               "better; bandwidth: above 1 is better). Compare within one run only.\n");
}

Status write_csv(const std::string& path, const BenchResults& results) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return errno_status(Errc::kIoError, "cannot write " + path, errno);
  std::fprintf(f, "system,transport,size,metric,value\n");
  for (const BenchSeries& s : results) {
    for (const auto& [size, pt] : s.points) {
      std::fprintf(f, "%s,%s,%zu,latency_us,%.4f\n", s.system.c_str(), s.transport.c_str(), size,
                   pt.latency_us);
      std::fprintf(f, "%s,%s,%zu,bandwidth_MBps,%.3f\n", s.system.c_str(), s.transport.c_str(),
                   size, pt.bandwidth_mbps);
    }
  }
  if (std::fclose(f) != 0) return errno_status(Errc::kIoError, "cannot write " + path, errno);
  return Status();
}

namespace {

std::string gnuplot_quote(const std::string& s) {  // '...' with ' doubled
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Status plot_csv(const std::string& csv, const std::string& png, const std::string& title) {
  std::string gnuplot = find_in_path("gnuplot");
  if (gnuplot.empty())
    return Status(Errc::kUnsupported, "gnuplot is not installed (apt-get install gnuplot-nox)");
  std::string script = self_dir() + "/plot_pingpong.gp";
  if (::access(script.c_str(), R_OK) != 0)
    return Status(Errc::kNotFound, script + " is missing; rebuild cohort (bench/ copies it there)");
  std::string vars = "csv=" + gnuplot_quote(csv) + "; out=" + gnuplot_quote(png) +
                     "; title=" + gnuplot_quote(title);
  ChildOptions o;
  o.merge_stderr = true;
  o.die_with_parent = true;
  COHORT_ASSIGN_OR_RETURN(Child c, start_child({gnuplot, "-e", vars, script}, o));
  LineReader reader(c.out.get());
  std::string said;  // gnuplot's complaints, for the error
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto line = reader.next(left);
    if (line) said += (said.empty() ? "" : " | ") + line.value();
    else if (line.status() == Errc::kPeerLost) break;
  }
  auto status = wait_child(c.pid, std::chrono::seconds(5));
  if (!status) {
    ::kill(c.pid, SIGKILL);
    (void)wait_child(c.pid, std::chrono::seconds(5));
    return Status(Errc::kTimeout, "gnuplot did not finish in 60 s; stopped it");
  }
  if (!WIFEXITED(status.value()) || WEXITSTATUS(status.value()) != 0)
    return Status(Errc::kInternal, "gnuplot " + describe_wait_status(status.value()) +
                                       (said.empty() ? "" : ": " + said.substr(0, 400)));
  return Status();
}

Result<BenchResults> read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return errno_status(Errc::kIoError, "cannot read " + path, errno);
  BenchResults results;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    std::string_view l = trim(line);
    if (l.empty() || l[0] == '#' || l.substr(0, 7) == "system,") continue;
    auto f = split(l, ',');
    auto size = f.size() == 5 ? to_double(f[2]) : std::nullopt;
    auto value = f.size() == 5 ? to_double(f[4]) : std::nullopt;
    if (!size || !value || *size < 0)
      return Status(Errc::kInvalidArgument,
                    path + ":" + std::to_string(line_no) +
                        ": not a 'system,transport,size,metric,value' row: " + line);
    auto it = std::find_if(results.begin(), results.end(), [&](const BenchSeries& s) {
      return s.system == f[0] && s.transport == f[1];
    });
    if (it == results.end()) {
      results.push_back({std::string(f[0]), std::string(f[1]), "", {}});
      it = results.end() - 1;
    }
    PingpongPoint& pt = it->points[static_cast<std::size_t>(*size)];
    pt.size = static_cast<std::size_t>(*size);
    if (f[3] == "latency_us") pt.latency_us = *value;
    else if (f[3] == "bandwidth_MBps") pt.bandwidth_mbps = *value;
  }
  if (in.bad()) return errno_status(Errc::kIoError, "cannot read " + path, errno);
  return results;
}

}  // namespace cohort::cli
