// daemon/leftovers.hpp — what a dead task leaves in /dev/shm, removed.
//
// cohort's own shm transport uses memfds, which vanish with their last
// mapping. libfabric's shm provider (the ofi transport over `shm`) names its
// regions in /dev/shm "<pid>:<ep>:<domain>" and unlinks them only when the
// process closes them: a task killed by a signal leaves 16 MiB or more behind
// per endpoint. The daemon that reaps such a task removes them.
#pragma once

#include <sys/types.h>

#include <string>

namespace cohort::daemon {

/// Remove the /dev/shm (or `shm_dir`) files that process `pid` left behind
/// and that belong to this user. Returns how many were removed.
int remove_shm_leftovers(pid_t pid, const std::string& shm_dir = "/dev/shm");

}  // namespace cohort::daemon
