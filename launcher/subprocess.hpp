// launcher/subprocess.hpp — starting helper programs (cohortd, mpirun) and
// reading their output with deadlines.
//
// The `cohort` command starts two kinds of children: the daemon, whose one
// readiness line on stdout says where it listens, and mpirun for the Open MPI
// reference benchmark, whose whole stdout is parsed. Both are read through
// LineReader, which never blocks past a deadline, so that a child that hangs or
// keeps its pipe open cannot hang `cohort` (or CI) with it.
//
//   ChildOptions o;
//   o.new_process_group = true;                 // Ctrl-C reaches us, not the daemon
//   COHORT_ASSIGN_OR_RETURN(Child c, start_child({"/path/cohortd", "--dir", d}, o));
//   LineReader r(c.out.get());
//   COHORT_ASSIGN_OR_RETURN(std::string line, r.next(std::chrono::seconds(30)));
//
// Failures of exec itself (no such file, not executable) are reported by
// start_child through a close-on-exec pipe, with errno text, instead of
// surfacing later as a mysterious exit status 127.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::cli {

struct ChildOptions {
  bool capture_stdout = true;      ///< stdout into a pipe (Child::out); else inherited
  bool merge_stderr = false;       ///< stderr into the same pipe as stdout; else inherited
  bool search_path = false;        ///< look argv[0] up in PATH when it has no '/'
  bool new_process_group = false;  ///< terminal signals (Ctrl-C) do not reach the child
  bool die_with_parent = false;    ///< SIGTERM to the child if this process dies
  std::vector<std::string> env;    ///< NAME=VALUE entries added to (or replacing in) ours
};

struct Child {
  pid_t pid = -1;
  UniqueFd out;                    ///< read end of the stdout pipe, when captured
};

Result<Child> start_child(const std::vector<std::string>& argv, const ChildOptions& options);

/// Wait up to `timeout` for `pid` to exit; its wait status, or kTimeout.
Result<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);
/// "exited with status 3", "killed by signal 9 (SIGKILL)".
std::string describe_wait_status(int status);
/// "SIGTERM" for 15; "signal 77" when unknown.
std::string signal_name(int sig);
/// Accepts "TERM", "SIGTERM", "sigterm", "15"; -1 when not a signal.
int parse_signal(std::string_view text);

/// Splits the bytes read from a (non-blocking) fd into lines.
class LineReader {
 public:
  explicit LineReader(int fd);
  /// The next line without its '\n'. kTimeout after `timeout`; kPeerLost at end of
  /// file (the remaining partial line, if any, is then returned first).
  Result<std::string> next(std::chrono::milliseconds timeout);
  /// Whatever can be read now without waiting (for draining a pipe).
  std::string drain();

 private:
  int fd_;
  std::string buf_;
  bool eof_ = false;
};

/// The full path of `name` found in $PATH (or `name` itself when it holds a '/'),
/// or an empty string when it is not there or not executable.
std::string find_in_path(const std::string& name);
/// The directory of this executable (from /proc/self/exe).
std::string self_dir();

}  // namespace cohort::cli
