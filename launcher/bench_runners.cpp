// The programs `cohort bench pingpong` measures (bench_runners.hpp): the
// cohort pingpong in a VM, Open MPI's, fi_pingpong and ucx_perftest, each
// parsed into a PingpongSeries.
#include "launcher/bench_runners.hpp"

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
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "base/env.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/job.hpp"

namespace cohort::cli {

namespace {

using Clock = std::chrono::steady_clock;

const std::vector<std::string> kDefaultOfiProviders = {"tcp;ofi_rxm", "shm"};
const std::vector<std::string> kDefaultUcxTls = {"tcp", "posix"};


// The same rule as bench/pingpong.cpp and bench/mpi/pingpong_mpi.c: fewer round
// trips for big messages, so that every size takes similar time.
long iters_for(std::size_t size, long base) {
  if (size <= 65536) return base;
  return std::max(3L, static_cast<long>(static_cast<double>(base) * 65536.0 / size));
}

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// For the printed commands: NAME=a;b -> NAME='a;b', as a shell would need it.
std::string shell_word(const std::string& w) {
  if (w.find_first_of(" ;&|<>()$*?'\"") == std::string::npos) return w;
  auto eq = w.find('=');
  std::string head = eq == std::string::npos ? "" : w.substr(0, eq + 1);
  return head + "'" + w.substr(head.size()) + "'";
}

std::string sizes_arg(const BenchArgs& b) {
  std::vector<std::string> s;
  for (std::size_t v : b.sizes) s.push_back(std::to_string(v));
  return join(s, ",");
}

std::vector<std::string> program_args(const BenchArgs& b) {
  return {"--sizes", sizes_arg(b), "--iters", std::to_string(b.iters), "--reps",
          std::to_string(b.reps)};
}

// ---- the plan -----------------------------------------------------------------------




}  // namespace

const char* system_name(RefKind k) {
  switch (k) {
    case RefKind::kOpenMpi: return "openmpi";
    case RefKind::kFiPingpong: return "fi_pingpong";
    case RefKind::kUcxPerftest: return "ucx_perftest";
  }
  return "?";
}

namespace {

// Commas would split the CSV column: "posix,cma" is labelled "ucx:posix+cma".
std::string label_safe(std::string s) {
  for (char& c : s)
    if (c == ',') c = '+';
  return s;
}

Step make_step(const std::string& transport, const std::string& detail, bool mpi, bool ref) {
  Step s;
  s.transport = transport;
  s.label = detail.empty() ? transport : transport + ":" + label_safe(detail);
  s.env = {std::string(env::kTransports) + "=" + transport};
  if (transport == "shm") {
    if (mpi && ref) s.refs.push_back({RefKind::kOpenMpi, "vader", ""});
  } else if (transport == "tcp") {
    if (mpi && ref) s.refs.push_back({RefKind::kOpenMpi, "tcp", ""});
  } else if (transport == "ofi") {
    s.env.push_back("COHORT_OFI_PROVIDER=" + detail);
    if (ref) s.refs.push_back({RefKind::kFiPingpong, detail, ""});
  } else if (transport == "ucx") {
    s.env.push_back("UCX_TLS=" + detail);
    if (mpi && ref) s.refs.push_back({RefKind::kOpenMpi, "ucx", detail});
    if (ref) s.refs.push_back({RefKind::kUcxPerftest, detail, ""});
  }
  return s;
}

}  // namespace

Result<std::vector<Step>> plan(const std::string& spec, std::vector<std::string> ofi,
                               std::vector<std::string> ucx, bool mpi, bool ref) {
  if (ofi.empty()) ofi = kDefaultOfiProviders;
  if (ucx.empty()) ucx = kDefaultUcxTls;
  std::vector<std::string> items = split_commas(spec);
  if (items.empty() || (items.size() == 1 && items[0] == "all")) items = {"shm", "tcp", "ofi", "ucx"};
  std::vector<Step> steps;
  for (const std::string& item : items) {
    auto colon = item.find(':');
    std::string t = item.substr(0, colon);
    std::string detail = colon == std::string::npos ? "" : item.substr(colon + 1);
    bool known = t == "shm" || t == "tcp" || t == "ofi" || t == "ucx";
    if (!known || ((t == "shm" || t == "tcp") && colon != std::string::npos) ||
        (colon != std::string::npos && detail.empty()))
      return Status(Errc::kInvalidArgument,
                    "cohort bench --transport: '" + item +
                        "' is not one of all, shm, tcp, ofi, ucx, ofi:PROVIDER, ucx:TLS");
    if (t == "ofi" && detail.empty()) {
      for (const std::string& p : ofi) steps.push_back(make_step(t, p, mpi, ref));
    } else if (t == "ucx" && detail.empty()) {
      for (const std::string& tls : ucx) steps.push_back(make_step(t, tls, mpi, ref));
    } else {
      steps.push_back(make_step(t, detail, mpi, ref));
    }
  }
  return steps;
}

namespace {

// ---- placement ----------------------------------------------------------------------

// Every pair runs one process per core, as the cohort tasks do by default:
// mpirun binds its two ranks, the fabric tools' server and client are pinned
// with taskset (util-linux) to CPUs 0 and 1. On one CPU nothing is bound.
bool two_cpus() { return ::sysconf(_SC_NPROCESSORS_ONLN) >= 2; }

std::vector<std::string> pinned(int cpu, std::vector<std::string> argv) {
  static const bool can = two_cpus() && !find_in_path("taskset").empty();
  if (can) argv.insert(argv.begin(), {"taskset", "-c", std::to_string(cpu)});
  return argv;
}

// ---- running helper programs --------------------------------------------------------

// The line of a failed program's output that best says why: the first that
// looks like an error, else the last non-empty one.
std::string why(const std::vector<std::string>& lines) {
  for (const std::string& l : lines)
    for (const char* word : {"rror", "ERROR", "failed", "cannot", "not ", "No "})
      if (l.find(word) != std::string::npos) return l.substr(0, 300);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (it->find_first_not_of(" -=*") != std::string::npos) return it->substr(0, 300);
  return "no output";
}

void stop_child(pid_t pid) {
  ::kill(pid, SIGTERM);
  if (wait_child(pid, std::chrono::seconds(5)).is_ok()) return;
  ::kill(pid, SIGKILL);
  (void)wait_child(pid, std::chrono::seconds(5));
}

// Run argv to completion (stdout and stderr together) and hand each line to
// `on_line`; all lines end up in *lines. Fails on a non-zero exit, a stop
// signal, or when the program prints nothing for `stall`.
Status run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   std::chrono::seconds stall, std::vector<std::string>* lines,
                   const std::function<void(const std::string&)>& on_line = {}) {
  ChildOptions o;
  o.merge_stderr = true;
  o.search_path = true;
  o.die_with_parent = true;
  o.env = env;
  COHORT_ASSIGN_OR_RETURN(Child c, start_child(argv, o));
  LineReader reader(c.out.get());
  auto deadline = Clock::now() + stall;
  for (;;) {
    if (int sig = stop_signal()) {
      stop_child(c.pid);
      return Status(Errc::kCanceled, "interrupted by " + signal_name(sig));
    }
    if (Clock::now() > deadline) {
      stop_child(c.pid);
      return Status(Errc::kTimeout, argv[0] + " printed nothing for " +
                                        std::to_string(stall.count()) +
                                        " s (--timeout); stopped it");
    }
    auto line = reader.next(std::chrono::milliseconds(200));
    if (line) {
      deadline = Clock::now() + stall;
      if (on_line) on_line(line.value());
      lines->push_back(std::move(line).value());
      continue;
    }
    if (line.status() == Errc::kPeerLost) break;
  }
  auto status = wait_child(c.pid, std::chrono::seconds(30));
  if (!status) {
    stop_child(c.pid);
    return Status(Errc::kTimeout, argv[0] + " closed its output but did not exit");
  }
  if (!WIFEXITED(status.value()) || WEXITSTATUS(status.value()) != 0)
    return Status(Errc::kInternal, argv[0] + " " + describe_wait_status(status.value()) + ": " +
                                       why(*lines));
  return Status();
}

// A TCP port nobody listens on now (the tools take their control port as an argument).
Result<int> free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return errno_status(Errc::kIoError, "socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return errno_status(Errc::kIoError, "bind(127.0.0.1:0)", errno);
  return static_cast<int>(ntohs(a.sin_port));
}

// Whether some socket listens on TCP `port` (read from /proc, so that the
// server's single accept() is not spent on a probe).
bool listening(int port) {
  char want[8];
  std::snprintf(want, sizeof want, ":%04X", port);
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string sl, local, remote, state;
    std::string rest;
    std::getline(in, rest);  // header
    while (in >> sl >> local >> remote >> state) {
      std::getline(in, rest);
      if (state == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, want) == 0)
        return true;
    }
  }
  return false;
}

// A server for a client/server tool: started, and known to listen on `port`.
class ToolServer {
 public:
  ~ToolServer() {
    if (c_.pid > 0) stop_child(c_.pid);
  }
  Status start(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               int port) {
    ChildOptions o;
    o.merge_stderr = true;
    o.search_path = true;
    o.die_with_parent = true;
    o.env = env;
    COHORT_ASSIGN_OR_RETURN(c_, start_child(argv, o));
    reader_ = std::make_unique<LineReader>(c_.out.get());
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!listening(port)) {
      drain();
      if (eof_ || Clock::now() > deadline || stop_signal()) {
        stop_child(c_.pid);
        c_.pid = -1;
        return Status(Errc::kInternal, argv[0] + " (server) did not start listening: " +
                                           why(lines_));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Status();
  }
  // After the client is done: the server should end by itself; make sure.
  void finish() {
    if (c_.pid <= 0) return;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!eof_ && Clock::now() < deadline) {
      auto line = reader_->next(std::chrono::milliseconds(100));
      if (line) lines_.push_back(std::move(line).value());
      else if (line.status() == Errc::kPeerLost) eof_ = true;
    }
    if (eof_ && wait_child(c_.pid, std::chrono::seconds(2)).is_ok()) {
      c_.pid = -1;
      return;
    }
    stop_child(c_.pid);
    c_.pid = -1;
  }

 private:
  void drain() {
    for (;;) {
      auto line = reader_->next(std::chrono::milliseconds(0));
      if (line) lines_.push_back(std::move(line).value());
      else {
        if (line.status() == Errc::kPeerLost) eof_ = true;
        return;
      }
    }
  }
  Child c_;
  std::unique_ptr<LineReader> reader_;
  std::vector<std::string> lines_;
  bool eof_ = false;
};

}  // namespace

// ---- cohort -------------------------------------------------------------------------


Status run_cohort(CohortVm& vm, const Step& step, const BenchArgs& b, PingpongSeries* out,
                  std::string* method) {
  std::string program = self_dir() + "/bench_pingpong";
  if (::access(program.c_str(), X_OK) != 0)
    return Status(Errc::kNotFound, program + " is missing; build the target bench_pingpong");
  std::vector<std::string> env_words;
  for (const std::string& e : step.env) env_words.push_back(shell_word(e));
  *method = join(env_words) + " cohort run -n 2 bench_pingpong " + join(program_args(b));
  JobSpec spec;
  spec.program = program;
  spec.args = program_args(b);
  spec.count = 2;
  spec.env = step.env;
  std::string used;
  std::vector<std::string> complaints;
  auto deadline = Clock::now() + b.timeout;  // moved on by every result line
  try {
    COHORT_ASSIGN_OR_RETURN(Session * s, vm.session());
    Job job(*s, [&](int rank, OutputStream stream, std::string_view line) {
      if (rank == 0 && stream == OutputStream::kStdout) {
        if (auto pt = parse_pingpong_line(line)) {
          (*out)[pt->size] = *pt;
          deadline = Clock::now() + b.timeout;
          return;
        }
        if (auto t = parse_pingpong_transport(line)) used = *t;
        if (!line.empty() && line[0] == '#') return;
      }
      complaints.push_back("[" + std::to_string(rank) + "] " + std::string(line));
    });
    COHORT_RETURN_IF_ERROR(job.start(spec));
    deadline = Clock::now() + b.timeout;
    while (!job.wait_for(std::chrono::milliseconds(200))) {
      if (int sig = stop_signal()) {
        job.terminate(std::chrono::seconds(2));
        return Status(Errc::kCanceled, "interrupted by " + signal_name(sig));
      }
      if (Clock::now() > deadline) {
        job.terminate(std::chrono::seconds(2));
        return Status(Errc::kTimeout, "the cohort pingpong reported nothing for " +
                                          std::to_string(b.timeout.count()) +
                                          " s (--timeout); stopped it");
      }
    }
    for (const TaskEnd& e : job.ends())
      if (e.exit_code != 0 || e.signal != 0)
        return Status(Errc::kInternal,
                      "rank " + std::to_string(e.rank) +
                          (e.signal ? " killed by " + signal_name(e.signal)
                                    : " exited with status " + std::to_string(e.exit_code)) +
                          (complaints.empty() ? "" : ": " + complaints.front()));
  } catch (const Error& e) {
    return Status(e.errc(), e.what());
  }
  for (const std::string& c : complaints) std::fprintf(stderr, "cohort bench:   %s\n", c.c_str());
  // A transport that COHORT_TRANSPORTS does not force (yet) would put another
  // transport's figures under this label: refuse them.
  if (used != step.transport) {
    out->clear();
    return Status(Errc::kUnsupported, "the tasks used '" + (used.empty() ? "?" : used) +
                                          "' although " + step.env.front() + " was set");
  }
  return Status();
}

// ---- the references -----------------------------------------------------------------

Status run_openmpi(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                   std::string* method) {
  std::string program = self_dir() + "/bench_pingpong_mpi";
  if (::access(program.c_str(), X_OK) != 0)
    return Status(Errc::kNotFound, "bench_pingpong_mpi was not built (CMake did not find Open "
                                   "MPI); install libopenmpi-dev and reconfigure");
  std::string mpirun = find_in_path("mpirun");
  if (mpirun.empty()) return Status(Errc::kNotFound, "mpirun is not in PATH (apt-get install openmpi-bin)");
  // One core per rank, like the cohort tasks (bound by default while they fit)
  // and the fabric tools (pinned()): mpirun's own default for two ranks.
  std::vector<std::string> argv = {"mpirun", "-n", "2", "--oversubscribe", "--bind-to",
                                   two_cpus() ? "core" : "none"};
  if (::geteuid() == 0) argv.push_back("--allow-run-as-root");
  // pml ob1 makes Open MPI use the BTL we name; its UCX PML would pick its own path.
  if (r.path == "tcp") {
    argv.insert(argv.end(), {"--mca", "pml", "ob1", "--mca", "btl", "tcp,self"});
  } else if (r.path == "vader") {
    // CMA (process_vm_readv) is vader's single-copy default where permitted;
    // asking for it makes a refusal an error instead of a silent fallback.
    argv.insert(argv.end(), {"--mca", "pml", "ob1", "--mca", "btl", "vader,self", "--mca",
                             "btl_vader_single_copy_mechanism", "cma"});
  } else {
    // Open MPI 4.1 keeps pml ucx for Mellanox devices unless told otherwise.
    argv.insert(argv.end(), {"--mca", "pml", "ucx", "--mca", "pml_ucx_tls", "any", "--mca",
                             "pml_ucx_devices", "any", "-x", "UCX_TLS=" + r.tls});
  }
  std::vector<std::string> words;
  for (const std::string& a : argv) words.push_back(shell_word(a));
  *method = join(words) + " bench_pingpong_mpi " + join(program_args(b));
  argv[0] = mpirun;
  argv.push_back(program);
  for (const std::string& a : program_args(b)) argv.push_back(a);
  std::vector<std::string> lines;
  return run_program(argv, {}, b.timeout, &lines, [&](const std::string& l) {
    if (auto pt = parse_pingpong_line(l)) (*out)[pt->size] = *pt;
  });
}

// fi_pingpong times its first transfer with the connection set-up of ofi_rxm
// (about 20-50 ms here) and has no warm-up. So each size runs twice, with 1 and
// with n + 1 round trips, and the difference is n round trips.
Status run_fi_pingpong(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                       std::string* method) {
  if (find_in_path("fi_pingpong").empty())
    return Status(Errc::kNotFound, "fi_pingpong is not in PATH (apt-get install libfabric-bin)");
  *method = std::string(two_cpus() ? "taskset -c 0|1 " : "") + "fi_pingpong -p '" + r.path +
            "' -e rdm -S SIZE -I N -B PORT (server; the client has -P PORT 127.0.0.1), per "
            "size with N = 1 and N = 1 + ITERS*R; latency = the difference / 2 (ITERS*R)";
  auto total_us = [&](std::size_t size, long n) -> Result<double> {
    COHORT_ASSIGN_OR_RETURN(int port, free_port());
    std::vector<std::string> common = {"-p", r.path, "-e", "rdm", "-S", std::to_string(size),
                                       "-I", std::to_string(n)};
    std::vector<std::string> server = {"fi_pingpong", "-B", std::to_string(port)};
    server.insert(server.end(), common.begin(), common.end());
    std::vector<std::string> client = {"fi_pingpong", "-P", std::to_string(port)};
    client.insert(client.end(), common.begin(), common.end());
    client.push_back("127.0.0.1");
    server = pinned(0, std::move(server));
    client = pinned(1, std::move(client));
    ToolServer srv;
    COHORT_RETURN_IF_ERROR(srv.start(server, {}, port));
    std::vector<std::string> lines;
    std::optional<double> usec;
    Status st = run_program(client, {}, b.timeout, &lines,
                            [&](const std::string& l) {
                              if (auto u = parse_fi_pingpong_line(l)) usec = *u;
                            });
    srv.finish();
    COHORT_RETURN_IF_ERROR(st);
    if (!usec) return Status(Errc::kProtocolError, "no result line from fi_pingpong: " + why(lines));
    return *usec * 2.0 * static_cast<double>(n);  // usec/xfer counts both directions
  };
  for (std::size_t size : b.sizes) {
    const long n = iters_for(size, b.iters) * b.reps;
    COHORT_ASSIGN_OR_RETURN(double once, total_us(size, 1));
    COHORT_ASSIGN_OR_RETURN(double all, total_us(size, n + 1));
    if (all <= once) continue;  // set-up varied more than n round trips took: no figure
    PingpongPoint pt;
    pt.size = size;
    pt.iters = n;
    pt.latency_us = (all - once) / (2.0 * static_cast<double>(n));
    pt.bandwidth_mbps = static_cast<double>(size) / pt.latency_us;
    (*out)[size] = pt;
  }
  return Status();
}

// ucx_perftest runs a batch file: a warm-up test, then R repetitions of tag_lat
// per size; the median of the repetitions' means, as in our programs.
Status run_ucx_perftest(const Reference& r, const BenchArgs& b, PingpongSeries* out,
                        std::string* method) {
  if (find_in_path("ucx_perftest").empty())
    return Status(Errc::kNotFound, "ucx_perftest is not in PATH (apt-get install ucx-utils)");
  char path[] = "/tmp/cohort-bench-ucx-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return errno_status(Errc::kIoError, "mkstemp(/tmp/cohort-bench-ucx-*)", errno);
  ::close(fd);
  struct Unlink {
    const char* p;
    ~Unlink() { ::unlink(p); }
  } unlink_batch{path};
  {
    std::ofstream batch(path);
    batch << "warmup -t tag_lat -s 8 -n 1000 -w 100\n";
    for (std::size_t size : b.sizes) {
      const long n = iters_for(size, b.iters);
      for (long rep = 0; rep < b.reps; ++rep)
        batch << "s" << size << " -t tag_lat -s " << size << " -n " << n << " -w "
              << std::max(1L, n / 10) << "\n";
    }
    if (!batch) return Status(Errc::kIoError, std::string("cannot write ") + path);
  }
  COHORT_ASSIGN_OR_RETURN(int port, free_port());
  std::vector<std::string> env = {"UCX_TLS=" + r.path};
  std::vector<std::string> server =
      pinned(0, {"ucx_perftest", "-p", std::to_string(port), "-b", path, "-f", "-v"});
  std::vector<std::string> client = pinned(
      1, {"ucx_perftest", "127.0.0.1", "-p", std::to_string(port), "-b", path, "-f", "-v"});
  *method = shell_word("UCX_TLS=" + r.path) + (two_cpus() ? " taskset -c 0|1" : "") +
            " ucx_perftest -p PORT -b BATCH -f -v (server; the client adds 127.0.0.1), BATCH: "
            "per size R lines '-t tag_lat -s SIZE -n ITERS -w ITERS/10'; median of the "
            "overall means";
  ToolServer srv;
  COHORT_RETURN_IF_ERROR(srv.start(server, env, port));
  std::map<std::size_t, std::vector<double>> reps;
  std::vector<std::string> lines;
  Status st = run_program(client, env, b.timeout, &lines, [&](const std::string& l) {
    auto row = parse_ucx_perftest_line(l);
    if (!row || row->label.size() < 2 || row->label[0] != 's') return;
    reps[std::strtoull(row->label.c_str() + 1, nullptr, 10)].push_back(row->overall_lat_us);
  });
  srv.finish();
  for (auto& [size, v] : reps) {
    PingpongPoint pt;
    pt.size = size;
    pt.iters = iters_for(size, b.iters);
    pt.latency_us = median(v);
    pt.bandwidth_mbps = static_cast<double>(size) / pt.latency_us;
    (*out)[size] = pt;
  }
  return st;
}


}  // namespace cohort::cli
