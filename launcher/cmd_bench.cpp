// `cohort bench pingpong`: cohort's point-to-point latency and bandwidth over
// each transport, measured next to the reference that uses the same path (Open
// MPI, fi_pingpong, ucx_perftest) in the same invocation, so that the numbers
// share the machine's mood (they swing from run to run). See bench/README.md.
//
// The plan is a list of steps, one per transport label ("shm", "ofi:shm",
// "ucx:posix", ...). A step runs the cohort pingpong with the transport forced
// through the tasks' environment, then each of its references, one after the
// other. Anything that is missing or fails is one line on stderr, and the run
// goes on: a partial table is better than none.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "base/env.hpp"
#include "launcher/bench_report.hpp"
#include "launcher/bench_runners.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/job.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kBenchUsage =
    "usage: cohort bench pingpong [--transport LIST] [--sizes LIST] [--iters N] [--reps R]\n"
    "                             [--rounds K]\n"
    "                             [--csv FILE] [--plot FILE.png] [--no-mpi] [--no-ref]\n"
    "                             [--ofi-provider P]... [--ucx-tls T]... [--timeout S]\n"
    "                             [--private] [--vm NAME]\n"
    "       cohort bench pingpong --from-csv FILE [--csv FILE] [--plot FILE.png]\n"
    "\n"
    "Ping-pong between two tasks: one-way latency (half the median round trip\n"
    "over R repetitions) and bandwidth for each message size, over cohort with\n"
    "each transport forced (COHORT_TRANSPORTS in the tasks' environment; in the\n"
    "running VM, else a private one), each followed by its reference on the same\n"
    "path, and a table of cohort / reference ratios:\n"
    "  shm         Open MPI, mpirun --mca pml ob1 --mca btl vader,self (CMA)\n"
    "  tcp         Open MPI, mpirun --mca pml ob1 --mca btl tcp,self\n"
    "  ofi:PROV    fi_pingpong -p PROV -e rdm  (COHORT_OFI_PROVIDER=PROV)\n"
    "  ucx:TLS     Open MPI --mca pml ucx and ucx_perftest -t tag_lat (UCX_TLS=TLS)\n"
    "A transport or reference that is not built, not installed or fails is one\n"
    "line on stderr; the others still run.\n"
    "\n"
    "  --transport LIST  all (default: every transport above; those not built in\n"
    "                    this cohort are reported and skipped), or some of shm,\n"
    "                    tcp, ofi, ucx, ofi:PROV, ucx:TLS, comma-separated\n"
    "  --ofi-provider P  libfabric provider for 'ofi' (repeatable; default\n"
    "                    'tcp;ofi_rxm' and 'shm')\n"
    "  --ucx-tls T       UCX_TLS for 'ucx' (repeatable; default 'tcp' and 'posix')\n"
    "  --sizes LIST      message sizes, e.g. 0,8,1K,1M (default 0 and 1 B .. 16 MiB\n"
    "                    by powers of four)\n"
    "  --iters N         round trips per repetition up to 64 KiB (default 1000);\n"
    "                    larger messages use proportionally fewer (at least 3)\n"
    "  --reps R          repetitions per size, the median is reported (default 3)\n"
    "  --rounds K        measure cohort and its references K times, taking turns,\n"
    "                    and keep each one's best median per size (default 1): a\n"
    "                    neighbour's load on a shared machine then hits both\n"
    "  --csv FILE        also write system,transport,size,metric,value rows\n"
    "  --plot FILE.png   draw latency and bandwidth against size with gnuplot\n"
    "                    (bench/plot_pingpong.gp; skipped with a note without it)\n"
    "  --no-mpi          no Open MPI references\n"
    "  --no-ref          no references at all: cohort only\n"
    "  --timeout S       give up on a measurement that reports nothing new for S\n"
    "                    seconds (default 60)\n"
    "  --from-csv FILE   measure nothing: show the table (and plot) of a CSV\n";

namespace {

using Clock = std::chrono::steady_clock;

// ---- the report ---------------------------------------------------------------------

double load_average() {
  double l = -1;
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

std::string plot_title(double load_before, double load_after) {
  char host[256] = "?";
  (void)::gethostname(host, sizeof host - 1);
  char when[32] = "";
  std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&now));
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "cohort bench pingpong on %s, %s (%ld CPUs, load average %.2f before, %.2f after)",
                host, when, ::sysconf(_SC_NPROCESSORS_ONLN), load_before, load_after);
  return buf;
}

// A series measured again (--rounds): per size, the faster of the two runs
// stays. Otherwise it is new.
void keep_best(BenchResults& results, BenchSeries&& s) {
  for (BenchSeries& old : results) {
    if (old.system != s.system || old.transport != s.transport) continue;
    for (auto& [size, point] : s.points) {
      auto it = old.points.find(size);
      if (it == old.points.end() || point.latency_us < it->second.latency_us)
        old.points[size] = point;
    }
    return;
  }
  results.push_back(std::move(s));
}

// Table, CSV, plot: the same for a fresh run and for --from-csv.
int report(const BenchResults& results, const std::string& csv, const std::string& png,
           const std::string& title) {
  print_comparison(stdout, results);
  std::fflush(stdout);
  if (!csv.empty()) {
    Status st = write_csv(csv, results);
    if (!st.is_ok()) {
      std::fprintf(stderr, "cohort bench: %s\n", st.message().c_str());
      return kExitFailure;
    }
    std::fprintf(stderr, "cohort bench: wrote %s\n", csv.c_str());
  }
  if (png.empty()) return kExitOk;
  std::string data = csv;
  char tmp[] = "/tmp/cohort-bench-XXXXXX.csv";
  if (data.empty()) {
    int fd = ::mkstemps(tmp, 4);
    if (fd < 0) {
      std::fprintf(stderr, "cohort bench: --plot: mkstemps: %s\n", std::strerror(errno));
      return kExitFailure;
    }
    ::close(fd);
    data = tmp;
    if (Status st = write_csv(data, results); !st.is_ok()) {
      std::fprintf(stderr, "cohort bench: %s\n", st.message().c_str());
      ::unlink(tmp);
      return kExitFailure;
    }
  }
  // A missing gnuplot is a note (the CSV holds everything); a failing one an error.
  Status st = plot_csv(data, png, title);
  if (csv.empty()) ::unlink(tmp);
  if (st == Errc::kUnsupported) {
    std::fprintf(stderr, "cohort bench: --plot: %s; no plot drawn\n", st.message().c_str());
    return kExitOk;
  }
  if (!st.is_ok()) {
    std::fprintf(stderr, "cohort bench: --plot: %s\n", st.message().c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "cohort bench: drew %s\n", png.c_str());
  return kExitOk;
}

}  // namespace

int cmd_bench(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, no_mpi = false, no_ref = false, private_vm = false;
  BenchArgs b;
  std::string transports = "all", sizes_text, iters_text = "1000", reps_text = "3";
  std::string rounds_text = "1";
  std::string timeout_text = "60", csv, png, from_csv;
  std::vector<std::string> ofi_providers, ucx_tls;
  Parser p("cohort bench");
  add_global_options(p, g, &help);
  p.option({"--transport"}, &transports);
  p.option({"--sizes"}, &sizes_text);
  p.option({"--iters"}, &iters_text);
  p.option({"--reps"}, &reps_text);
  p.option({"--rounds"}, &rounds_text);
  p.option({"--timeout"}, &timeout_text);
  p.option({"--csv"}, &csv);
  p.option({"--plot"}, &png);
  p.option({"--from-csv"}, &from_csv);
  p.multi({"--ofi-provider"}, &ofi_providers);
  p.multi({"--ucx-tls"}, &ucx_tls);
  p.flag({"--no-mpi"}, &no_mpi);
  p.flag({"--no-ref"}, &no_ref);
  p.flag({"--private"}, &private_vm);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kBenchUsage);
  if (help) return show_usage(kBenchUsage);
  if (rest->size() != 1 || rest->front() != "pingpong")
    return usage_error(rest->empty() ? "cohort bench: which benchmark? (pingpong)"
                                     : "cohort bench: no benchmark '" + rest->front() +
                                           "'; there is: pingpong",
                       kBenchUsage);
  if (!from_csv.empty()) {
    auto results = read_csv(from_csv);
    if (!results) {
      std::fprintf(stderr, "cohort bench: %s\n", results.status().message().c_str());
      return kExitFailure;
    }
    return report(results.value(), csv, png, "cohort bench pingpong: " + from_csv);
  }
  auto steps = plan(transports, ofi_providers, ucx_tls, !no_mpi, !no_ref);
  if (!steps) return usage_error(steps.status().message(), kBenchUsage);
  for (const std::string& item : split_commas(sizes_text)) {
    auto sz = parse_size(item);
    if (!sz) return usage_error("cohort bench --sizes: " + sz.status().message(), kBenchUsage);
    if (sz.value() > (1u << 30))
      return usage_error("cohort bench --sizes: " + item + " is over 1 GiB", kBenchUsage);
    b.sizes.push_back(sz.value());
  }
  if (b.sizes.empty()) {
    b.sizes.push_back(0);
    for (std::size_t s = 1; s <= (16u << 20); s *= 4) b.sizes.push_back(s);
  }
  auto iters = parse_int(iters_text, "cohort bench --iters", 1, 100000000);
  auto reps = parse_int(reps_text, "cohort bench --reps", 1, 1000);
  auto timeout = parse_int(timeout_text, "cohort bench --timeout", 1, 86400);
  auto rounds = parse_int(rounds_text, "cohort bench --rounds", 1, 100);
  if (!rounds) return usage_error(rounds.status().message(), kBenchUsage);
  if (!iters) return usage_error(iters.status().message(), kBenchUsage);
  if (!reps) return usage_error(reps.status().message(), kBenchUsage);
  if (!timeout) return usage_error(timeout.status().message(), kBenchUsage);
  b.iters = iters.value();
  b.reps = reps.value();
  b.timeout = std::chrono::seconds(timeout.value());

  install_stop_handlers();
  const double load_before = load_average();
  std::size_t total = 0, done = 0;
  for (const Step& s : *steps) total += (1 + s.refs.size()) * static_cast<std::size_t>(rounds.value());
  BenchResults results;
  CohortVm vm(g, private_vm);
  auto measure = [&](const char* system, const std::string& label,
                     const std::function<Status(PingpongSeries*, std::string*)>& run) {
    ++done;
    std::fprintf(stderr, "cohort bench: [%zu/%zu] %s over %s...\n", done, total, system,
                 label.c_str());
    auto start = Clock::now();
    BenchSeries s{system, label, "", {}};
    Status st = run(&s.points, &s.method);
    if (!st.is_ok() && !stop_signal())
      std::fprintf(stderr, "cohort bench: [%zu/%zu] %s over %s: %s, %s\n", done, total, system,
                   label.c_str(), s.points.empty() ? "skipped" : "incomplete",
                   st.message().c_str());
    else if (st.is_ok())
      std::fprintf(stderr, "cohort bench: [%zu/%zu] %s over %s: %zu of %zu sizes in %.1f s\n",
                   done, total, system, label.c_str(), s.points.size(), b.sizes.size(),
                   std::chrono::duration<double>(Clock::now() - start).count());
    if (!s.points.empty()) keep_best(results, std::move(s));
  };
  for (const Step& step : *steps) {
    for (long round = 0; round < rounds.value() && !stop_signal(); ++round) {
      measure("cohort", step.label, [&](PingpongSeries* out, std::string* method) {
        return run_cohort(vm, step, b, out, method);
      });
      for (const Reference& r : step.refs) {
        if (stop_signal()) break;
        measure(system_name(r.kind), step.label, [&](PingpongSeries* out, std::string* method) {
          switch (r.kind) {
            case RefKind::kOpenMpi: return run_openmpi(r, b, out, method);
            case RefKind::kFiPingpong: return run_fi_pingpong(r, b, out, method);
            case RefKind::kUcxPerftest: return run_ucx_perftest(r, b, out, method);
          }
          return Status(Errc::kInternal, "unknown reference");
        });
      }
    }
  }
  if (int sig = stop_signal()) {
    std::fprintf(stderr, "cohort bench: interrupted by %s\n", signal_name(sig).c_str());
    return 128 + sig;
  }
  const double load_after = load_average();
  if (results.empty()) {
    std::fprintf(stderr, "cohort bench: nothing could be measured\n");
    return kExitFailure;
  }
  int rc = report(results, csv, png, plot_title(load_before, load_after));
  std::printf("machine: %ld CPUs, load average %.2f before and %.2f after the run%s\n",
              ::sysconf(_SC_NPROCESSORS_ONLN), load_before, load_after,
              load_before > 0.5 || load_after > 0.5 ? " (other work was running: rough figures)"
                                                    : "");
  // References alone are no benchmark of cohort: that is a failure, for CI too.
  bool any_cohort = std::any_of(results.begin(), results.end(),
                                [](const BenchSeries& s) { return s.system == "cohort"; });
  if (!any_cohort) {
    std::fprintf(stderr, "cohort bench: cohort itself could not be measured over any transport\n");
    return kExitFailure;
  }
  return rc;
}

}  // namespace cohort::cli
