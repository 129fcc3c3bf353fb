// The harness starts processes with posix_spawn rather than fork: the test
// process may have threads, and nothing between fork and exec must touch a
// lock another thread holds. Waiting uses pidfds and poll with deadlines —
// never a sleep.
#include "tests/support/daemon_harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/env.hpp"
#include "base/fd.hpp"

extern char** environ;

namespace cohort::testing {
namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, INT_MAX));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

UniqueFd pidfd_of(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

/// Wait until `pid` (our child) exits or `deadline`; its wait status if it did.
std::optional<int> wait_child(pid_t pid, Clock::time_point deadline) {
  UniqueFd pfd = pidfd_of(pid);
  while (true) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return std::nullopt;
    int left = ms_left(deadline);
    if (left == 0) return std::nullopt;
    if (pfd) {
      pollfd p{pfd.get(), POLLIN, 0};
      ::poll(&p, 1, left);
    } else {  // kernels before 5.3: no pidfd; poll the status in short steps
      ::poll(nullptr, 0, std::min(left, 10));
    }
  }
}

/// The environment of this process with NAME=VALUE entries of `over` replacing theirs.
std::vector<std::string> merged_env(const std::vector<std::string>& over) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& o : over)
      if (o.substr(0, o.find('=')) == name) replaced = true;
    if (!replaced) out.push_back(entry);
  }
  out.insert(out.end(), over.begin(), over.end());
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// posix_spawn(p) `argv` in its own process group with stdin from /dev/null,
/// stdout to `out_fd` and stderr to `err_fd`.
Result<pid_t> spawn(std::vector<std::string> argv, std::vector<std::string> envv, int out_fd,
                    int err_fd, bool search_path) {
  auto args = c_strings(argv);
  auto envp = c_strings(envv);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = search_path ? ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data())
                       : ::posix_spawn(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return Status(Errc::kBadProgram, "cannot start " + argv[0] + ": " + std::strerror(rc));
  return pid;
}

/// Processes whose parent is `ppid`, or whose environment names `dir` as
/// COHORT_DIR (tasks orphaned by a killed daemon, clients started by tests).
std::set<pid_t> processes_of(pid_t ppid, const std::string& dir) {
  std::set<pid_t> out;
  std::string needle = std::string(env::kDir) + "=" + dir;
  std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
  if (!proc) return out;
  pid_t self = ::getpid();
  while (dirent* e = ::readdir(proc.get())) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self || pid == ppid) continue;
    std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    char state = 0;
    long parent = 0;
    fields >> state >> parent;
    if (parent == ppid) {
      out.insert(static_cast<pid_t>(pid));
      continue;
    }
    std::string envs = read_file("/proc/" + std::string(e->d_name) + "/environ");
    for (std::size_t at = 0; at < envs.size();) {
      std::size_t nul = envs.find('\0', at);
      if (nul == std::string::npos) nul = envs.size();
      if (envs.compare(at, nul - at, needle) == 0) {
        out.insert(static_cast<pid_t>(pid));
        break;
      }
      at = nul + 1;
    }
  }
  return out;
}

}  // namespace

std::string bin_dir() {
  if (auto d = env::get("COHORT_BIN_DIR"); d && !d->empty()) return *d;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string bin(const std::string& name) {
  return bin_dir() + "/" + name;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/cohort-test-XXXXXX";
  const char* made = ::mkdtemp(tmpl);  // mode 0700
  path_ = made ? made : "";
  if (path_.empty()) std::abort();  // no /tmp: nothing sensible can run
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- DaemonProcess ----------------------------------------------------------

Result<std::unique_ptr<DaemonProcess>> DaemonProcess::start(
    const std::string& dir, const std::vector<std::string>& extra_args,
    std::chrono::milliseconds deadline) {
  std::unique_ptr<DaemonProcess> d(new DaemonProcess);
  d->dir_ = dir;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_status(Errc::kIoError, "pipe2", errno);
  UniqueFd out_r(p[0]), out_w(p[1]);
  // stderr goes to a file: nothing the daemon writes there can block it, and
  // it is shown when start-up fails.
  std::string err_path = dir + "/cohortd.stderr";
  UniqueFd err_w(::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!err_w) return errno_status(Errc::kIoError, "open(" + err_path + ")", errno);

  std::vector<std::string> argv{bin("cohortd"), "--dir", dir};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  COHORT_ASSIGN_OR_RETURN(d->pid_, spawn(argv, merged_env({}), out_w.get(), err_w.get(), false));
  out_w.reset();
  err_w.reset();

  auto until = Clock::now() + deadline;
  std::string got;
  bool eof = false;
  while (got.find('\n') == std::string::npos && !eof) {
    int left = ms_left(until);
    if (left == 0) break;
    pollfd pf{out_r.get(), POLLIN, 0};
    if (::poll(&pf, 1, left) <= 0) continue;
    char buf[512];
    ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n > 0)
      got.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      eof = true;
  }
  std::string line = got.substr(0, got.find('\n'));
  if (line.rfind("cohortd ready ", 0) == 0 && got.find('\n') != std::string::npos) {
    d->ready_line_ = line;
    return d;
  }
  std::string why =
      eof ? "cohortd exited before it was ready"
          : "cohortd was not ready within " + std::to_string(deadline.count()) + " ms";
  // Stop it now, so that its stderr and log below are complete.
  ::kill(-d->pid_, SIGKILL);
  if (auto st = wait_child(d->pid_, Clock::now() + std::chrono::seconds(10))) {
    if (WIFEXITED(*st)) why += " (exit status " + std::to_string(WEXITSTATUS(*st)) + ")";
  }
  // Nothing more for the destructor to do: above all it must not look for
  // tasks by COHORT_DIR, which would find those of a daemon that does run
  // in this directory (the usual reason a start fails).
  d->pid_ = -1;
  return Status(Errc::kTimeout, why + "; stdout: '" + got + "'; stderr: '" + read_file(err_path) +
                                    "'; log:\n" + d->log());
}

DaemonProcess::~DaemonProcess() {
  if (pid_ <= 0) return;
  if (!reaped_) {
    // Freeze the daemon so it cannot start more tasks while we look for them.
    ::kill(pid_, SIGSTOP);
  }
  std::set<pid_t> tasks = processes_of(reaped_ ? -1 : pid_, dir_);
  if (!reaped_) ::kill(-pid_, SIGKILL);
  for (pid_t t : tasks) {
    // A spawned task leads its own process group: take its helpers too.
    if (::getpgid(t) == t) ::kill(-t, SIGKILL);
    ::kill(t, SIGKILL);
  }
  if (!reaped_) {
    ::kill(pid_, SIGCONT);
    if (wait_child(pid_, Clock::now() + std::chrono::seconds(20))) reaped_ = true;
  }
}

std::string DaemonProcess::socket_path() const {
  return env::path_in(dir_, env::kSocketName);
}

void DaemonProcess::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

Result<int> DaemonProcess::wait(std::chrono::milliseconds deadline) {
  if (reaped_) return Status(Errc::kInvalidArgument, "the daemon was already waited for");
  auto st = wait_child(pid_, Clock::now() + deadline);
  if (!st)
    return Status(Errc::kTimeout, "cohortd (pid " + std::to_string(pid_) + ") still runs after " +
                                      std::to_string(deadline.count()) + " ms");
  reaped_ = true;
  return *st;
}

std::string DaemonProcess::log() const {
  return read_file(env::path_in(dir_, env::kLogName));
}

std::vector<std::string> DaemonProcess::unexpected_errors() const {
  // A line is "SECONDS TAG[PID] LEVEL SUBSYSTEM: text"; only LEVEL counts.
  std::vector<std::string> out;
  std::istringstream in(log());
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string ts, tag, level;
    words >> ts >> tag >> level;
    if (level != "error") continue;
    bool expected = false;
    for (const auto& e : expected_errors_)
      if (line.find(e) != std::string::npos) expected = true;
    if (!expected) out.push_back(line);
  }
  return out;
}

// ---- run_program --------------------------------------------------------------

Result<ProgramResult> run_program(const std::vector<std::string>& argv, const std::string& vm_dir,
                                  std::chrono::milliseconds deadline,
                                  const std::vector<std::string>& extra_env) {
  if (argv.empty()) return Status(Errc::kInvalidArgument, "run_program: empty argv");
  int o[2], e[2];
  if (::pipe2(o, O_CLOEXEC) != 0) return errno_status(Errc::kIoError, "pipe2", errno);
  UniqueFd out_r(o[0]), out_w(o[1]);
  if (::pipe2(e, O_CLOEXEC) != 0) return errno_status(Errc::kIoError, "pipe2", errno);
  UniqueFd err_r(e[0]), err_w(e[1]);
  std::vector<std::string> over{std::string(env::kDir) + "=" + vm_dir};
  over.insert(over.end(), extra_env.begin(), extra_env.end());
  COHORT_ASSIGN_OR_RETURN(pid_t pid, spawn(argv, merged_env(over), out_w.get(), err_w.get(), true));
  out_w.reset();
  err_w.reset();

  ProgramResult r;
  auto until = Clock::now() + deadline;
  UniqueFd pfd = pidfd_of(pid);
  bool exited = false;
  std::optional<int> status;
  while (out_r || err_r) {
    std::vector<pollfd> fds;
    if (out_r) fds.push_back({out_r.get(), POLLIN, 0});
    if (err_r) fds.push_back({err_r.get(), POLLIN, 0});
    if (pfd && !exited) fds.push_back({pfd.get(), POLLIN, 0});
    // Once the program has exited, take what its pipes hold and stop: a
    // daemonized grandchild may keep them open for ever.
    int left = exited ? 0 : ms_left(until);
    if (!exited && left == 0) break;
    int n = ::poll(fds.data(), fds.size(), left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 && exited) break;
    for (auto& f : fds) {
      if (!(f.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (pfd && f.fd == pfd.get()) {
        exited = true;
        continue;
      }
      char buf[4096];
      ssize_t got = ::read(f.fd, buf, sizeof buf);
      std::string& dst = f.fd == out_r.get() ? r.out : r.err;
      if (got > 0)
        dst.append(buf, static_cast<std::size_t>(got));
      else if (got == 0 || errno != EINTR)
        (f.fd == out_r.get() ? out_r : err_r).reset();
    }
  }
  status = wait_child(pid, exited || (!out_r && !err_r) ? until : Clock::now());
  if (!status) {
    ::kill(-pid, SIGKILL);
    wait_child(pid, Clock::now() + std::chrono::seconds(10));
    return Status(Errc::kTimeout, argv[0] + " did not finish within " +
                                      std::to_string(deadline.count()) + " ms; stdout so far: '" +
                                      r.out + "'; stderr so far: '" + r.err + "'");
  }
  if (WIFEXITED(*status)) {
    r.exit_code = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    r.exit_code = -1;
    r.signal = WTERMSIG(*status);
  }
  return r;
}

}  // namespace cohort::testing
