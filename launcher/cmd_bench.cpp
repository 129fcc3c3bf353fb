// `cohort bench pingpong`: cohort's point-to-point latency and bandwidth,
// measured next to Open MPI's on the same transport in the same invocation, so
// that the two numbers share the machine's mood (they swing run to run).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "base/env.hpp"
#include "launcher/bench_report.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/job.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kBenchUsage =
    "usage: cohort bench pingpong [--transport tcp] [--sizes LIST] [--iters N] [--reps R]\n"
    "                             [--csv FILE] [--no-mpi] [--private] [--vm NAME]\n"
    "\n"
    "Ping-pong between two tasks: one-way latency (half the median round trip\n"
    "over R repetitions) and bandwidth for each message size, first over cohort\n"
    "(in the running VM, else a private one), then over Open MPI with\n"
    "'mpirun -n 2 --mca pml ob1 --mca btl tcp,self' when mpirun is in PATH, and a\n"
    "table comparing the two.\n"
    "\n"
    "  --transport T   tcp (default) or shm: COHORT_TRANSPORTS for cohort, the\n"
    "                  matching BTL (tcp / vader) for Open MPI\n"
    "  --sizes LIST    message sizes, e.g. 0,8,1K,1M (default 0 and 1 B .. 64 MiB\n"
    "                  by powers of two)\n"
    "  --iters N       round trips per repetition for small messages (default\n"
    "                  1000); large messages use fewer\n"
    "  --reps R        repetitions per size, the median is reported (default 5)\n"
    "  --csv FILE      also write system,transport,size,metric,value rows\n"
    "  --no-mpi        measure cohort only\n";

namespace {

struct BenchArgs {
  std::string transport = "tcp";
  std::vector<std::size_t> sizes;
  long iters = 1000;
  long reps = 5;
};

std::vector<std::string> program_args(const BenchArgs& b) {
  std::string sizes;
  for (std::size_t s : b.sizes) sizes += (sizes.empty() ? "" : ",") + std::to_string(s);
  std::vector<std::string> a = {"--iters", std::to_string(b.iters), "--reps",
                                std::to_string(b.reps)};
  if (!sizes.empty()) a.insert(a.end(), {"--sizes", sizes});
  return a;
}

// Run bench_pingpong as a 2-task job; rank 0's result lines are the data.
Result<PingpongSeries> run_cohort(const Globals& g, bool private_vm, const BenchArgs& b) {
  std::string program = self_dir() + "/bench_pingpong";
  if (::access(program.c_str(), X_OK) != 0)
    return Status(Errc::kNotFound, program + " is missing; build the target bench_pingpong");
  std::unique_ptr<PrivateVm> vm;
  std::unique_ptr<Session> s;
  if (!private_vm) s = connect_tool(g);
  if (!s) {
    COHORT_ASSIGN_OR_RETURN(vm, PrivateVm::start());
    s = std::make_unique<Session>(vm->session_options());
  }
  JobSpec spec;
  spec.program = program;
  spec.args = program_args(b);
  spec.count = 2;
  spec.env = {std::string(env::kTransports) + "=" + b.transport};
  PingpongSeries series;
  Job job(*s, [&](int rank, OutputStream stream, std::string_view line) {
    if (rank == 0 && stream == OutputStream::kStdout) {
      if (auto pt = parse_pingpong_line(line)) {
        series[pt->size] = *pt;
        return;
      }
      if (!line.empty() && line[0] == '#') return;
    }
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "[%d] ", rank);
    write_line(2, prefix, line);
  });
  Status st = job.start(spec);
  int sig = 0;
  if (st.is_ok()) {
    job.wait(&sig);
    if (sig != 0) job.terminate(std::chrono::seconds(2));
  }
  if (vm) vm->stop(s.get());
  if (!st.is_ok()) return st;
  if (sig != 0) return Status(Errc::kCanceled, "interrupted by " + signal_name(sig));
  for (const TaskEnd& e : job.ends())
    if (e.exit_code != 0 || e.signal != 0)
      return Status(Errc::kInternal, "the cohort pingpong task (rank " + std::to_string(e.rank) +
                                         ") failed: exit status " + std::to_string(e.exit_code) +
                                         (e.signal ? ", " + signal_name(e.signal) : ""));
  return series;
}

// Run the Open MPI reference program under mpirun and parse its stdout.
Result<PingpongSeries> run_mpi(const BenchArgs& b) {
  std::string program = self_dir() + "/bench_pingpong_mpi";
  if (::access(program.c_str(), X_OK) != 0)
    return Status(Errc::kNotFound, program +
                                       " was not built (CMake did not find Open MPI); install "
                                       "libopenmpi-dev and reconfigure");
  std::string mpirun = find_in_path("mpirun");
  if (mpirun.empty()) return Status(Errc::kNotFound, "mpirun is not in PATH");
  std::vector<std::string> argv = {mpirun, "-n", "2", "--oversubscribe"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  // pml ob1 makes Open MPI use the BTL we name; its UCX PML would pick shared memory.
  std::string btl = b.transport == "shm" ? "vader,self" : "tcp,self";
  argv.insert(argv.end(), {"--mca", "pml", "ob1", "--mca", "btl", btl, program});
  for (const std::string& a : program_args(b)) argv.push_back(a);

  ChildOptions o;  // stderr stays ours: mpirun's complaints are for the user to see
  COHORT_ASSIGN_OR_RETURN(Child c, start_child(argv, o));
  LineReader reader(c.out.get());
  PingpongSeries series;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(20);
  for (;;) {
    if (int sig = stop_signal()) {
      ::kill(c.pid, SIGTERM);
      (void)wait_child(c.pid, std::chrono::seconds(5));
      return Status(Errc::kCanceled, "interrupted by " + signal_name(sig));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(c.pid, SIGTERM);
      (void)wait_child(c.pid, std::chrono::seconds(5));
      return Status(Errc::kTimeout, "mpirun ran for 20 minutes; stopped it");
    }
    auto line = reader.next(std::chrono::milliseconds(200));
    if (line) {
      if (auto pt = parse_pingpong_line(line.value())) series[pt->size] = *pt;
      continue;
    }
    if (line.status() == Errc::kPeerLost) break;
  }
  COHORT_ASSIGN_OR_RETURN(int status, wait_child(c.pid, std::chrono::seconds(30)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Status(Errc::kInternal, "mpirun " + describe_wait_status(status));
  return series;
}

}  // namespace

int cmd_bench(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, no_mpi = false, private_vm = false;
  BenchArgs b;
  std::string sizes_text, iters_text = "1000", reps_text = "5", csv;
  Parser p("cohort bench");
  add_global_options(p, g, &help);
  p.option({"--transport"}, &b.transport);
  p.option({"--sizes"}, &sizes_text);
  p.option({"--iters"}, &iters_text);
  p.option({"--reps"}, &reps_text);
  p.option({"--csv"}, &csv);
  p.flag({"--no-mpi"}, &no_mpi);
  p.flag({"--private"}, &private_vm);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kBenchUsage);
  if (help) return show_usage(kBenchUsage);
  if (rest->size() != 1 || rest->front() != "pingpong")
    return usage_error(rest->empty() ? "cohort bench: which benchmark? (pingpong)"
                                     : "cohort bench: no benchmark '" + rest->front() +
                                           "'; there is: pingpong",
                       kBenchUsage);
  if (b.transport != "tcp" && b.transport != "shm")
    return usage_error("cohort bench: --transport is tcp or shm, not '" + b.transport + "'",
                       kBenchUsage);
  for (const std::string& item : split_commas(sizes_text)) {
    auto sz = parse_size(item);
    if (!sz) return usage_error("cohort bench --sizes: " + sz.status().message(), kBenchUsage);
    b.sizes.push_back(sz.value());
  }
  auto iters = parse_int(iters_text, "cohort bench --iters", 1, 100000000);
  auto reps = parse_int(reps_text, "cohort bench --reps", 1, 1000);
  if (!iters) return usage_error(iters.status().message(), kBenchUsage);
  if (!reps) return usage_error(reps.status().message(), kBenchUsage);
  b.iters = iters.value();
  b.reps = reps.value();

  install_stop_handlers();
  std::fprintf(stderr, "cohort bench: pingpong over cohort (%s, 2 tasks)...\n",
               b.transport.c_str());
  auto cohort_series = run_cohort(g, private_vm, b);
  if (!cohort_series) {
    std::fprintf(stderr, "cohort bench: %s\n", cohort_series.status().message().c_str());
    return stop_signal() ? 128 + stop_signal() : kExitFailure;
  }
  PingpongSeries mpi_series;
  if (no_mpi) {
    std::fprintf(stderr, "cohort bench: --no-mpi: showing cohort only\n");
  } else {
    std::fprintf(stderr, "cohort bench: pingpong over Open MPI (btl %s)...\n",
                 b.transport == "shm" ? "vader" : "tcp");
    auto m = run_mpi(b);
    if (m) mpi_series = std::move(m).value();
    else if (stop_signal()) return 128 + stop_signal();
    else std::fprintf(stderr, "cohort bench: no Open MPI figures: %s; showing cohort only\n",
                      m.status().message().c_str());
  }
  print_comparison(stdout, *cohort_series, mpi_series);
  if (!csv.empty()) {
    Status st = write_csv(csv, b.transport, *cohort_series, mpi_series);
    if (!st.is_ok()) {
      std::fprintf(stderr, "cohort bench: %s\n", st.message().c_str());
      return kExitFailure;
    }
    std::fprintf(stderr, "cohort bench: wrote %s\n", csv.c_str());
  }
  return kExitOk;
}

}  // namespace cohort::cli
