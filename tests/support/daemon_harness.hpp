// tests/support/daemon_harness.hpp — real cohortd processes for tests.
//
// Each test gets a private temporary directory (TempDir) that becomes the VM's
// runtime directory; DaemonProcess starts `cohortd --dir DIR` there (never a
// fixed port, never the user's real VM), waits with a deadline for its single
// readiness line on stdout, and on destruction kills the daemon's process group
// and every task it started, then removes the directory — also when the test
// failed.
//
//   cohort::testing::TempDir dir;
//   auto d = cohort::testing::DaemonProcess::start(dir.path());
//   ASSERT_TRUE(d.is_ok()) << d.status().to_string();
//   ::setenv("COHORT_DIR", dir.path().c_str(), 1);   // clients in this process find it
//   auto rc = cohort::testing::run_program({bin("cohort"), "ps"}, dir.path());
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace cohort::testing {

/// Where the build put the executables (COHORT_BIN_DIR, set by cohort_add_test).
std::string bin_dir();
/// bin_dir() + "/" + name.
std::string bin(const std::string& name);

/// A fresh 0700 directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class DaemonProcess {
 public:
  /// Start cohortd with --dir `dir` (plus `extra_args`) and wait up to `deadline`
  /// for its readiness line. The error includes the daemon's log on failure.
  static Result<std::unique_ptr<DaemonProcess>> start(
      const std::string& dir, const std::vector<std::string>& extra_args = {},
      std::chrono::milliseconds deadline = std::chrono::seconds(20));
  ~DaemonProcess();  // SIGKILL to the daemon's process group and its tasks, then reap

  const std::string& dir() const { return dir_; }
  std::string socket_path() const;
  pid_t pid() const { return pid_; }
  /// The readiness line the daemon printed.
  const std::string& ready_line() const { return ready_line_; }
  /// Send `sig` to the daemon only.
  void signal(int sig);
  /// Wait up to `deadline` for the daemon to exit; its wait status, or kTimeout.
  Result<int> wait(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  /// The daemon's log file (DIR/cohortd.log).
  std::string log() const;
  /// Log lines at level "error" that the test did not declare with expect_error().
  std::vector<std::string> unexpected_errors() const;
  void expect_error(const std::string& substring) { expected_errors_.push_back(substring); }

 private:
  DaemonProcess() = default;
  std::string dir_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string ready_line_;
  std::vector<std::string> expected_errors_;
};

/// Run a program to completion with COHORT_DIR=`vm_dir`, capturing stdout and
/// stderr. Killed (and kTimeout returned) after `deadline`.
struct ProgramResult {
  int exit_code = -1;          // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};
Result<ProgramResult> run_program(const std::vector<std::string>& argv, const std::string& vm_dir,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(60),
                                  const std::vector<std::string>& extra_env = {});

}  // namespace cohort::testing
