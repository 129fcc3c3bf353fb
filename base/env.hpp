// base/env.hpp — environment variables cohort reads, and where a VM lives on disk.
//
// Every COHORT_* variable is named here once. A VM's files live in its runtime
// directory, private to the user (0700):
//   $COHORT_DIR, if set (tests use a temporary one), else
//   ${XDG_RUNTIME_DIR:-/tmp}/cohort-<uid>/<vm name>      vm name: --vm, $COHORT_VM, "default"
// holding cohortd.sock (the daemon's Unix socket), cookie (0600), cohortd.pid, cohortd.log.
#pragma once

#include "base/status.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cohort::env {

// Identity handed by the daemon to each task it spawns.
inline constexpr const char* kTid = "COHORT_TID";
inline constexpr const char* kParent = "COHORT_PARENT";
inline constexpr const char* kJob = "COHORT_JOB";
inline constexpr const char* kRank = "COHORT_RANK";
inline constexpr const char* kJobSize = "COHORT_JOB_SIZE";
// Where the VM is.
inline constexpr const char* kDir = "COHORT_DIR";
inline constexpr const char* kVm = "COHORT_VM";
// Tuning and debugging.
inline constexpr const char* kLog = "COHORT_LOG";
inline constexpr const char* kTransports = "COHORT_TRANSPORTS";
inline constexpr const char* kEagerLimit = "COHORT_EAGER_LIMIT";
inline constexpr const char* kSpinUs = "COHORT_SPIN_US";
/// The network interface whose addresses daemons and tasks advertise.
inline constexpr const char* kInterface = "COHORT_IF";

inline constexpr const char* kSocketName = "cohortd.sock";
inline constexpr const char* kCookieName = "cookie";
inline constexpr const char* kPidName = "cohortd.pid";
inline constexpr const char* kLogName = "cohortd.log";
inline constexpr std::size_t kCookieBytes = 32;  // 256 bits

std::optional<std::string> get(const char* name);
/// Integer variable; `fallback` when unset; an error naming the variable when malformed.
Result<std::int64_t> get_int(const char* name, std::int64_t fallback);

/// The VM name: `explicit_name` if not empty, else $COHORT_VM, else "default".
std::string vm_name(std::string_view explicit_name = {});
/// The VM's runtime directory (see above). With `create`, makes it (0700) and
/// its parent; fails if it exists with another owner or is open to others.
Result<std::string> vm_dir(std::string_view vm_name, bool create);
inline std::string path_in(const std::string& dir, const char* file) { return dir + "/" + file; }

/// Read the cookie file of `dir`; kNoVm when absent, kPermissionDenied when not 0600.
Result<std::string> read_cookie(const std::string& dir);
/// Create a new random cookie file (0600) in `dir`, replacing any old one.
Result<std::string> create_cookie(const std::string& dir);

}  // namespace cohort::env
