// The `cohort` command end to end, as a user runs it (run_program):
// `cohort run` in a private VM and in a running one, its exit status and its
// errors; `cohort start`, `ps`, `hosts`, `kill`, `halt` on a persistent VM;
// `cohort ps` with no VM.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

using cohort::testing::ProgramResult;
using cohort::testing::TempDir;

/// Run `cohort ARGS...` with COHORT_DIR=`vm_dir`; throws if it could not run
/// or ran past its deadline.
ProgramResult cohort_cmd(const std::vector<std::string>& args, const std::string& vm_dir,
                         const std::vector<std::string>& extra_env = {},
                         std::chrono::seconds deadline = std::chrono::seconds(60)) {
  std::vector<std::string> argv = {bin("cohort")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = cohort::testing::run_program(argv, vm_dir, deadline, extra_env);
  if (!r.is_ok()) {
    std::string cmd;
    for (const std::string& a : argv) cmd += " " + a;
    throw std::runtime_error("running" + cmd + ": " + r.status().to_string());
  }
  return std::move(r).value();
}

std::string show(const ProgramResult& r) {
  return "exit code " + std::to_string(r.exit_code) + ", signal " + std::to_string(r.signal) +
         "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

/// `cohort run` passes each task line on as "[RANK] line", stdout to stdout
/// and stderr to stderr: each of ranks 0..n-1 said hello (stdout) and left a
/// note (stderr) exactly once, and nothing else came with a rank prefix.
void expect_hello_per_rank(const ProgramResult& r, int n) {
  static const std::regex kRankLine(R"(^\[ *(\d+)\] (.*)$)");
  struct Stream {
    const std::string* text;
    const char* what;
    std::string (*expected)(int rank, int n);
  };
  const Stream streams[] = {
      {&r.out, "stdout",
       [](int rank, int n) {
         return "hello from rank " + std::to_string(rank) + " of " + std::to_string(n);
       }},
      {&r.err, "stderr", [](int rank, int) { return "note from rank " + std::to_string(rank); }},
  };
  for (const Stream& s : streams) {
    std::map<int, int> seen;
    for (const std::string& l : lines_of(*s.text)) {
      std::smatch m;
      if (!std::regex_match(l, m, kRankLine)) continue;
      const int rank = std::stoi(m[1].str());
      ++seen[rank];
      EXPECT_EQ(m[2].str(), s.expected(rank, n)) << s.what << " line: " << l;
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(n)) << s.what << "\n" << show(r);
    for (int rank = 0; rank < n; ++rank)
      EXPECT_EQ(seen[rank], 1) << s.what << " lines from rank " << rank << "\n" << show(r);
  }
}

/// The names in `path`, or none when it does not exist.
std::vector<std::string> entries(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        names.push_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

std::string cmdline_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (char& c : s)
    if (c == '\0') c = ' ';
  return s;
}

/// Pids of processes whose command line or environment mentions `text`.
std::vector<int> processes_mentioning(const std::string& text) {
  std::vector<int> pids;
  for (const std::string& name : entries("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::ifstream env("/proc/" + name + "/environ");
    std::string e((std::istreambuf_iterator<char>(env)), std::istreambuf_iterator<char>());
    if (cmdline_of(pid).find(text) != std::string::npos || e.find(text) != std::string::npos)
      pids.push_back(pid);
  }
  return pids;
}

/// Poll (with a deadline) until `pid` is gone or a zombie.
bool wait_gone(int pid, std::chrono::seconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    if (!std::getline(f, stat)) return true;
    std::size_t paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() &&
        (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'))
      return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

/// Lines at level "error" in a daemon log ("SECONDS TAG[PID] LEVEL SUBSYSTEM: text").
std::vector<std::string> error_lines(const std::string& log_path) {
  std::vector<std::string> errors;
  std::ifstream f(log_path);
  for (std::string line; std::getline(f, line);) {
    std::istringstream words(line);
    std::string ts, tag, level;
    words >> ts >> tag >> level;
    if (level == "error") errors.push_back(line);
  }
  return errors;
}

std::string tid_text(Tid t) {  // as `cohort ps` prints it
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%x", static_cast<unsigned>(t));
  return buf;
}

// ---- against a VM the harness started ----------------------------------------

class MpCli : public MultiprocTest {};

TEST_F(MpCli, RunUsesTheRunningVm) {
  TempDir runtime;  // where a private VM would go: it must stay empty
  ProgramResult r = cohort_cmd({"run", "-n", "3", bin("mp_task_hello")}, dir(),
                               {"XDG_RUNTIME_DIR=" + runtime.path()});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  expect_hello_per_rank(r, 3);
  EXPECT_TRUE(entries(runtime.path()).empty()) << "cohort run started a private VM";
}

TEST_F(MpCli, RunPropagatesTheFirstNonZeroExitStatus) {
  ProgramResult r =
      cohort_cmd({"run", "-n", "2", bin("mp_task_hello"), "--fail-rank", "1", "3"}, dir());
  EXPECT_EQ(r.exit_code, 3) << show(r);
  EXPECT_NE(r.err.find("rank 1"), std::string::npos) << "stderr should say which rank failed\n"
                                                     << show(r);
}

TEST_F(MpCli, RunOfAMissingProgramFailsNamingIt) {
  const std::string missing = dir() + "/no-such-program";
  ProgramResult r = cohort_cmd({"run", "-n", "2", missing}, dir());
  EXPECT_EQ(r.exit_code, 127) << "documented: 127 when PROGRAM is missing\n" << show(r);
  EXPECT_NE(r.err.find(missing), std::string::npos) << show(r);
}

// A task started by `cohort run` has no task for a parent (the command is a
// tool, not a task): parent() is kNoTid, or a send to it fails at once. It
// must not block for ever, as a program that reports to its parent when it
// has one would.
TEST_F(MpCli, RunTaskThatSendsToItsParentDoesNotHang) {
  ProgramResult r = cohort_cmd({"run", "-n", "2", bin("mp_task_parent")}, dir(), {},
                               std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 0) << show(r);
  for (const std::string& l : lines_of(r.out)) EXPECT_NE(l.find("parent: "), std::string::npos) << l;
  EXPECT_EQ(lines_of(r.out).size(), 2u) << show(r);
}

// ---- with no VM, or one started with `cohort start` -------------------------------

class MpCliNoVm : public ::testing::Test {
 protected:
  void TearDown() override {
    // Whatever `cohort start` left running if the test failed half way.
    for (int pid : daemons_)
      if (!wait_gone(pid, std::chrono::seconds(0)) &&
          cmdline_of(pid).find("cohortd") != std::string::npos)
        ::kill(pid, SIGKILL);
    for (int pid : tasks_)
      if (!wait_gone(pid, std::chrono::seconds(0)) &&
          cmdline_of(pid).find("mp_task_") != std::string::npos)
        ::kill(pid, SIGKILL);
    ::unsetenv("COHORT_DIR");
  }
  TempDir vm_dir_;
  std::vector<int> daemons_;  // killed at teardown if still running
  std::vector<int> tasks_;
};

TEST_F(MpCliNoVm, PsWithNoVmSaysHowToStartOne) {
  ProgramResult r = cohort_cmd({"ps"}, vm_dir_.path());
  EXPECT_NE(r.exit_code, 0) << show(r);
  EXPECT_NE(r.err.find("cohort start"), std::string::npos) << show(r);
}

TEST_F(MpCliNoVm, RunStartsAPrivateVmAndStopsIt) {
  TempDir runtime;  // XDG_RUNTIME_DIR: the private VM's directory goes in here
  ProgramResult r = cohort_cmd({"run", "-n", "4", bin("mp_task_hello")}, vm_dir_.path(),
                               {"XDG_RUNTIME_DIR=" + runtime.path()});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  expect_hello_per_rank(r, 4);

  // Stopped and cleaned up: no daemon or task of it left, no directory left.
  for (const std::string& user_dir : entries(runtime.path()))
    EXPECT_TRUE(entries(runtime.path() + "/" + user_dir).empty())
        << "the private VM's directory was left in " << runtime.path() << "/" << user_dir;
  std::vector<int> left = processes_mentioning(runtime.path());
  for (int pid : left) {
    ADD_FAILURE() << "process " << pid << " (" << cmdline_of(pid)
                  << ") of the private VM is still running";
    if (cmdline_of(pid).find("cohort") != std::string::npos ||
        cmdline_of(pid).find("mp_task_") != std::string::npos)
      ::kill(pid, SIGKILL);
  }
  // And the VM named by COHORT_DIR was not started.
  ProgramResult ps = cohort_cmd({"ps"}, vm_dir_.path());
  EXPECT_NE(ps.exit_code, 0) << show(ps);
}

TEST_F(MpCliNoVm, StartPsHostsKillHalt) {
  const std::string& d = vm_dir_.path();
  ProgramResult start = cohort_cmd({"start"}, d);
  ASSERT_EQ(start.exit_code, 0) << show(start);
  int daemon_pid = 0;
  {
    std::ifstream pidfile(d + "/cohortd.pid");
    pidfile >> daemon_pid;
  }
  ASSERT_GT(daemon_pid, 0) << "no pid in " << d << "/cohortd.pid after cohort start";
  daemons_.push_back(daemon_pid);

  ProgramResult again = cohort_cmd({"start"}, d);
  EXPECT_EQ(again.exit_code, 0) << "starting a running VM succeeds\n" << show(again);
  EXPECT_NE(again.out.find("already running"), std::string::npos) << show(again);

  // Two tasks, spawned by this process as a client of that VM.
  ::setenv("COHORT_DIR", d.c_str(), 1);
  auto s = std::make_unique<Session>();
  SpawnOptions o;
  o.exit_notify_tag = kTagExit;
  std::vector<SpawnOutcome> out = s->spawn(bin("mp_task_crash"), {"hang"}, 2, o);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].ok() && out[1].ok()) << describe_spawn(out);
  const Tid victim = out[0].tid;
  const Tid survivor = out[1].tid;
  must_recv(*s, victim, kTagReady);
  const int survivor_pid = must_recv(*s, survivor, kTagReady).unpack<std::int32_t>();
  tasks_.push_back(survivor_pid);

  ProgramResult ps = cohort_cmd({"ps"}, d);
  EXPECT_EQ(ps.exit_code, 0) << show(ps);
  for (Tid t : {victim, survivor}) {
    bool found = false;
    for (const std::string& l : lines_of(ps.out))
      if (l.find(tid_text(t)) != std::string::npos) {
        found = true;
        EXPECT_NE(l.find("mp_task_crash"), std::string::npos) << "ps line: " << l;
      }
    EXPECT_TRUE(found) << "cohort ps does not list " << tid_text(t) << "\n" << show(ps);
  }

  ProgramResult hosts = cohort_cmd({"hosts"}, d);
  EXPECT_EQ(hosts.exit_code, 0) << show(hosts);
  char hostname[256] = {};
  ::gethostname(hostname, sizeof hostname - 1);
  EXPECT_NE(hosts.out.find(hostname), std::string::npos) << show(hosts);
  EXPECT_NE(hosts.out.find(std::to_string(daemon_pid)), std::string::npos)
      << "cohort hosts should show the daemon's pid\n" << show(hosts);

  ProgramResult kill = cohort_cmd({"kill", tid_text(victim)}, d);
  EXPECT_EQ(kill.exit_code, 0) << show(kill);
  Tid v[] = {victim};
  std::map<Tid, Notification> ended = wait_exits(*s, kTagExit, v);
  EXPECT_EQ(ended[victim].signal, SIGTERM) << "cohort kill sends TERM by default: "
                                           << describe_exit(ended[victim]);

  // The killed task leaves the list (poll: the table may lag the notification).
  const auto deadline = std::chrono::steady_clock::now() + kTestWait;
  for (;;) {
    ProgramResult ps2 = cohort_cmd({"ps"}, d);
    ASSERT_EQ(ps2.exit_code, 0) << show(ps2);
    if (ps2.out.find(tid_text(victim)) == std::string::npos) {
      EXPECT_NE(ps2.out.find(tid_text(survivor)), std::string::npos) << show(ps2);
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "cohort ps still lists the killed task\n" << show(ps2);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ProgramResult kill_again = cohort_cmd({"kill", tid_text(victim)}, d);
  EXPECT_NE(kill_again.exit_code, 0) << "killing a task that is gone\n" << show(kill_again);
  EXPECT_NE(kill_again.err.find(tid_text(victim)), std::string::npos) << show(kill_again);

  s.reset();  // leave; the survivor goes on running in the VM
  ProgramResult halt = cohort_cmd({"halt"}, d);
  EXPECT_EQ(halt.exit_code, 0) << show(halt);
  EXPECT_TRUE(wait_gone(daemon_pid)) << "the daemon is still running after cohort halt";
  EXPECT_TRUE(wait_gone(survivor_pid)) << "a task is still running after cohort halt";

  ProgramResult after = cohort_cmd({"ps"}, d);
  EXPECT_NE(after.exit_code, 0) << show(after);
  EXPECT_NE(after.err.find("cohort start"), std::string::npos) << show(after);

  std::string errors;
  for (const std::string& e : error_lines(d + "/cohortd.log")) errors += "  " + e + "\n";
  EXPECT_TRUE(errors.empty()) << "unexpected errors in the daemon's log:\n" << errors;
}

}  // namespace
}  // namespace cohort::mptest
