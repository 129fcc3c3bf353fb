// daemon/runtime_dir.hpp — the VM's directory on disk, held by one daemon at a time.
//
// claim() makes this daemon the owner of DIR:
//   - cohortd.pid is opened and locked with flock(LOCK_EX|LOCK_NB). The lock,
//     not the pid in the file, decides whether a daemon lives here: the kernel
//     drops it when the holder dies, even by SIGKILL, so a stale pid file or
//     socket never blocks the next start, and two daemons racing to start in
//     one DIR cannot both win. A second daemon fails with kAlreadyExists:
//       a VM is already running in DIR (pid N); stop it with 'cohort halt'
//   - a socket left by a killed daemon is removed;
//   - our pid is written and a fresh cookie created (env::create_cookie).
// listen() then binds DIR/cohortd.sock with mode 0600 (DIR itself is 0700).
// remove_files() undoes it all at halt; the lock goes with the process.
#pragma once

#include <string>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::daemon {

class RuntimeDir {
 public:
  static Result<RuntimeDir> claim(const std::string& dir);

  /// A non-blocking, close-on-exec listening socket on socket_path().
  Result<UniqueFd> listen();

  const std::string& dir() const noexcept { return dir_; }
  const std::string& cookie() const noexcept { return cookie_; }
  /// A daemon joining a VM takes the VM's cookie: rewrite the cookie file (0600).
  Status set_cookie(const std::string& cookie);
  std::string socket_path() const;
  std::string log_path() const;

  /// Unlink the socket (first step of a halt: new clients fail at once).
  void remove_socket() noexcept;
  /// Unlink socket, cookie and pid file.
  void remove_files() noexcept;

 private:
  std::string dir_;
  std::string cookie_;
  UniqueFd pid_fd_;  // holds the lock while this daemon lives
};

}  // namespace cohort::daemon
