// bench/cluster_bench.cpp — cohort_cluster_bench: the multi-host VM on emulated
// hosts (network namespaces, tests/support/netns_cluster.hpp) next to Open
// MPI's mpirun over the same hosts. Needs root; without it says so and exits 0.
//
//   cohort_cluster_bench [--hosts 4,16] [--tasks 16,64] [--reps 3] [--csv FILE] [--no-mpi]
//
// Per host count N and repetition, on a fresh cluster of N+1 emulated hosts:
//   cohort:  `cohort start --hostfile` (h1..hN), `cohort run --map-by host -n K
//            /bin/true` for each K, `cohort add hN+1`; then the VM is killed.
//   openmpi: `mpirun -np N --map-by node` over h1..hN (its counterpart of a boot:
//            a daemon on every host), `mpirun -np K` over h1..hN for each K, and
//            `mpirun -np 1 --host hN+1` (bringing one more host into use).
// Every command runs inside h1 through tests/netns/netns_exec.sh; mpirun's rsh
// agent is bench/mpirun_netns_agent.sh. When mpirun cannot run across the
// emulated hosts, the Open MPI side runs on h1 alone (same process counts) and
// says so. See bench/README.md.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/cluster_bench_report.hpp"
#include "tests/support/netns_cluster.hpp"

namespace cohort::bench {
namespace {

using testing::NetnsCluster;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const char* const kUsage =
    "usage: cohort_cluster_bench [--hosts 4,16] [--tasks 16,64] [--reps 3] [--csv FILE] [--no-mpi]\n"
    "                            [--task-sleep S]\n"
    "\n"
    "Boot a cohort VM of N emulated hosts, add one host, spawn K tasks of /bin/true\n"
    "across them, and time Open MPI's mpirun starting the same process counts over\n"
    "the same hosts. Prints medians and cohort / Open MPI ratios. Needs root.\n"
    "--task-sleep S spawns /bin/sleep S instead (both systems) and subtracts S from\n"
    "the spawn times; S=2 is chosen by itself when cohort loses the exits of tasks\n"
    "that end at once (see bench/README.md).\n";

struct Options {
  std::vector<int> hosts = {4, 16};
  std::vector<int> tasks = {16, 64};
  int reps = 3;
  std::string csv;
  bool mpi = true;
  int task_sleep_s = 0;  // spawned tasks: /bin/true, or /bin/sleep S (see spawn_probe)
};

bool parse_list(const std::string& text, std::vector<int>* out) {
  out->clear();
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    int v = std::atoi(item.c_str());
    if (v <= 0) return false;
    out->push_back(v);
  }
  return !out->empty();
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--no-mpi") o->mpi = false;
    else if (a == "--hosts" && (v = next())) { if (!parse_list(v, &o->hosts)) return false; }
    else if (a == "--tasks" && (v = next())) { if (!parse_list(v, &o->tasks)) return false; }
    else if (a == "--reps" && (v = next())) { if ((o->reps = std::atoi(v)) <= 0) return false; }
    else if (a == "--csv" && (v = next())) o->csv = v;
    else if (a == "--task-sleep" && (v = next())) { if ((o->task_sleep_s = std::atoi(v)) < 0) return false; }
    else return false;
  }
  for (int n : o->hosts)
    if (n > 150) return false;
  return true;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string first_lines(const std::string& s) {
  return s.size() > 1500 ? s.substr(0, 1500) + "..." : s;
}

// Run argv inside host 1 and time it; an error (with the program's output)
// unless it exits with 0.
Result<double> timed(const NetnsCluster& c, const std::vector<std::string>& argv,
                     std::chrono::milliseconds deadline = 120s) {
  auto t0 = Clock::now();
  auto r = c.run(1, argv, deadline);
  double ms = ms_since(t0);
  if (!r.is_ok()) return r.take_status();
  if (r->exit_code != 0) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    return Status(Errc::kInternal, line + "exited with " + std::to_string(r->exit_code) + ": " +
                                       first_lines(r->err + r->out));
  }
  return ms;
}

// SIGKILL everything in every host and wait until the hosts are empty, so the
// next measurement has the machine to itself.
void clear_hosts(NetnsCluster& c) {
  for (int h : c.hosts()) (void)c.kill_host(h);
  auto deadline = Clock::now() + 10s;
  for (int h : c.hosts()) {
    std::string ns = c.prefix() + "-h" + std::to_string(h);
    while (Clock::now() < deadline) {
      auto r = testing::run_program({"ip", "netns", "pids", ns}, "", 10s);
      if (!r.is_ok() || r->out.find_first_not_of(" \n") == std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
  }
}

std::string host_list(int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i) {
    if (i > from) s += ',';
    s += NetnsCluster::host_name(i);
  }
  return s;
}

// What the spawns start, on both sides.
std::vector<std::string> task_argv(const Options& o) {
  if (o.task_sleep_s == 0) return {"/bin/true"};
  return {"/bin/sleep", std::to_string(o.task_sleep_s)};
}

Measure spawn_measure(const Options& o, int n, int k) {
  return {o.task_sleep_s ? "spawn_sleep" : "spawn", n, k};
}

// `cohort ARGS` talking to the VM whose master runs in directory `vm`.
std::vector<std::string> cohort_argv(const std::string& vm, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"env", "COHORT_DIR=" + vm, testing::bin("cohort")};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// `cohort start` over h1..hn in a fresh directory under `tmp`; the VM's directory.
Result<double> cohort_boot(const NetnsCluster& c, const testing::TempDir& tmp, int n) {
  {
    std::ofstream hf(tmp.path() + "/hostfile");
    for (int i = 1; i <= n; ++i) hf << NetnsCluster::host_name(i) << "\n";
  }
  return timed(c, cohort_argv(tmp.path() + "/vm", {"start", "--hostfile", tmp.path() + "/hostfile",
                                                    "--agent", c.agent_template(), "--timeout", "60"}));
}

// Can cohort spawn short tasks over every host, the master's included? A
// daemon that reports the exit of a task on its own host only once the other
// hosts have answered the spawn loses the exits of tasks that end sooner, and
// `cohort run` then never returns. Asked once, untimed, with a short deadline
// (it is also the cohort side's warm-up).
Status spawn_probe(NetnsCluster& c, int n) {
  testing::TempDir tmp;
  const std::string vm = tmp.path() + "/vm";
  auto boot = cohort_boot(c, tmp, n);
  Status st = boot.is_ok() ? Status() : boot.take_status();
  if (st.is_ok()) {
    auto run = timed(c, cohort_argv(vm, {"run", "--map-by", "host", "--bind-to", "none", "-n",
                                         std::to_string(2 * n), "/bin/true"}),
                     15s);
    if (!run.is_ok()) st = run.take_status();
  }
  (void)c.run(1, cohort_argv(vm, {"halt"}), 20s);
  clear_hosts(c);
  return st;
}

// One cohort repetition on hosts 1..n (host n+1 stays out until `add`).
Status cohort_rep(NetnsCluster& c, int n, const Options& o, ClusterReport& report) {
  testing::TempDir tmp;
  const std::string vm = tmp.path() + "/vm";
  auto cohort = [&](const std::vector<std::string>& args) { return cohort_argv(vm, args); };
  Status st;
  auto boot = cohort_boot(c, tmp, n);
  if (!boot.is_ok()) st = boot.take_status();
  if (st.is_ok()) report.add("cohort", {"boot", n, n}, *boot);
  for (int k : o.tasks) {
    if (!st.is_ok()) break;
    std::vector<std::string> args = {"run", "--map-by", "host", "--bind-to", "none", "-n",
                                     std::to_string(k)};
    for (const auto& a : task_argv(o)) args.push_back(a);
    auto run = timed(c, cohort(args), 60s);
    if (!run.is_ok()) st = run.take_status();
    else report.add("cohort", spawn_measure(o, n, k), *run - 1000.0 * o.task_sleep_s);
  }
  if (st.is_ok()) {
    auto add = timed(c, cohort({"add", "--agent", c.agent_template(), "--timeout", "60",
                                NetnsCluster::host_name(n + 1)}));
    if (!add.is_ok()) st = add.take_status();
    else report.add("cohort", {"add", n, n + 1}, *add);
  }
  if (!st.is_ok()) {  // the daemons' logs say why (the others' are next to the master's)
    std::string logs;
    for (int i = 1; i <= n + 1; ++i) {
      std::ifstream log((i == 1 ? vm : vm + "-h" + std::to_string(i)) + "/cohortd.log");
      if (!log) continue;
      std::stringstream ss;
      ss << log.rdbuf();
      std::string text = ss.str();
      if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
      logs += "\n--- daemon log of h" + std::to_string(i) + " ---\n" + text;
    }
    st = Status(st.code(), st.message() + logs);
  }
  (void)c.run(1, cohort({"halt"}), 20s);
  clear_hosts(c);
  return st;
}

// Open MPI's side. `across`: over the emulated hosts through the rsh agent;
// otherwise every process on h1 (the fall-back).
struct Mpirun {
  std::string agent;   // plm_rsh_agent value
  std::string subnet;  // e.g. 10.213.41.0/24
  bool across = true;

  std::vector<std::string> argv(int np, const std::string& hosts,
                                const std::vector<std::string>& program = {"/bin/true"}) const {
    std::vector<std::string> a = {"mpirun", "--allow-run-as-root", "--oversubscribe",
                                  "--bind-to", "none", "--map-by", "node", "-np",
                                  std::to_string(np), "--host", across ? hosts : "h1"};
    if (across)
      for (const char* kv : {"plm_rsh_agent", "oob_tcp_if_include", "btl_tcp_if_include"}) {
        a.insert(a.end(), {"--mca", kv});
        a.push_back(std::string(kv) == "plm_rsh_agent" ? agent : subnet);
      }
    a.insert(a.end(), program.begin(), program.end());
    return a;
  }
};

Status mpi_rep(NetnsCluster& c, int n, const Options& o, const Mpirun& m,
               const std::string& system, ClusterReport& report) {
  Status st;
  auto record = [&](const Measure& what, int np, const std::string& hosts) {
    if (!st.is_ok()) return;
    auto t = timed(c, m.argv(np, hosts));
    if (!t.is_ok()) st = t.take_status();
    else report.add(system, what, *t);
  };
  record({"boot", n, n}, n, host_list(1, n));
  for (int k : o.tasks) {
    if (!st.is_ok()) break;
    auto t = timed(c, m.argv(k, host_list(1, n), task_argv(o)));
    if (!t.is_ok()) st = t.take_status();
    else report.add(system, spawn_measure(o, n, k), *t - 1000.0 * o.task_sleep_s);
  }
  record({"add", n, n + 1}, 1, NetnsCluster::host_name(n + 1));
  clear_hosts(c);
  return st;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, cc;
  f >> a >> b >> cc;
  return a + " " + b + " " + cc;
}

int run_bench(Options o) {
  if (::geteuid() != 0) {
    std::printf("cohort_cluster_bench: needs root (the emulated hosts are network namespaces); "
                "nothing measured\n");
    return 0;
  }
  const bool have_mpi = o.mpi && std::system("command -v mpirun >/dev/null 2>&1") == 0;
  if (o.mpi && !have_mpi)
    std::fprintf(stderr, "cohort_cluster_bench: mpirun not found (apt-get install openmpi-bin); "
                         "cohort only\n");
  const std::string agent_script = testing::bin("mpirun_netns_agent.sh");
  std::printf("cohort_cluster_bench: %u CPUs, load average %s, %d repetitions (medians)\n",
              std::thread::hardware_concurrency(), load_average().c_str(), o.reps);

  ClusterReport report;
  std::string reference = "openmpi";
  bool probed = false;
  Mpirun mpirun;
  int failures = 0;
  for (int n : o.hosts) {
    auto made = NetnsCluster::create(n + 1);
    if (!made.is_ok()) {
      std::printf("cohort_cluster_bench: no emulated cluster here (%s); nothing measured\n",
                  made.status().to_string().c_str());
      return 0;
    }
    NetnsCluster& c = **made;
    mpirun.agent = agent_script + " " + testing::netns_exec_script() + " " + c.prefix();
    std::string a1 = c.address(1);
    mpirun.subnet = a1.substr(0, a1.rfind('.')) + ".0/24";

    // What entering a host costs (netns_exec.sh: nsenter, unshare, two bind
    // mounts); every timed command below pays it once.
    ClusterReport enter;
    for (int r = 0; r < 5; ++r) {
      auto t = timed(c, {"/bin/true"});
      if (t.is_ok()) enter.add("x", {"enter", n, 0}, *t);
    }
    if (auto e = enter.median_ms("x", {"enter", n, 0}))
      std::printf("%d hosts: entering a host costs %.1f ms per command (in every figure)\n", n, *e);

    if (!probed && o.task_sleep_s == 0) {
      if (Status s = spawn_probe(c, n); !s.is_ok()) {
        o.task_sleep_s = 2;
        std::printf("NOTE: cohort run -n %d /bin/true over h1..h%d failed (%s);\n"
                    "      spawns start '/bin/sleep 2' instead, on both sides, and 2 s is "
                    "subtracted\n",
                    2 * n, n, s.to_string().substr(0, s.to_string().find(';')).c_str());
      }
    }
    if (have_mpi && !probed) {
      auto t = timed(c, mpirun.argv(2, host_list(1, 2)), 60s);
      if (!t.is_ok()) {
        mpirun.across = false;
        reference = "openmpi-1host";
        std::printf("NOTE: mpirun could not run across the emulated hosts (%s);\n"
                    "      Open MPI's figures are mpirun on h1 alone, same process counts\n",
                    first_lines(t.status().to_string()).c_str());
      }
      clear_hosts(c);
    }
    probed = true;
    for (int r = 0; r < o.reps; ++r) {
      if (Status s = cohort_rep(c, n, o, report); !s.is_ok()) {
        ++failures;
        std::fprintf(stderr, "cohort, %d hosts, repetition %d: %s\n", n, r + 1, s.to_string().c_str());
      }
      if (!have_mpi) continue;
      if (Status s = mpi_rep(c, n, o, mpirun, reference, report); !s.is_ok()) {
        ++failures;
        std::fprintf(stderr, "%s, %d hosts, repetition %d: %s\n", reference.c_str(), n, r + 1,
                     s.to_string().c_str());
      }
    }
  }

  std::printf("\n");
  report.print_table(stdout, reference);
  std::printf("\nratio = cohort / %s (below 1: cohort is faster); t/s = tasks per second.\n",
              reference.c_str());
  std::string prog;
  for (const auto& a : task_argv(o)) prog += (prog.empty() ? "" : " ") + a;
  std::printf("cohort: boot: cohort start --hostfile (h1..hN) | add: cohort add hN+1 |\n"
              "  spawn: cohort run --map-by host --bind-to none -n K %s (in the VM booted before)\n",
              prog.c_str());
  if (have_mpi)
    std::printf("%s: mpirun --allow-run-as-root --oversubscribe --bind-to none --map-by node "
                "-np P --host %s%s /bin/true\n"
                "  boot: P=N over h1..hN | add: P=1 on hN+1 | spawn: P=K over h1..hN, %s "
                "(each mpirun starts and stops its own daemons)\n",
                reference.c_str(), mpirun.across ? "h1,..,hN" : "h1",
                mpirun.across ? " --mca plm_rsh_agent 'mpirun_netns_agent.sh netns_exec.sh PREFIX'"
                                " --mca oob_tcp_if_include SUBNET --mca btl_tcp_if_include SUBNET"
                              : "",
                prog.c_str());
  if (o.task_sleep_s)
    std::printf("spawn (sleep): the job's time minus the %d s every task sleeps\n", o.task_sleep_s);
  if (failures) std::printf("%d repetitions failed (see stderr); their figures are missing\n", failures);
  std::printf("load average after: %s\n", load_average().c_str());
  if (!o.csv.empty()) {
    if (!report.write_csv(o.csv)) {
      std::fprintf(stderr, "cohort_cluster_bench: cannot write %s\n", o.csv.c_str());
      return 1;
    }
    std::printf("CSV: %s\n", o.csv.c_str());
  }
  // Timings never fail the run; only a cohort side that measured nothing does.
  return report.median_ms("cohort", {"boot", o.hosts.front(), o.hosts.front()}) ? 0 : 1;
}

}  // namespace
}  // namespace cohort::bench

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // our lines and stderr's stay in order
  cohort::bench::Options o;
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::fputs(cohort::bench::kUsage, stdout);
    return 0;
  }
  if (!cohort::bench::parse(argc, argv, &o)) {
    std::fputs(cohort::bench::kUsage, stderr);
    return 2;
  }
  return cohort::bench::run_bench(o);
}
