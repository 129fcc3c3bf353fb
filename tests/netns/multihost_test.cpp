// The multi-host VM on an emulated cluster: boot through a launch agent and a
// hostfile, a job across every host, a host added while a job runs, removal,
// a crashed host, a partitioned host, a lost master, and a daemon with the
// wrong cookie. Each test has its own NetnsCluster (root only; skips without).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/netns_cluster.hpp"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class MultiHost : public ::testing::Test {
 protected:
  // Hosts h1..h`hosts` exist; h1..h`booted` are in the VM (h1 is the master).
  void boot(int hosts, int booted) {
    auto c = NetnsCluster::create(hosts);
    if (!c.is_ok()) GTEST_SKIP() << "no emulated cluster here: " << c.status().to_string();
    cluster_ = std::move(c).value();
    std::ofstream hf(tmp_.path() + "/hostfile");
    hf << "# the emulated hosts\n";
    for (int i = 1; i <= booted; ++i) hf << NetnsCluster::host_name(i) << "   slots=2\n";
    hf.close();
    auto r = cohort(1, {"start", "--hostfile", tmp_.path() + "/hostfile", "--agent",
                        cluster_->agent_template(), "--timeout", "20"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << master_log();
    for (int i = 2; i <= booted; ++i)
      EXPECT_NE(r.out.find("host h" + std::to_string(i) + " is host"), std::string::npos) << r.out;
  }

  void TearDown() override {
    cluster_.reset();  // kills every process of every host
    for (pid_t p : children_) ::waitpid(p, nullptr, 0);
  }

  // The VM directory of the daemon on host i (h1's is the one `cohort start` made).
  std::string vm_dir(int host) const {
    return host == 1 ? tmp_.path() + "/vm" : tmp_.path() + "/vm-h" + std::to_string(host);
  }
  std::string master_log() const {
    std::ifstream f(vm_dir(1) + "/cohortd.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return "\n--- master log ---\n" + ss.str();
  }

  // `cohort ARGS` inside host `host`, talking to that host's daemon.
  ProgramResult cohort(int host, std::vector<std::string> args,
                       std::chrono::milliseconds deadline = 60s) {
    std::vector<std::string> argv = {"env", "COHORT_DIR=" + vm_dir(host), bin("cohort")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cluster_->run(host, argv, deadline);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? *r : ProgramResult{};
  }

  // Start `cohort ARGS` in the background on `host`; output to a log file.
  std::string start(int host, std::vector<std::string> args) {
    std::string log = tmp_.path() + "/bg" + std::to_string(children_.size()) + ".log";
    std::vector<std::string> argv = {"env", "COHORT_DIR=" + vm_dir(host), bin("cohort")};
    argv.insert(argv.end(), args.begin(), args.end());
    auto pid = cluster_->spawn(host, argv, log);
    EXPECT_TRUE(pid.is_ok()) << pid.status().to_string();
    if (pid.is_ok()) children_.push_back(*pid);
    return log;
  }

  static std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  // Poll a log file for `text` with a deadline (processes in other namespaces
  // have no other channel to us).
  bool wait_for(const std::string& path, const std::string& text, std::chrono::seconds limit = 30s) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (slurp(path).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  // Wait for the background command that wrote `log` to exit; its status.
  int wait_child(std::chrono::seconds limit = 30s) {
    pid_t p = children_.back();
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      int st = 0;
      if (::waitpid(p, &st, WNOHANG) == p) {
        children_.pop_back();
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(20ms);
    }
    return -1;
  }

  // `cohort hosts` on `host` until its listing satisfies `pred`, within `limit`.
  template <class Pred>
  std::string hosts_until(int host, Pred pred, std::chrono::seconds limit = 15s) {
    auto deadline = Clock::now() + limit;
    std::string out;
    while (Clock::now() < deadline) {
      out = cohort(host, {"hosts"}).out;
      if (pred(out)) return out;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "cohort hosts never matched; last:\n" << out << master_log();
    return out;
  }

  std::unique_ptr<NetnsCluster> cluster_;
  TempDir tmp_;
  std::vector<pid_t> children_;
};

bool lists(const std::string& out, const std::string& host) {
  return out.find(" " + host + " ") != std::string::npos;
}

TEST_F(MultiHost, BootFourHostsFromAHostfile) {
  boot(4, 4);
  if (!cluster_) return;
  std::string out = cohort(1, {"hosts"}).out;
  for (const char* h : {"h1", "h2", "h3", "h4"}) EXPECT_TRUE(lists(out, h)) << out;
  // Halting the master halts the VM: every daemon goes.
  EXPECT_EQ(cohort(1, {"halt"}).exit_code, 0);
  auto deadline = Clock::now() + 15s;
  int rc = 0;
  while (Clock::now() < deadline && (rc = cohort(3, {"hosts"}).exit_code) == 0)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rc, 1) << "the daemon on h3 outlived the VM's halt";
}

TEST_F(MultiHost, JobAcrossAllHostsExchangesMessages) {
  boot(4, 4);
  if (!cluster_) return;
  auto r = cohort(1, {"run", "--host", "h1,h2,h3,h4", "-n", "4", bin("mh_task"), "ring"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << master_log();
  for (const char* h : {"h1", "h2", "h3", "h4"})
    EXPECT_NE(r.out.find(std::string("on ") + h), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ring ok 12"), std::string::npos) << r.out;
  // Two per host, hosts in index order: ranks 0 and 1 on the master's host.
  auto m = cohort(1, {"run", "--map-by", "host", "--per-host", "2", "-n", "4", bin("mh_task"), "ring"});
  EXPECT_EQ(m.exit_code, 0) << m.out << m.err;
  EXPECT_NE(m.out.find("rank 1 on h1"), std::string::npos) << m.out;
  EXPECT_EQ(m.out.find("rank 2 on h1"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("ring ok 12"), std::string::npos) << m.out;
  // Tasks that end at once, before the other hosts have even answered: their
  // output and exits still reach `cohort run`, which returns.
  auto quick = cohort(1, {"run", "--host", "h1,h2,h3,h4", "-n", "8", "hostname"}, 30s);
  EXPECT_EQ(quick.exit_code, 0) << quick.out << quick.err << master_log();
  for (const char* h : {"h1", "h2", "h3", "h4"})
    EXPECT_NE(quick.out.find(std::string("] ") + h), std::string::npos) << quick.out;
  // Tasks placed on other hosts are bound there, as local ones are.
  auto b = cohort(1, {"run", "--host", "h1,h2", "--bind-to", "core", "-n", "2", bin("mh_task"), "ring"});
  EXPECT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_TRUE(std::regex_search(b.out, std::regex("rank 1 on h2 bound to core:[0-9]+"))) << b.out;
  auto ps = cohort(1, {"ps"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
}

// Two tasks on each of two hosts: a pair on one host talks over shared memory,
// a pair across hosts never does (the emulated hosts have their own /dev/shm,
// IPC and network namespaces, as real ones would).
TEST_F(MultiHost, PeersOnOneHostPickShmAndAcrossHostsDoNot) {
  boot(2, 2);
  if (!cluster_) return;
  auto r = cohort(1, {"run", "--map-by", "host", "--per-host", "2", "-n", "4", bin("mh_task"),
                      "pairs"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << master_log();
  int same = 0, other = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("pair ") == std::string::npos) continue;
    const std::string transport = line.substr(line.rfind(' ') + 1);
    if (line.find(" same host: ") != std::string::npos) {
      ++same;
      EXPECT_EQ(transport, "shm") << line;
    } else {
      ++other;
      EXPECT_NE(transport, "shm") << line;
      EXPECT_EQ(transport, "tcp") << line << " (no RDMA fabric between emulated hosts)";
    }
  }
  EXPECT_EQ(same, 4) << r.out;   // each rank has one same-host peer
  EXPECT_EQ(other, 8) << r.out;  // and two on the other host
}

// A hostfile's per-host options take effect: slots= drives --map-by slot,
// wdir= is where that host's tasks start, path= is where their programs are
// looked up (and their PATH).
TEST_F(MultiHost, HostfileSlotsWdirAndPathApply) {
  auto c = NetnsCluster::create(2);
  if (!c.is_ok()) GTEST_SKIP() << "no emulated cluster here: " << c.status().to_string();
  cluster_ = std::move(c).value();
  const std::string wd = tmp_.path() + "/work dir", bindir = tmp_.path() + "/apps";
  std::filesystem::create_directories(wd);
  std::filesystem::create_directories(bindir);
  {
    std::ofstream script(bindir + "/whereami");
    script << "#!/bin/sh\necho \"$(hostname) in $(pwd) with PATH=$PATH\"\n";
  }
  std::filesystem::permissions(bindir + "/whereami", std::filesystem::perms::owner_all);
  {
    std::ofstream hf(tmp_.path() + "/hostfile");
    hf << "h1 slots=1\n";
    hf << "h2 slots=3 wdir=\"" << wd << "\" path=" << bindir << ":/usr/bin:/bin\n";
  }
  auto r = cohort(1, {"start", "--hostfile", tmp_.path() + "/hostfile", "--agent",
                      cluster_->agent_template(), "--timeout", "20"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << master_log();

  auto hosts = cohort(1, {"hosts"}).out;
  EXPECT_TRUE(std::regex_search(hosts, std::regex(" h1 .* 1 +[0-9]+ +[0-9]+\\s*\n"))) << hosts;
  EXPECT_TRUE(std::regex_search(hosts, std::regex(" h2 .* 3 +[0-9]+ +[0-9]+\\s*\n"))) << hosts;

  auto w = cohort(1, {"run", "--host", "h2", "-n", "1", "whereami"});
  EXPECT_EQ(w.exit_code, 0) << w.out << w.err << master_log();
  EXPECT_NE(w.out.find("h2 in " + wd + " with PATH=" + bindir + ":"), std::string::npos) << w.out;

  // By slot: 1 on h1, then 3 on h2, then round again.
  auto m = cohort(1, {"run", "--map-by", "slot", "-n", "5", bin("mh_task"), "ring"});
  EXPECT_EQ(m.exit_code, 0) << m.out << m.err;
  for (const char* want : {"rank 0 on h1", "rank 1 on h2", "rank 2 on h2", "rank 3 on h2",
                           "rank 4 on h1"})
    EXPECT_NE(m.out.find(want), std::string::npos) << want << " in\n" << m.out;
}

TEST_F(MultiHost, AddAFifthHostWhileAJobRunsAndSpawnOntoIt) {
  boot(5, 4);
  if (!cluster_) return;
  std::string go = tmp_.path() + "/go";
  std::string log = start(1, {"run", "-n", "1", bin("mh_task"), "late-spawn", go, "h5"});
  ASSERT_TRUE(wait_for(log, "ready")) << slurp(log) << master_log();  // it watches hosts
  auto add = cohort(1, {"add", "--agent", cluster_->agent_template(), "h5"});
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err << master_log();
  EXPECT_NE(add.out.find("host h5 is host 5"), std::string::npos) << add.out;
  std::ofstream(go) << "go\n";
  EXPECT_EQ(wait_child(), 0) << slurp(log) << master_log();
  EXPECT_NE(slurp(log).find("host add 5"), std::string::npos) << slurp(log);
  EXPECT_NE(slurp(log).find("late spawn on h5 printed h5 (tid host 5)"), std::string::npos)
      << slurp(log);
}

TEST_F(MultiHost, RemoveAHostKillsAndNotifiesItsTasks) {
  boot(4, 4);
  if (!cluster_) return;
  std::string log = start(1, {"run", "-n", "1", bin("mh_task"), "watch", "h3"});
  ASSERT_TRUE(wait_for(log, "ready")) << slurp(log) << master_log();
  auto rm = cohort(1, {"remove", "h3"});
  EXPECT_EQ(rm.exit_code, 0) << rm.out << rm.err << master_log();
  EXPECT_EQ(wait_child(), 0) << slurp(log) << master_log();
  std::string out = slurp(log);
  // "watch ok": the HostDelete named the task's host, its TaskExit came, a send failed.
  EXPECT_NE(out.find("signal 15"), std::string::npos) << out;
  EXPECT_NE(out.find("watch ok"), std::string::npos) << out;
  EXPECT_FALSE(lists(cohort(1, {"hosts"}).out, "h3"));
}

// --drain lets the host's tasks finish (they are not killed), then the host goes.
TEST_F(MultiHost, RemoveWithDrainLetsTasksFinish) {
  boot(4, 4);
  if (!cluster_) return;
  std::string go = tmp_.path() + "/drained";
  std::string log = start(1, {"run", "--host", "h3", "-n", "1", "sh", "-c",
                              "echo started; while [ ! -e " + go + " ]; do sleep 0.05; done; echo done"});
  ASSERT_TRUE(wait_for(log, "started")) << slurp(log) << master_log();
  std::string rm_log = start(1, {"remove", "--drain", "h3"});
  // While the task runs the host stays; once it ends, the host goes.
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(lists(cohort(1, {"hosts"}).out, "h3")) << "h3 left before its task ended";
  std::ofstream(go) << "go\n";
  EXPECT_EQ(wait_child(), 0) << slurp(rm_log) << master_log();  // cohort remove
  hosts_until(1, [](const std::string& o) { return !lists(o, "h3") && lists(o, "h4"); });
  // The job's task ran to its end: exit status 0, its last line printed.
  pid_t run = children_.back();
  int st = 0;
  auto deadline = Clock::now() + 20s;
  while (::waitpid(run, &st, WNOHANG) != run && Clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  children_.pop_back();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << slurp(log);
  EXPECT_NE(slurp(log).find("done"), std::string::npos) << slurp(log);
}

TEST_F(MultiHost, CrashedHostIsDeletedAndItsTasksReported) {
  boot(4, 4);
  if (!cluster_) return;
  std::string log = start(1, {"run", "-n", "1", bin("mh_task"), "watch", "h2"});
  ASSERT_TRUE(wait_for(log, "ready")) << slurp(log) << master_log();
  auto t0 = Clock::now();
  ASSERT_TRUE(cluster_->kill_host(2).is_ok());
  EXPECT_EQ(wait_child(), 0) << slurp(log) << master_log();
  EXPECT_LT(Clock::now() - t0, 10s);
  std::string out = slurp(log);
  EXPECT_NE(out.find("code -1"), std::string::npos) << out;
  EXPECT_NE(out.find("send failed"), std::string::npos) << out;
  EXPECT_NE(out.find("watch ok"), std::string::npos) << out;
  hosts_until(1, [](const std::string& o) { return !lists(o, "h2") && lists(o, "h3"); });
}

TEST_F(MultiHost, PartitionedHostIsDeclaredDead) {
  boot(4, 4);
  if (!cluster_) return;
  // Cut the master off from the host with the lowest index after it: the one
  // that would take over if it believed the master dead. (Indices follow the
  // order in which daemons joined.)
  std::smatch m;
  const std::string listing = cohort(1, {"hosts"}).out;
  ASSERT_TRUE(std::regex_search(listing, m, std::regex("\\n +2 +h([0-9])"))) << listing;
  const int cut = std::stoi(m[1]);
  const std::string name = "h" + std::to_string(cut);
  const int other = cut == 2 ? 3 : 2;
  const std::string other_name = "h" + std::to_string(other);
  auto t0 = Clock::now();
  ASSERT_TRUE(cluster_->partition(1, cut).is_ok());
  auto gone = [&](const std::string& o) { return !lists(o, name) && lists(o, other_name); };
  hosts_until(1, gone, 15s);
  EXPECT_GT(Clock::now() - t0, 2s);  // the heartbeat timeout (3 s), not a closed link
  // The others follow the master's table.
  hosts_until(other, gone);
  // The cut-off host does not set up a VM of its own: it sees that the others
  // still hear the master, and leaves (its daemon halts).
  auto deadline = Clock::now() + 20s;
  int rc = 0;
  while (Clock::now() < deadline && (rc = cohort(cut, {"hosts"}).exit_code) == 0)
    std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rc, 1) << "the daemon on " << name << " stayed up after being cut off";
  const std::string after = cohort(1, {"hosts"}).out;
  for (int i = 2; i <= 4; ++i)
    if (i != cut) EXPECT_TRUE(lists(after, "h" + std::to_string(i))) << after << master_log();
}

TEST_F(MultiHost, LosingTheMasterLeavesTheVmRunning) {
  boot(4, 4);
  if (!cluster_) return;
  // A job on h2 with a task on h3, both away from the master.
  std::string log = start(2, {"run", "-n", "1", bin("mh_task"), "watch", "h3"});
  ASSERT_TRUE(wait_for(log, "ready")) << slurp(log) << master_log();
  ASSERT_TRUE(cluster_->kill_host(1).is_ok());
  std::string out = hosts_until(2, [](const std::string& o) {
    return !lists(o, "h1") && lists(o, "h2") && lists(o, "h3") && lists(o, "h4");
  });
  // The job goes on: it can still spawn across hosts (onto h4), and h3 still works.
  auto r = cohort(2, {"run", "--host", "h3,h4", "-n", "2", bin("mh_task"), "ring"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ring ok"), std::string::npos) << r.out;
  // The watcher saw only the master go; its task on h3 still runs.
  EXPECT_NE(slurp(log).find("host delete 1"), std::string::npos) << slurp(log);
  EXPECT_EQ(slurp(log).find("task exit"), std::string::npos) << slurp(log);
}

TEST_F(MultiHost, DaemonWithAWrongCookieIsRejected) {
  boot(2, 1);
  if (!cluster_) return;
  // The master's daemon address, from its ready line in the log directory.
  std::string log = master_log();
  auto at = log.find("listens for daemons at ");
  ASSERT_NE(at, std::string::npos) << log;
  std::string addr = log.substr(at + 23, log.find_first_of(" \n", at + 23) - at - 23);
  auto r = cluster_->run(2, {"sh", "-c",
                             "echo not-the-cookie | " + bin("cohortd") + " --join " + addr +
                                 " --dir " + tmp_.path() + "/intruder"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_NE(r->exit_code, 0);
  EXPECT_NE(r->err.find("cookie"), std::string::npos) << r->err;
  EXPECT_NE(master_log().find("authentication failed"), std::string::npos) << master_log();
  EXPECT_FALSE(lists(cohort(1, {"hosts"}).out, "h2"));
}

}  // namespace
}  // namespace cohort::testing
