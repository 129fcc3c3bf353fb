#include "daemon/spawner.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <unordered_map>

#include "base/env.hpp"
#include "base/log.hpp"
#include "base/signals.hpp"
#include "daemon/ids.hpp"

extern char** environ;

namespace cohort::daemon {
namespace {

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

std::string env_name(const std::string& entry) {
  return entry.substr(0, entry.find('='));
}

/// 0 when `path` is an executable regular file, else the errno that explains why not.
int check_executable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if (::access(path.c_str(), X_OK) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return EACCES;
  return 0;
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == ".") return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

Result<std::string> find_program(const std::string& program, const std::string& cwd,
                                 const std::string& path_var) {
  if (program.find('/') != std::string::npos) {
    std::string path = program[0] == '/' ? program : join(cwd, program);
    if (int err = check_executable(path); err != 0)
      return Status(Errc::kBadProgram, "program '" + program + "': " + std::strerror(err));
    // Executed as given, after the task changed to cwd, so that a script sees
    // in $0 what the user typed, as in a shell.
    return program;
  }
  // Like execvp: an entry that exists but may not be executed is remembered,
  // and reported only when no later entry has the program.
  int seen_error = 0;
  std::string_view rest = path_var;
  while (true) {
    auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    if (dir[0] != '/') dir = join(cwd, dir);
    std::string candidate = join(dir, program);
    int err = check_executable(candidate);
    if (err == 0) return candidate;
    if (err == EACCES || err == EISDIR) seen_error = err;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (seen_error != 0)
    return Status(Errc::kBadProgram, "program '" + program + "': " + std::strerror(seen_error));
  return Status(Errc::kBadProgram,
                "program '" + program + "' not found in PATH (" + path_var + ")");
}

Spawner::Spawner(std::string dir, std::string vm_name)
    : dir_(std::move(dir)), vm_name_(std::move(vm_name)) {
  for (char** e = environ; e && *e; ++e) daemon_env_.emplace_back(*e);
}

void Spawner::set_host_defaults(std::string wdir, std::string path) {
  wdir_ = std::move(wdir);
  path_ = std::move(path);
}

Status Spawner::check(const proto::Spawn& req) const {
  if (req.count < 1 || req.count > kMaxSpawnCount)
    return Status(Errc::kInvalidArgument, "spawn count " + std::to_string(req.count) +
                                              " is out of range; ask for 1 to " +
                                              std::to_string(kMaxSpawnCount) + " tasks");
  if (req.program.empty()) return Status(Errc::kInvalidArgument, "spawn without a program name");
  if (static_cast<unsigned>(req.bind_to) > static_cast<unsigned>(proto::BindTo::kNuma))
    return Status(Errc::kInvalidArgument,
                  "bind_to " + std::to_string(static_cast<unsigned>(req.bind_to)) +
                      " is unknown; give auto, none, core or numa");
  if (has_nul(req.program) || has_nul(req.cwd))
    return Status(Errc::kInvalidArgument, "program name or cwd contains a NUL byte");
  for (const auto& a : req.args)
    if (has_nul(a)) return Status(Errc::kInvalidArgument, "an argument contains a NUL byte");
  for (const auto& e : req.env)
    if (has_nul(e) || e.find('=') == std::string::npos || e[0] == '=')
      return Status(Errc::kInvalidArgument,
                    "environment entry '" + e.substr(0, 64) + "' is not NAME=VALUE");
  return Status();
}

Result<std::string> Spawner::find_program(const proto::Spawn& req) const {
  std::string cwd = cwd_of(req);
  if (!cwd.empty()) {
    // Relative PATH entries are joined to it and must still hold after the
    // task changed directory: make it absolute (against the daemon's cwd).
    std::error_code ec;
    if (cwd[0] != '/') cwd = std::filesystem::absolute(cwd, ec).string();
    struct stat st {};
    if (::stat(cwd.c_str(), &st) != 0)
      return errno_status(Errc::kBadProgram, "working directory '" + cwd + "'", errno);
    if (!S_ISDIR(st.st_mode))
      return Status(Errc::kBadProgram, "working directory '" + cwd + "' is not a directory");
  }
  std::string path_var;
  bool found = host_path_wins(req);
  if (found) path_var = path_;
  for (auto it = req.env.rbegin(); it != req.env.rend() && !found; ++it)
    if (it->rfind("PATH=", 0) == 0) path_var = it->substr(5), found = true;
  if (!found && !path_.empty()) path_var = path_, found = true;
  if (!found) {
    const char* p = std::getenv("PATH");
    path_var = p ? p : "/usr/local/bin:/usr/bin:/bin";
  }
  return daemon::find_program(req.program, cwd, path_var);
}

std::vector<std::string> Spawner::base_env(const proto::Spawn& req) const {
  // Later entries win: the daemon's, then the request's. Identity variables
  // are dropped here and set per instance, so nobody can forge them.
  static const char* const kIdentity[] = {env::kTid, env::kParent, env::kJob, env::kRank,
                                          env::kJobSize, env::kDir, env::kVm, kBindEnv};
  std::vector<std::string> out;
  std::unordered_map<std::string, std::size_t> at;
  auto put = [&](const std::string& entry) {
    std::string name = env_name(entry);
    for (const char* id : kIdentity)
      if (name == id) return;
    auto [it, fresh] = at.emplace(name, out.size());
    if (fresh)
      out.push_back(entry);
    else
      out[it->second] = entry;
  };
  for (const auto& e : daemon_env_) put(e);
  if (!path_.empty()) put("PATH=" + path_);
  for (const auto& e : req.env) put(e);
  if (host_path_wins(req)) put("PATH=" + path_);
  return out;
}

Result<StartedTask> Spawner::start(const proto::Spawn& req, const std::string& path,
                                   const std::vector<std::string>& env, const TaskIdentity& id,
                                   const Binding* binding) const {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return errno_status(Errc::kRetry, "pipe2", errno);
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return errno_status(Errc::kRetry, "pipe2", errno);
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // Only our ends are non-blocking (the task's must block), and they are set
  // before the task exists: no failure after posix_spawn may orphan a child.
  COHORT_RETURN_IF_ERROR(set_nonblocking(out_r.get()));
  COHORT_RETURN_IF_ERROR(set_nonblocking(err_r.get()));

  std::vector<std::string> envs = env;
  envs.push_back(std::string(env::kTid) + "=" + std::to_string(id.tid));
  envs.push_back(std::string(env::kParent) + "=" + std::to_string(id.parent));
  envs.push_back(std::string(env::kJob) + "=" + std::to_string(id.job));
  envs.push_back(std::string(env::kRank) + "=" + std::to_string(id.rank));
  envs.push_back(std::string(env::kJobSize) + "=" + std::to_string(id.job_size));
  envs.push_back(std::string(env::kDir) + "=" + dir_);
  envs.push_back(std::string(env::kVm) + "=" + vm_name_);
  // The CPUs are set on this thread for the spawn and inherited (binding.hpp).
  std::optional<AffinityScope> affinity;
  if (binding != nullptr && binding->bound()) {
    auto scope = AffinityScope::bind(binding->cpus);
    if (scope.is_ok()) {
      affinity.emplace(std::move(scope).value());
    } else {
      COHORT_LOG_WARN("daemon.spawn") << tid_name(id.tid) << " runs unbound: cannot bind it to "
                                      << binding->describe() << ": " << scope.status().message();
    }
  }
  envs.push_back(std::string(kBindEnv) + "=" + (affinity ? binding->describe() : "none"));
  // PSM (loaded with libfabric) would otherwise catch SIGTERM and crashes in
  // the task before main() (base/signals.hpp). The user may still ask for it.
  const std::string no_bt = std::string(kPsmNoBacktrace) + "=";
  if (std::none_of(envs.begin(), envs.end(), [&](const std::string& e) { return e.rfind(no_bt, 0) == 0; }))
    envs.push_back(no_bt + "1");
  std::vector<char*> envp;
  envp.reserve(envs.size() + 1);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::vector<std::string> args;
  args.reserve(req.args.size() + 1);
  args.push_back(req.program);
  args.insert(args.end(), req.args.begin(), req.args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  if (!cwd_of(req).empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd_of(req).c_str());
  // The daemon blocks the signals it reads through signalfd and ignores
  // SIGPIPE; a task must start with neither.
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  const bool bound = affinity.has_value();
  affinity.reset();  // the daemon's own mask again
  if (rc != 0)
    return Status(
        rc == EAGAIN || rc == ENOMEM ? Errc::kRetry : Errc::kBadProgram,
        "cannot start program '" + req.program + "' (" + path + "): " + std::strerror(rc));

  COHORT_LOG_DEBUG("daemon.spawn") << "started " << path << " as " << tid_name(id.tid) << " (pid "
                                   << pid << ", job " << id.job << " rank " << id.rank
                                   << (bound ? ", bound to " + binding->describe() : "") << ")";
  StartedTask t;
  t.pid = pid;
  t.bound = bound;
  t.out = std::move(out_r);
  t.err = std::move(err_r);
  return t;
}

}  // namespace cohort::daemon
