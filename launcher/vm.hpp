// launcher/vm.hpp — finding a running VM, or starting one, for the `cohort` command.
//
// Two kinds of VM serve the subcommands:
//   - the persistent VM of `cohort start`: `cohortd --daemonize` in the
//     runtime directory of its name (--vm, $COHORT_VM, "default"; or
//     $COHORT_DIR), found again by every later `cohort` call;
//   - a private VM of `cohort run` / `cohort bench` when none is running:
//     `cohortd --dir D` for a fresh directory D made with mkdtemp under the
//     per-user runtime directory, a child of this process (its own process
//     group, SIGTERM if we die), halted and removed when the job is done.
//
//   auto s = connect_tool(globals);                 // nullptr: no VM running
//   if (!s) return report_no_vm(globals);
//
//   auto vm = PrivateVm::start();                   // Result<unique_ptr<PrivateVm>>
//   cohort::Session s(vm.value()->session_options());
//   ... run the job ...
//   vm.value()->stop(&s);                           // Halt, reap, remove the directory
//
// The daemon binary is $COHORT_DAEMON when set, else `cohortd` next to this
// executable (/proc/self/exe), which is where the build and `make install` put it.
#pragma once

#include <sys/types.h>

#include <cohort/cohort.hpp>

#include <memory>
#include <string>

#include "base/status.hpp"
#include "launcher/commands.hpp"
#include "launcher/subprocess.hpp"

namespace cohort::cli {

/// The cohortd executable to start (see above); an error says how to point at it.
Result<std::string> daemon_path();

/// Where the VM named by `g` lives (for messages; nothing is created).
std::string vm_dir_of(const Globals& g);

/// Session options for an administrative client of the VM named by `g`.
SessionOptions tool_options(const Globals& g);

/// Connect to the VM named by `g` as a tool. nullptr when no VM is running
/// there; any other failure (bad cookie, permissions) throws cohort::Error.
std::unique_ptr<Session> connect_tool(const Globals& g);

/// Print "no cohort VM is running (looked in DIR); start one with ..." and return 1.
int report_no_vm(const Globals& g);

/// What cohortd prints when ready: "cohortd ready host=1 pid=PID socket=PATH".
struct ReadyLine {
  unsigned host = 0;
  pid_t pid = 0;
  std::string socket;
};
Result<ReadyLine> parse_ready_line(std::string_view line);

/// A VM of our own, for one job (see above).
class PrivateVm {
 public:
  /// Make the directory, start cohortd in it and wait for its readiness line.
  static Result<std::unique_ptr<PrivateVm>> start();
  ~PrivateVm();  ///< stop(nullptr) if not stopped yet
  PrivateVm(const PrivateVm&) = delete;
  PrivateVm& operator=(const PrivateVm&) = delete;

  const std::string& dir() const { return dir_; }
  const ReadyLine& ready() const { return ready_; }
  SessionOptions session_options() const;

  /// Halt the VM through `session` when given (the orderly way: the daemon kills
  /// its tasks), else by SIGTERM; SIGKILL after a grace period; reap; remove dir.
  void stop(Session* session);

 private:
  PrivateVm() = default;
  std::string dir_;
  ReadyLine ready_;
  Child child_;
  bool stopped_ = false;
};

}  // namespace cohort::cli
