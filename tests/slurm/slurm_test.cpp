// `cohort start` inside a Slurm allocation: the VM is booted over the
// allocation's nodes with srun. Each test runs its own one-node Slurm (Debian's
// slurmctld + slurmd 22.05, auth/none, in a temporary directory, on free ports).
//
// The node is a slurmd in a UTS namespace of its own named `cohortslurm1`, on
// this machine's network: to Slurm and to cohort it is another host (its own
// host name), so the master (the test's `cohort start`, on this host) has to
// start a daemon there, and does it with `srun ... cohortd --join ...`.
// Root only (slurmd, unshare); without root or Slurm every test skips with the
// reason.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "base/fd.hpp"
#include "tests/support/daemon_harness.hpp"

extern char** environ;

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kNode = "cohortslurm1";

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The first of `names` found in PATH or the sbin directories, or "".
std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::stringstream ss(path);
  for (std::string dir; std::getline(ss, dir, ':');) {
    if (dir.empty()) continue;
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// A TCP port nobody uses now, below the kernel's ephemeral range so that no
// outgoing connection (srun, cohortd, an earlier test's lingering sockets) can
// take it between this check and the daemon's bind(); checked on INADDR_ANY,
// which is what slurmctld and slurmd bind.
int free_port() {
  int lo = 32768;
  if (std::ifstream r("/proc/sys/net/ipv4/ip_local_port_range"); r) r >> lo;
  static std::mt19937 rng(std::random_device{}());
  const int top = std::max(lo, 12000);
  std::uniform_int_distribution<int> pick(10000, top - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return port;
  }
  return 0;
}

// Start `argv` in the background, stdout and stderr to `log`; its pid.
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// SIGTERM, then SIGKILL after `grace`; reaps.
void stop_child(pid_t pid, std::chrono::seconds grace = 10s) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (runs slurmctld, slurmd and unshare)";
    for (const char* p : {"slurmctld", "slurmd", "srun", "salloc", "squeue", "scancel", "sinfo",
                          "unshare"}) {
      if (find_program(p).empty())
        GTEST_SKIP() << p << " is not installed (apt-get install slurmctld slurmd slurm-client)";
    }
    dir_ = tmp_.path() + "/slurm";
    std::filesystem::create_directories(dir_ + "/state");
    std::filesystem::create_directories(dir_ + "/spool");
    // A port taken after all (or a daemon that dies at start) is retried with
    // new ports rather than waited out.
    std::string why;
    for (int attempt = 0; attempt < 3; ++attempt) {
      why = start_slurm();
      if (why.empty()) return;
      stop_child(slurmd_);
      stop_child(ctld_);
      slurmd_ = ctld_ = -1;
    }
    FAIL() << why << slurm_logs();
  }

  // Writes slurm.conf on fresh ports, starts slurmctld and the node's slurmd,
  // and waits for the node to be idle; "" when it is, else why not.
  std::string start_slurm() {
    int ctld_port = free_port(), d_port = free_port();
    if (ctld_port <= 0 || d_port <= 0 || ctld_port == d_port) return "no free TCP port for Slurm";
    for (const char* log : {"/slurmctld.log", "/ctld.out", "/slurmd.log", "/slurmd.out"})
      std::filesystem::remove(dir_ + log);
    conf_ = dir_ + "/slurm.conf";
    std::ofstream c(conf_);
    c << "ClusterName=cohorttest\n"
         "SlurmctldHost=localhost(127.0.0.1)\n"
         "SlurmUser=root\n"
         "AuthType=auth/none\n"
         "CredType=cred/none\n"
         "MpiDefault=none\n"
         "ProctrackType=proctrack/linuxproc\n"
         "TaskPlugin=task/none\n"
         "SelectType=select/cons_tres\n"
         "SelectTypeParameters=CR_Core\n"
         "ReturnToService=2\n"
      << "SlurmctldPort=" << ctld_port << "\nSlurmdPort=" << d_port << "\n"
      << "StateSaveLocation=" << dir_ << "/state\n"
      << "SlurmdSpoolDir=" << dir_ << "/spool\n"
      << "SlurmctldPidFile=" << dir_ << "/slurmctld.pid\n"
      << "SlurmdPidFile=" << dir_ << "/slurmd.pid\n"
      << "SlurmctldLogFile=" << dir_ << "/slurmctld.log\n"
      << "SlurmdLogFile=" << dir_ << "/slurmd.log\n"
      << "NodeName=" << kNode << " NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n"
      << "PartitionName=debug Nodes=" << kNode << " Default=YES MaxTime=INFINITE State=UP\n";
    c.close();
    // Everything the test starts (sinfo, salloc, srun, cohortd) reads this one.
    ::setenv("SLURM_CONF", conf_.c_str(), 1);
    ctld_ = spawn_logged({find_program("slurmctld"), "-D", "-i", "-f", conf_}, dir_ + "/ctld.out");
    // The node: its own host name (UTS namespace), this machine's network.
    slurmd_ = spawn_logged({find_program("unshare"), "--uts", "sh", "-c",
                            std::string("hostname ") + kNode + " && exec " +
                                find_program("slurmd") + " -D -N " + kNode + " -f " + conf_},
                           dir_ + "/slurmd.out");
    if (ctld_ <= 0 || slurmd_ <= 0) return "cannot start slurmctld or slurmd";
    auto deadline = Clock::now() + 40s;
    std::string state;
    while (Clock::now() < deadline) {
      if (::waitpid(ctld_, nullptr, WNOHANG) == ctld_) {
        ctld_ = -1;
        return "slurmctld exited at start";
      }
      if (::waitpid(slurmd_, nullptr, WNOHANG) == slurmd_) {
        slurmd_ = -1;
        return "slurmd exited at start";
      }
      if (slurm_logs().find("Address already in use") != std::string::npos)
        return "a Slurm port was taken after all";
      auto r = run({"sinfo", "-h", "-n", kNode, "-o", "%T"}, 10s);
      state = r.out;
      if (state.find("idle") == 0) return "";
      std::this_thread::sleep_for(250ms);
    }
    return "the Slurm node never became idle: '" + state + "'";
  }

  void TearDown() override {
    if (!job_.empty()) run({"scancel", job_}, 20s);
    // A master daemon left by a failed test (halted ones are gone already).
    if (auto pid = std::atoi(slurp(vm_dir() + "/cohortd.pid").c_str()); pid > 0)
      if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
    // slurmd first (its steps end with it), then slurmctld; both by PID.
    stop_child(slurmd_);
    stop_child(ctld_);
    ::unsetenv("SLURM_CONF");
  }

  std::string vm_dir() const { return tmp_.path() + "/vm"; }

  ProgramResult run(std::vector<std::string> argv, std::chrono::milliseconds deadline = 60s,
                    std::vector<std::string> env = {}) {
    auto r = run_program(argv, vm_dir(), deadline, env);
    EXPECT_TRUE(r.is_ok()) << argv[0] << ": " << r.status().to_string();
    return r.is_ok() ? *r : ProgramResult{};
  }

  // `cohort ARGS` as in a shell of the allocation (SLURM_JOB_ID, SLURM_JOB_NODELIST).
  ProgramResult cohort(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), bin("cohort"));
    env.insert(env.end(), {"SLURM_JOB_ID=" + job_, "SLURM_JOBID=" + job_,
                           "SLURM_JOB_NODELIST=" + nodelist_, "SLURM_NODELIST=" + nodelist_,
                           "SLURM_JOB_NUM_NODES=1"});
    return run(args, 90s, env);
  }

  // An allocation of the node, held by slurmctld until scancel (salloc --no-shell).
  void allocate() {
    auto r = run({"salloc", "--no-shell", "-N1", "-J", "cohort-test"}, 60s);
    std::smatch m;
    std::regex granted("Granted job allocation ([0-9]+)");
    ASSERT_TRUE(std::regex_search(r.err, m, granted)) << r.out << r.err << slurm_logs();
    job_ = m[1];
    auto q = run({"squeue", "-h", "-j", job_, "-o", "%N"}, 20s);
    nodelist_ = q.out.substr(0, q.out.find('\n'));
    ASSERT_EQ(nodelist_, kNode) << q.out << q.err;
  }

  // The job's steps, as `squeue --steps` names them ("ID NAME" lines).
  std::string steps() { return run({"squeue", "-h", "--steps", "-j", job_, "-o", "%i %j"}, 20s).out; }

  std::string master_log() const {
    return "\n--- master log ---\n" + slurp(vm_dir() + "/cohortd.log");
  }
  std::string slurm_logs() const {
    return "\n--- slurmctld ---\n" + slurp(dir_ + "/slurmctld.log") + slurp(dir_ + "/ctld.out") +
           "\n--- slurmd ---\n" + slurp(dir_ + "/slurmd.log") + slurp(dir_ + "/slurmd.out");
  }

  TempDir tmp_;
  std::string dir_, conf_, job_, nodelist_;
  pid_t ctld_ = -1, slurmd_ = -1;
};

bool lists(const std::string& out, const std::string& host) {
  return out.find(" " + host + " ") != std::string::npos;
}

// The whole life of a VM in an allocation: start with no hosts boots every
// node through srun (a step named cohortd), a job runs there, a node outside
// the allocation fails with srun's own message and the VM runs on, halt ends
// the step.
TEST_F(Slurm, StartInsideAnAllocationBootsItsNodesWithSrun) {
  allocate();
  if (HasFatalFailure()) return;

  auto start = cohort({"start", "--timeout", "40"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err << master_log() << slurm_logs();
  EXPECT_NE(start.out.find("inside Slurm job " + job_), std::string::npos) << start.out;
  EXPECT_NE(start.out.find(std::string("host ") + kNode + " is host 2"), std::string::npos)
      << start.out;
  std::string log = slurp(vm_dir() + "/cohortd.log");
  EXPECT_NE(log.find(std::string("starting a daemon on ") + kNode + " through slurm"),
            std::string::npos) << log;
  EXPECT_NE(log.find(std::string("srun --nodes=1 --ntasks=1 --nodelist=") + kNode),
            std::string::npos) << log;
  // The daemon is a step of the job, there as long as it runs (no --daemonize).
  EXPECT_NE(steps().find("cohortd"), std::string::npos) << steps();

  auto hosts = cohort({"hosts"});
  EXPECT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_TRUE(lists(hosts.out, kNode)) << hosts.out;

  // A job on the Slurm node (its daemon spawns the tasks there).
  auto job = cohort({"run", "--host", kNode, "-n", "2", bin("mh_task"), "ring"});
  EXPECT_EQ(job.exit_code, 0) << job.out << job.err << master_log();
  EXPECT_NE(job.out.find(std::string("rank 0 on ") + kNode), std::string::npos) << job.out;
  EXPECT_NE(job.out.find(std::string("rank 1 on ") + kNode), std::string::npos) << job.out;
  EXPECT_NE(job.out.find("ring ok"), std::string::npos) << job.out;

  // A node that is not in the allocation: srun's error, the VM runs on.
  auto bad = cohort({"add", "--timeout", "30", "nosuchnode"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("cannot start host nosuchnode"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("srun: error"), std::string::npos) << bad.err;
  auto still = cohort({"hosts"});
  EXPECT_EQ(still.exit_code, 0) << still.err;
  EXPECT_TRUE(lists(still.out, kNode)) << still.out;

  // `cohort start` again in the allocation: already running, the node already in.
  auto again = cohort({"start"});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("already running"), std::string::npos) << again.out;

  EXPECT_EQ(cohort({"halt"}).exit_code, 0);
  // The node's daemon stops with the VM, and its step ends with it.
  auto deadline = Clock::now() + 20s;
  std::string s = steps();
  while (Clock::now() < deadline && s.find("cohortd") != std::string::npos) {
    std::this_thread::sleep_for(200ms);
    s = steps();
  }
  EXPECT_EQ(s.find("cohortd"), std::string::npos) << "the cohortd step outlived the VM:\n" << s;
}

// With hosts named, the default agent inside an allocation is srun; a user's
// --agent wins (here a template that cannot start anything, so it fails with
// its own message and not srun's).
TEST_F(Slurm, NamedHostsUseSrunUnlessAnAgentIsGiven) {
  allocate();
  if (HasFatalFailure()) return;
  auto start = cohort({"start", "--agent", "false {host}", "--timeout", "20", kNode});
  EXPECT_EQ(start.exit_code, 1) << start.out << start.err;
  EXPECT_NE(start.err.find(std::string("cannot start host ") + kNode), std::string::npos)
      << start.err;
  EXPECT_EQ(start.err.find("srun"), std::string::npos) << start.err;
  // A Slurm host list is expanded by the master: cohortslurm[1] is the node.
  auto add = cohort({"add", "--timeout", "40", "cohortslurm[1]"});
  EXPECT_EQ(add.exit_code, 0) << add.out << add.err << master_log();
  EXPECT_NE(slurp(vm_dir() + "/cohortd.log").find(std::string("--nodelist=") + kNode),
            std::string::npos) << master_log();
  EXPECT_TRUE(lists(cohort({"hosts"}).out, kNode));
  EXPECT_EQ(cohort({"halt"}).exit_code, 0);
}

// As a user would: `cohort` commands in the shell that salloc runs.
TEST_F(Slurm, SallocShellStartsRunsAndHalts) {
  auto r = run({"salloc", "-N1", "-J", "cohort-shell", "sh", "-c",
                "\"$0\" start --timeout 40 && \"$0\" hosts && "
                "\"$0\" run --host \"$SLURM_JOB_NODELIST\" -n 2 \"$1\" ring && \"$0\" halt",
                bin("cohort"), bin("mh_task")},
               120s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << master_log() << slurm_logs();
  EXPECT_NE(r.out.find(std::string("host ") + kNode + " is host 2"), std::string::npos) << r.out;
  EXPECT_TRUE(lists(r.out, kNode)) << r.out;
  EXPECT_NE(r.out.find("ring ok"), std::string::npos) << r.out;
  EXPECT_NE(slurp(vm_dir() + "/cohortd.log").find("through slurm"), std::string::npos)
      << master_log();
}

// No srun where the master runs: the host fails with the reason, and the VM
// (the master alone) runs on.
TEST_F(Slurm, NoSrunIsReportedAndTheVmRunsOn) {
  allocate();
  if (HasFatalFailure()) return;
  std::string empty = tmp_.path() + "/empty-path";
  std::filesystem::create_directories(empty);
  auto start = cohort({"start", "--timeout", "20"}, {"PATH=" + empty});
  EXPECT_EQ(start.exit_code, 1) << start.out << start.err;
  EXPECT_NE(start.out.find("cohort VM 'default' started"), std::string::npos) << start.out;
  EXPECT_NE(start.err.find(std::string("cannot start host ") + kNode), std::string::npos) << start.err;
  EXPECT_NE(start.err.find("cannot run launch agent 'srun'"), std::string::npos) << start.err;
  auto hosts = cohort({"hosts"});
  EXPECT_EQ(hosts.exit_code, 0) << hosts.err;
  EXPECT_FALSE(lists(hosts.out, kNode)) << hosts.out;
  EXPECT_EQ(cohort({"halt"}).exit_code, 0);
}

}  // namespace
}  // namespace cohort::testing
