// daemon/spawner.hpp — turning a Spawn request into running processes.
//
// Three steps, each usable alone (the dispatcher strings them together and
// does the bookkeeping):
//   1. check(): request-wide arguments (count 1..kMaxSpawnCount, strings
//      without NUL bytes, env entries NAME=VALUE, an existing cwd).
//   2. find_program(): an absolute path to execute. A program containing '/'
//      is taken relative to the request's cwd; a bare name is searched in the
//      PATH of the request's env when it sets one, else the daemon's PATH.
//      Errors are kBadProgram and name the program and the reason:
//        program 'foo' not found in PATH (/usr/bin:/bin)
//        program './foo': Permission denied
//   3. start(): one process. It gets stdin from /dev/null, stdout and stderr
//      on fresh pipes (returned, non-blocking, for the OutputForwarder), its own
//      process group, default signal dispositions and an empty signal mask,
//      the daemon's environment + the request's + its identity (COHORT_TID,
//      COHORT_PARENT, COHORT_JOB, COHORT_RANK, COHORT_JOB_SIZE, COHORT_DIR,
//      COHORT_VM, COHORT_BIND), and the request's cwd. Given a bound Binding
//      (binding.hpp), it starts on those CPUs; if they cannot be set, it
//      starts unbound, with a warning, rather than not at all.
//
// start() uses posix_spawn: glibc implements it with clone(CLONE_VM|CLONE_VFORK),
// so starting 4096 tasks does not copy the daemon's page tables 4096 times, and
// it reports an exec failure as its return value (the child is already reaped),
// which the outcome then carries as errno text. Every fd the daemon holds is
// close-on-exec, so a task inherits only its three standard streams.
#pragma once

#include <sys/types.h>

#include <cohort/tid.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "daemon/binding.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

inline constexpr std::int32_t kMaxSpawnCount = 4096;

/// Who a new task is, as told to it through its environment.
struct TaskIdentity {
  Tid tid = kNoTid;
  Tid parent = kNoTid;
  std::uint32_t job = 0;
  std::int32_t rank = 0;
  std::int32_t job_size = 1;
};

struct StartedTask {
  pid_t pid = -1;
  UniqueFd out;  // read end of its stdout pipe (non-blocking)
  UniqueFd err;  // read end of its stderr pipe (non-blocking)
  bool bound = false;  // started on the Binding's CPUs
};

/// Find `program` as described above: the path to execute once in `cwd` —
/// `program` itself when it contains '/', else the PATH entry (joined to
/// `cwd` when relative) that holds it. `path_var` is the PATH to search.
/// Pure lookup, usable from tests.
Result<std::string> find_program(const std::string& program, const std::string& cwd,
                                 const std::string& path_var);

class Spawner {
 public:
  /// `dir` and `vm_name` are handed to every task; the daemon's environment is
  /// captured now.
  Spawner(std::string dir, std::string vm_name);

  /// This host's hostfile options: the working directory of tasks whose
  /// request names none, and the PATH they search and get unless the request
  /// sets PATH. Empty: the daemon's own.
  void set_host_defaults(std::string wdir, std::string path);

  Status check(const proto::Spawn& req) const;
  Result<std::string> find_program(const proto::Spawn& req) const;

  /// The environment shared by every instance of `req` (daemon's + request's).
  std::vector<std::string> base_env(const proto::Spawn& req) const;
  /// Start one instance of `req` as `id`, running `path` with environment
  /// `env` (from base_env) plus the identity variables, bound as `binding`
  /// says (nullptr: not bound).
  Result<StartedTask> start(const proto::Spawn& req, const std::string& path,
                            const std::vector<std::string>& env, const TaskIdentity& id,
                            const Binding* binding = nullptr) const;

 private:
  const std::string& cwd_of(const proto::Spawn& req) const noexcept {
    const bool inherited = req.cwd.empty() || (req.flags & proto::kSpawnCwdInherited) != 0;
    return inherited && !wdir_.empty() ? wdir_ : req.cwd;
  }
  bool host_path_wins(const proto::Spawn& req) const noexcept {
    return !path_.empty() && (req.flags & proto::kSpawnPathInherited) != 0;
  }

  std::string dir_;
  std::string vm_name_;
  std::string wdir_;
  std::string path_;
  std::vector<std::string> daemon_env_;
};

}  // namespace cohort::daemon
