#pragma once
// Signal dispositions that libraries we load take without asking.
//
// libfabric pulls in PSM (libpsm_infinipath -> libinfinipath), whose library
// constructor catches SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL and SIGABRT
// before main() runs: it writes a "<prog>.80s-<pid>,<host>.btr" file into the
// working directory and exits with status 1. A task killed by `cohort kill`
// would then look like one that exited with 1, and crashes would litter the
// user's directory. IPATH_NO_BACKTRACE (set by cohortd for every task) keeps
// the constructor from doing it; reset_foreign_handlers() undoes it for
// programs started some other way, right after libfabric is loaded
// (transport/ofi/ofi_library.cpp loads it only when an ofi endpoint opens).

namespace cohort {

/// Puts SIG_DFL back for every fatal signal whose handler lives in a library
/// known to take them at load time. Handlers the program installed are kept.
/// Returns how many were reset.
int reset_foreign_handlers() noexcept;

/// The environment variable that stops libinfinipath from taking signals.
inline constexpr const char* kPsmNoBacktrace = "IPATH_NO_BACKTRACE";

}  // namespace cohort
