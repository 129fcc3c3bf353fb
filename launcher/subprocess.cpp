#include "launcher/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace cohort::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The child's environment, built before fork: after fork only async-signal-safe
// calls are allowed, and the library may already have threads.
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  auto overridden = [&](const char* entry) {
    std::string_view e(entry);
    auto eq = e.find('=');
    for (const std::string& x : extra)
      if (x.compare(0, x.find('='), e.substr(0, eq)) == 0 && x.find('=') == eq) return true;
    return false;
  };
  for (char** p = environ; p && *p; ++p)
    if (!overridden(*p)) out.emplace_back(*p);
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<Child> start_child(const std::vector<std::string>& argv_in, const ChildOptions& o) {
  if (argv_in.empty()) return Status(Errc::kInvalidArgument, "start_child: empty command");
  std::vector<std::string> argv_s = argv_in;
  std::vector<std::string> env_s = merged_env(o.env);
  std::vector<char*> argv = c_strings(argv_s);
  std::vector<char*> envp = c_strings(env_s);
  std::string path = o.search_path ? find_in_path(argv_s[0]) : argv_s[0];
  if (path.empty())
    return Status(Errc::kNotFound, "'" + argv_s[0] + "' was not found in PATH");

  int out_pipe[2] = {-1, -1};
  if (o.capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0)
    return errno_status(Errc::kIoError, "pipe", errno);
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return errno_status(Errc::kIoError, "pipe", errno);
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return errno_status(Errc::kIoError, "fork", errno);
  if (pid == 0) {
    if (o.new_process_group) ::setpgid(0, 0);
    if (o.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
    }
    if (out_w) {
      ::dup2(out_w.get(), 1);
      if (o.merge_stderr) ::dup2(out_w.get(), 2);
    }
    // Handlers do not survive exec, but ignored signals do: give the child defaults.
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execve(path.c_str(), argv.data(), envp.data());
    int e = errno;
    (void)!::write(err_w.get(), &e, sizeof e);
    ::_exit(127);
  }
  out_w.reset();
  err_w.reset();
  // EOF on the error pipe means exec succeeded (close-on-exec closed it).
  int e = 0;
  ssize_t n;
  do n = ::read(err_r.get(), &e, sizeof e);
  while (n < 0 && errno == EINTR);
  if (n == sizeof e) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return Status(e == EACCES ? Errc::kPermissionDenied : Errc::kNotFound,
                  "cannot run " + path + ": " + std::strerror(e));
  }
  Child c;
  c.pid = pid;
  if (out_r) {
    (void)set_nonblocking(out_r.get());
    c.out = std::move(out_r);
  }
  return c;
}

Result<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return errno_status(Errc::kNoSuchTask, "waitpid", errno);
    if (Clock::now() >= deadline)
      return Status(Errc::kTimeout, "process " + std::to_string(pid) + " did not exit");
    // Polling is fine here: this waits for a daemon to shut down, not on a hot path.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
  }
  return "stopped (wait status " + std::to_string(status) + ")";
}

namespace {
struct SigName {
  int num;
  const char* name;
};
constexpr SigName kSignals[] = {
    {SIGHUP, "HUP"},   {SIGINT, "INT"},   {SIGQUIT, "QUIT"}, {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"}, {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},   {SIGFPE, "FPE"},
    {SIGKILL, "KILL"}, {SIGUSR1, "USR1"}, {SIGSEGV, "SEGV"}, {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"}, {SIGALRM, "ALRM"}, {SIGTERM, "TERM"}, {SIGCHLD, "CHLD"},
    {SIGCONT, "CONT"}, {SIGSTOP, "STOP"}, {SIGTSTP, "TSTP"}, {SIGXCPU, "XCPU"},
};
}  // namespace

std::string signal_name(int sig) {
  for (const SigName& s : kSignals)
    if (s.num == sig) return std::string("SIG") + s.name;
  return "signal " + std::to_string(sig);
}

int parse_signal(std::string_view text) {
  if (text.empty()) return -1;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    if (text.size() > 2) return -1;
    int v = std::stoi(std::string(text));
    return v >= 0 && v < NSIG ? v : -1;
  }
  std::string up;
  for (char ch : text) up += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  if (up.rfind("SIG", 0) == 0) up.erase(0, 3);
  for (const SigName& s : kSignals)
    if (up == s.name) return s.num;
  return -1;
}

LineReader::LineReader(int fd) : fd_(fd) {}

Result<std::string> LineReader::next(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto nl = buf_.find('\n'); nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (eof_) {
      if (buf_.empty()) return Status(Errc::kPeerLost, "end of output");
      return std::exchange(buf_, {});
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status(Errc::kTimeout, "no complete line in time");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return errno_status(Errc::kIoError, "poll", errno);
    if (r <= 0) continue;
    char chunk[4096];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) buf_.append(chunk, static_cast<std::size_t>(n));
    else if (n == 0) eof_ = true;
    else if (errno != EAGAIN && errno != EINTR) eof_ = true;
  }
}

std::string LineReader::drain() {
  char chunk[4096];
  for (;;) {
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n <= 0) break;
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
  return std::exchange(buf_, {});
}

std::string find_in_path(const std::string& name) {
  if (name.empty()) return {};
  auto runnable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return runnable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string_view rest = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string full = dir + "/" + name;
    if (runnable(full)) return full;
    if (colon == std::string_view::npos) return {};
    rest.remove_prefix(colon + 1);
  }
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

}  // namespace cohort::cli
