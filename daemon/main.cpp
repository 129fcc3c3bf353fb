// cohortd — the per-host daemon of a cohort virtual machine.
//
//   cohortd --dir DIR [--vm NAME] [--log-file FILE] [--log SPEC] [--daemonize]
//
// Prints exactly one line on stdout when it serves:
//   cohortd ready host=1 pid=PID socket=PATH
// With --daemonize the command returns once the daemon (a detached child in
// its own session) is ready, after printing that same line — or its error,
// with exit status 1. `cohort start` runs it that way.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <algorithm>
#include <chrono>

#include "base/env.hpp"
#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/daemon.hpp"
#include "daemon/peer_link.hpp"
#include "daemon/runtime_dir.hpp"

namespace {

using namespace cohort;

struct Flags {
  std::string dir;
  std::string vm;
  std::string log_file;
  std::string log_spec;
  bool daemonize = false;
  std::string listen = "0.0.0.0:0";
  std::string interface;
  std::string join;
  long heartbeat_timeout_ms = 3000;
  long slots = 0;
  std::string wdir;
  std::string path;
};

constexpr const char* kUsage =
    "usage: cohortd [--dir DIR] [--vm NAME] [--log-file FILE] [--log SPEC] [--daemonize]\n"
    "  --dir DIR        the VM's runtime directory (default: the per-user one for --vm)\n"
    "  --vm NAME        the VM's name (default: $COHORT_VM or 'default')\n"
    "  --log-file FILE  where to log (default: DIR/cohortd.log)\n"
    "  --log SPEC       log levels, e.g. 'debug' or 'daemon.spawn:debug' (default: $COHORT_LOG or "
    "info)\n"
    "  --daemonize      detach; return once the daemon is ready\n"
    "  --listen IP[:PORT]  where other daemons connect (default 0.0.0.0:0, any free port)\n"
    "  --interface NAME    advertise this interface's address (default: $COHORT_IF, else\n"
    "                      every non-loopback interface but host-only bridges)\n"
    "  --join ADDRESS      join the VM whose master listens there (tcp:IP:PORT[,...]);\n"
    "                      the VM's cookie is read from stdin (one line)\n"
    "  --heartbeat-timeout MS  declare a silent host dead after MS (default 3000)\n"
    "  --slots N           tasks placed here per round of --map-by slot (default: cores)\n"
    "  --wdir DIR          working directory of tasks that name none\n"
    "  --path DIRS         PATH that tasks search and get unless they set PATH\n";

bool parse(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto take = [&](std::string* out) {
      if (has_value) return *out = value, true;
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--dir")
      ok = take(&f->dir);
    else if (a == "--vm")
      ok = take(&f->vm);
    else if (a == "--log-file")
      ok = take(&f->log_file);
    else if (a == "--log")
      ok = take(&f->log_spec);
    else if (a == "--daemonize" && !has_value)
      f->daemonize = true;
    else if (a == "--listen")
      ok = take(&f->listen);
    else if (a == "--interface")
      ok = take(&f->interface);
    else if (a == "--join")
      ok = take(&f->join);
    else if (a == "--heartbeat-timeout") {
      std::string v;
      ok = take(&v);
      char* end = nullptr;
      f->heartbeat_timeout_ms = ok ? std::strtol(v.c_str(), &end, 10) : 0;
      if (ok && (end == v.c_str() || *end != '\0' || f->heartbeat_timeout_ms < 100)) {
        std::fprintf(stderr, "cohortd: --heartbeat-timeout wants milliseconds (>= 100), not '%s'\n",
                     v.c_str());
        return false;
      }
    }
    else if (a == "--slots") {
      std::string v;
      ok = take(&v);
      char* end = nullptr;
      f->slots = ok ? std::strtol(v.c_str(), &end, 10) : 0;
      if (ok && (end == v.c_str() || *end != '\0' || f->slots < 1 || f->slots > 100000)) {
        std::fprintf(stderr, "cohortd: --slots wants a count from 1 to 100000, not '%s'\n", v.c_str());
        return false;
      }
    } else if (a == "--wdir")
      ok = take(&f->wdir);
    else if (a == "--path")
      ok = take(&f->path);
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "cohortd: unknown argument '%s'\n%s", argv[i], kUsage);
      return false;
    }
    if (!ok) {
      std::fprintf(stderr, "cohortd: %s needs a value\n%s", a.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

/// Where start-up results go: stdout/stderr, or the pipe to the waiting parent.
struct Reporter {
  int pipe_fd = -1;
  void ready(const std::string& line) {
    std::string l = line + "\n";
    if (pipe_fd >= 0) {
      (void)write_all(pipe_fd, l.data(), l.size());
      ::close(pipe_fd);
      pipe_fd = -1;
    } else {
      std::fputs(l.c_str(), stdout);
      std::fflush(stdout);
    }
  }
  int fail(const std::string& message) {
    std::string l = "cohortd: " + message + "\n";
    (void)write_all(pipe_fd >= 0 ? pipe_fd : 2, l.data(), l.size());
    return 1;
  }
};

/// The parent of --daemonize: wait for the child's one line and pass it on.
int wait_for_child(int read_fd, pid_t child) {
  std::string text;
  char buf[512];
  while (true) {
    ssize_t n = ::read(read_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  if (text.rfind("cohortd ready ", 0) == 0) {
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  int st = 0;
  ::waitpid(child, &st, 0);  // it failed and exited: do not leave it a zombie
  if (text.empty()) text = "cohortd: the daemon exited during start-up; see its log\n";
  std::fputs(text.c_str(), stderr);
  return 1;
}

/// Make sure fds 0-2 are open, so nothing the daemon opens lands on them
/// (a task's stdout pipe must never be fd 1 of the daemon itself).
void ensure_std_fds(bool detach) {
  for (int fd = 0; fd < 3; ++fd) {
    if (!detach && ::fcntl(fd, F_GETFD) != -1) continue;
    int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null >= 0 && null != fd) {
      ::dup2(null, fd);
      ::close(null);
    }
  }
}

int log_fd = -1;
std::string log_path;

Status open_log() {
  int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status(Errc::kIoError, "open(" + log_path + ")", errno);
  log::set_fd(fd);
  if (log_fd >= 0) ::close(log_fd);
  log_fd = fd;
  return Status();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!parse(argc, argv, &flags)) return 2;
  if (flags.interface.empty())
    if (const char* i = std::getenv(env::kInterface)) flags.interface = i;
  // Tasks publish their addresses on the same interface (transport/tcp).
  if (!flags.interface.empty()) ::setenv(env::kInterface, flags.interface.c_str(), 1);

  // A joining daemon reads the VM's cookie from stdin (the launch agent's
  // stdin): never from its command line or environment, which others can read.
  std::string join_cookie;
  if (!flags.join.empty()) {
    char buf[256];
    std::size_t n = 0;
    while (n < sizeof buf) {
      ssize_t r = ::read(0, buf + n, sizeof buf - n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      n += static_cast<std::size_t>(r);
      if (std::memchr(buf, '\n', n)) break;
    }
    join_cookie.assign(buf, n);
    if (auto nl = join_cookie.find('\n'); nl != std::string::npos) join_cookie.resize(nl);
    // The master sends it in hex (host_starter.cpp); anything else is taken as is.
    if (join_cookie.size() % 2 == 0 &&
        join_cookie.find_first_not_of("0123456789abcdef") == std::string::npos) {
      std::string raw;
      for (std::size_t i = 0; i < join_cookie.size(); i += 2)
        raw += static_cast<char>(std::stoi(join_cookie.substr(i, 2), nullptr, 16));
      join_cookie = raw;
    }
    if (join_cookie.empty()) {
      std::fprintf(stderr, "cohortd: --join needs the VM's cookie on stdin\n");
      return 2;
    }
  }

  Reporter report;
  if (flags.daemonize) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
      return report.fail(std::string("pipe: ") + std::strerror(errno));
    pid_t child = ::fork();
    if (child < 0) return report.fail(std::string("fork: ") + std::strerror(errno));
    if (child > 0) {
      ::close(p[1]);
      return wait_for_child(p[0], child);
    }
    ::close(p[0]);
    report.pipe_fd = p[1];
    ::setsid();  // no controlling terminal; the shell's hangup does not reach us
  }
  ensure_std_fds(flags.daemonize);

  std::string vm = env::vm_name(flags.vm);
  if (!flags.join.empty() && flags.dir.empty()) {
    // Hosts may share a file system (home directories, or emulated hosts):
    // a joining daemon's directory carries its host name.
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    auto base = env::vm_dir(vm, /*create=*/false);
    if (!base.is_ok()) return report.fail(base.status().message());
    std::string b = *base;
    while (b.size() > 1 && b.back() == '/') b.pop_back();
    flags.dir = b + "-" + host;
  }
  if (!flags.dir.empty()) {
    // Tasks get COHORT_DIR and may run elsewhere: make it absolute.
    std::error_code ec;
    auto abs = std::filesystem::absolute(flags.dir, ec);
    ::setenv(env::kDir, (ec ? flags.dir : abs.lexically_normal().string()).c_str(), 1);
  }
  auto dir = env::vm_dir(vm, /*create=*/true);
  if (!dir.is_ok()) return report.fail(dir.status().message());
  std::string d = *dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();

  log_path = flags.log_file.empty() ? env::path_in(d, env::kLogName) : flags.log_file;
  if (Status s = open_log(); !s.is_ok()) return report.fail(s.message());
  log::set_process_tag("cohortd");
  if (!flags.log_spec.empty())
    log::configure(flags.log_spec);
  else if (!env::get(env::kLog))
    log::configure("info");

  auto claimed = daemon::RuntimeDir::claim(d);
  if (!claimed.is_ok()) {
    COHORT_LOG_WARN("daemon") << "not starting: " << claimed.status().message();
    return report.fail(claimed.status().message());
  }
  daemon::ClusterSetup cluster;
  cluster.options.listen = flags.listen;
  cluster.options.interface = flags.interface;
  cluster.options.heartbeat_timeout = std::chrono::milliseconds(flags.heartbeat_timeout_ms);
  cluster.options.heartbeat_period =
      std::min(std::chrono::milliseconds(500), cluster.options.heartbeat_timeout / 4);
  cluster.options.slots = static_cast<std::uint32_t>(flags.slots);
  cluster.options.wdir = flags.wdir;
  cluster.options.path = flags.path;
  auto bound = daemon::Cluster::bind_listener(flags.listen, flags.interface);
  if (!bound.is_ok()) return report.fail(bound.status().message());
  cluster.listener = std::move(bound->first);
  cluster.address = std::move(bound->second);
  if (!flags.join.empty()) {
    if (Status s = claimed->set_cookie(join_cookie); !s.is_ok()) return report.fail(s.message());
    proto::HostInfo self;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    self.name = host;
    self.address = cluster.address;
    self.arch = daemon::Hosts::arch();
    self.ncpus = daemon::Hosts::ncpus();
    self.slots = static_cast<std::uint32_t>(flags.slots);
    self.daemon_pid = ::getpid();
    auto joined = daemon::join_master(flags.join, join_cookie, vm, self, std::chrono::seconds(20));
    if (!joined.is_ok()) {
      COHORT_LOG_WARN("daemon") << "cannot join " << flags.join << ": " << joined.status().message();
      return report.fail("cannot join the VM at " + flags.join + ": " + joined.status().message());
    }
    cluster.options.joined = std::move(joined).value();
  }
  auto daemon = daemon::Daemon::create(std::move(claimed).value(), vm, [] {
    if (Status s = open_log(); !s.is_ok()) {
      COHORT_LOG_WARN("daemon") << s.to_string();
    }
  }, std::move(cluster));
  if (!daemon.is_ok()) {
    COHORT_LOG_ERROR("daemon") << "cannot start: " << daemon.status().to_string();
    return report.fail(daemon.status().to_string());
  }
  report.ready((*daemon)->ready_line());
  return (*daemon)->run();
}
