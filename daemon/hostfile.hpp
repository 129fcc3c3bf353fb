// daemon/hostfile.hpp — the list of hosts a VM starts with (`cohort start --hostfile FILE`).
//
// One host per line, then options; `#` starts a comment; blank lines are fine.
// A line whose host is `*` sets defaults for the lines after it (as in PVM):
//
//   # name          options
//   *               slots=4
//   node1
//   node2           slots=8 wdir=/scratch/me path=/opt/app/bin:/usr/bin
//   gpu[1-2]        agent='ip netns exec {host}'      # a Slurm-style range: gpu1 gpu2
//
// Options: slots=N (tasks placed there before `--map-by slot` moves on; default
// the host's core count), agent=TEMPLATE (how to start its daemon; see
// launch_agent.hpp), wdir=DIR (tasks' working directory), path=DIRS (tasks'
// executable search path). PVM's `wd=` and `ep=` are accepted for wdir and path.
// Values with blanks are quoted with '…' or "…". Every error names FILE:LINE and
// what to write instead; nothing is accepted from a file with an error.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::daemon {

struct HostSpec {
  std::string name;
  int slots = 0;            // 0: the host's core count, learnt when its daemon joins
  std::string agent;        // empty: the VM's default launch agent
  std::string wdir;
  std::string path;
  int line = 0;             // where it was written (1-based); 0 when not from a file
};

/// Parse hostfile text; `file_name` only labels errors.
Result<std::vector<HostSpec>> parse_hostfile(std::string_view text, std::string_view file_name);
/// Read and parse a hostfile.
Result<std::vector<HostSpec>> read_hostfile(const std::string& path);

/// Expand a Slurm-style host list: "n[1-3,7],gpu01" -> n1 n2 n3 n7 gpu01 (zero
/// padding kept: "n[01-03]" -> n01 n02 n03). kInvalidArgument on a malformed list.
Result<std::vector<std::string>> expand_host_list(std::string_view list);

}  // namespace cohort::daemon
