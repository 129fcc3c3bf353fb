#include "launcher/vm.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "base/env.hpp"

namespace cohort::cli {

Result<std::string> daemon_path() {
  if (auto d = env::get("COHORT_DAEMON"); d && !d->empty()) {
    if (::access(d->c_str(), X_OK) != 0)
      return Status(Errc::kNotFound, "COHORT_DAEMON=" + *d + " is not an executable file");
    return *d;
  }
  std::string p = self_dir() + "/cohortd";
  if (::access(p.c_str(), X_OK) != 0)
    return Status(Errc::kNotFound, "the daemon " + p +
                                       " is missing; build it (target cohortd) or set COHORT_DAEMON");
  return p;
}

std::string vm_dir_of(const Globals& g) {
  auto d = env::vm_dir(env::vm_name(g.vm), false);
  return d ? d.value() : "(" + d.status().message() + ")";
}

SessionOptions tool_options(const Globals& g) {
  SessionOptions o;
  o.vm = g.vm;
  o.as_tool = true;
  return o;
}

std::unique_ptr<Session> connect_tool(const Globals& g) {
  try {
    return std::make_unique<Session>(tool_options(g));
  } catch (const Error& e) {
    // kDaemonLost at connect time means a socket file with nobody behind it: a
    // daemon that died without cleaning up. For the user that is "not running".
    if (e.errc() == Errc::kNoVm || e.errc() == Errc::kDaemonLost) return nullptr;
    throw;
  }
}

int report_no_vm(const Globals& g) {
  std::fprintf(stderr,
               "cohort: no cohort VM is running (looked in %s); start one with 'cohort start', "
               "or use 'cohort run', which starts its own\n",
               vm_dir_of(g).c_str());
  return kExitFailure;
}

Result<ReadyLine> parse_ready_line(std::string_view line) {
  constexpr std::string_view kPrefix = "cohortd ready ";
  if (line.substr(0, kPrefix.size()) != kPrefix)
    return Status(Errc::kProtocolError, "unexpected line from cohortd: '" + std::string(line) + "'");
  ReadyLine r;
  std::string_view rest = line.substr(kPrefix.size());
  while (!rest.empty()) {
    auto sp = rest.find(' ');
    std::string_view item = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    auto eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = item.substr(0, eq), val = item.substr(eq + 1);
    if (key == "host") std::from_chars(val.data(), val.data() + val.size(), r.host);
    else if (key == "pid") std::from_chars(val.data(), val.data() + val.size(), r.pid);
    else if (key == "socket") r.socket = std::string(val);
  }
  if (r.pid <= 0)
    return Status(Errc::kProtocolError, "cohortd's ready line has no pid: '" + std::string(line) + "'");
  return r;
}

namespace {

// The per-user runtime directory, ${XDG_RUNTIME_DIR:-/tmp}/cohort-<uid>, as in
// base/env.hpp. A private VM goes there even when $COHORT_DIR names another VM,
// so that it never disturbs that one.
Result<std::string> user_runtime_dir() {
  std::string base = "/tmp";
  if (auto x = env::get("XDG_RUNTIME_DIR"); x && !x->empty() && ::access(x->c_str(), W_OK) == 0)
    base = *x;
  std::string dir = base + "/cohort-" + std::to_string(::getuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_status(Errc::kIoError, "mkdir(" + dir + ")", errno);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid())
    return Status(Errc::kPermissionDenied,
                  dir + " is not a directory of yours; remove it or set XDG_RUNTIME_DIR");
  return dir;
}

std::string tail_of_file(const std::string& path, std::size_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return {};
  std::string s;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  std::fclose(f);
  if (s.size() > max_bytes) s.erase(0, s.size() - max_bytes);
  return s;
}

// A private VM's directory outlives it only when its `cohort` was killed
// outright (the daemon, told by PR_SET_PDEATHSIG, still halts and removes its
// socket and pid file, but keeps its log). Remove such leftovers: ours, named
// run-*, with no live daemon, and old enough not to be one starting up now.
void sweep_stale_private_dirs(const std::string& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const fs::directory_entry& e : fs::directory_iterator(base, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("run-", 0) != 0 || !e.is_directory(ec)) continue;
    if (now - e.last_write_time(ec) < std::chrono::minutes(1)) continue;
    const std::string dir = e.path().string();
    if (fs::exists(env::path_in(dir, env::kSocketName), ec)) {
      std::string pid_text = tail_of_file(env::path_in(dir, env::kPidName), 32);
      int pid = std::atoi(pid_text.c_str());
      if (pid <= 0 || ::kill(pid, 0) == 0 || errno == EPERM) continue;  // alive, or unsure
    }
    fs::remove_all(dir, ec);
  }
}

}  // namespace

Result<std::unique_ptr<PrivateVm>> PrivateVm::start() {
  COHORT_ASSIGN_OR_RETURN(std::string daemon, daemon_path());
  COHORT_ASSIGN_OR_RETURN(std::string base, user_runtime_dir());
  sweep_stale_private_dirs(base);
  std::string templ = base + "/run-XXXXXX";
  if (!::mkdtemp(templ.data())) return errno_status(Errc::kIoError, "mkdtemp(" + templ + ")", errno);

  std::unique_ptr<PrivateVm> vm(new PrivateVm);
  vm->dir_ = templ;
  ChildOptions o;
  o.new_process_group = true;  // Ctrl-C is ours to handle: kill the job first, then halt
  o.die_with_parent = true;    // never leave a private daemon behind
  std::string name = templ.substr(templ.rfind('/') + 1);
  auto child = start_child({daemon, "--dir", vm->dir_, "--vm", name}, o);
  if (!child) {
    vm->stopped_ = true;
    std::filesystem::remove_all(vm->dir_);
    return child.take_status();
  }
  vm->child_ = std::move(child).value();

  LineReader reader(vm->child_.out.get());
  auto line = reader.next(std::chrono::seconds(30));
  Status why;
  if (line) {
    auto ready = parse_ready_line(line.value());
    if (ready) vm->ready_ = ready.value();
    else why = ready.take_status();
  } else {
    why = line.take_status();
  }
  if (why.is_ok()) return vm;

  // It did not come up: say why, with what the daemon wrote, before cleaning up.
  std::string msg = "the private VM's daemon (" + daemon + " --dir " + vm->dir_ + ") did not start";
  auto rc = wait_child(vm->child_.pid, std::chrono::milliseconds(100));
  msg += rc ? ": it " + describe_wait_status(rc.value()) : ": " + why.message();
  std::string log = tail_of_file(env::path_in(vm->dir_, env::kLogName), 2000);
  if (!log.empty()) msg += "\n--- " + std::string(env::kLogName) + " ---\n" + log;
  vm->stop(nullptr);
  return Status(Errc::kDaemonLost, msg);
}

PrivateVm::~PrivateVm() { stop(nullptr); }

SessionOptions PrivateVm::session_options() const {
  SessionOptions o;
  o.dir = dir_;
  o.as_tool = true;
  return o;
}

void PrivateVm::stop(Session* session) {
  if (stopped_) return;
  stopped_ = true;
  if (child_.pid > 0) {
    bool halted = false;
    if (session) {
      try {
        session->halt();
        halted = true;
      } catch (const Error& e) {
        std::fprintf(stderr, "cohort: halting the private VM: %s\n", e.what());
      }
    }
    if (!halted) ::kill(child_.pid, SIGTERM);
    // Give the daemon time to kill its tasks and exit; then insist.
    if (!wait_child(child_.pid, std::chrono::seconds(10))) {
      std::fprintf(stderr, "cohort: the private VM's daemon (pid %d) did not exit; killing it\n",
                   static_cast<int>(child_.pid));
      ::kill(-child_.pid, SIGKILL);
      ::kill(child_.pid, SIGKILL);
      (void)wait_child(child_.pid, std::chrono::seconds(5));
    }
    child_.pid = -1;
  }
  child_.out.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace cohort::cli
