// daemon/launch_agent.hpp — how the master starts `cohortd` on another host.
//
// Three kinds, chosen per VM (`--agent`) or per host (hostfile `agent=`):
//   ssh       the default outside Slurm: `ssh -o BatchMode=yes ... HOST -- 'cohortd' ...`;
//             BatchMode makes a host that wants a password fail at once instead of
//             hanging on a prompt.
//   slurm     the default inside an allocation (SLURM_JOB_NODELIST set):
//             `srun --nodes=1 --ntasks=1 --nodelist=HOST --overlap ... cohortd ...`
//             A Slurm step ends, and Slurm kills what is left of it, when its task
//             returns: so under srun the daemon runs in the foreground (no
//             --daemonize) and srun lives as long as it does (runs_in_foreground).
//             srun runs in the master's environment, which carries the
//             allocation (SLURM_JOB_ID): start the VM inside the allocation.
//   template  any command line with {host} in it, e.g. 'ip netns exec {host}' or
//             'tests/netns/netns_exec.sh PREFIX {host}'; the daemon's own command
//             line is appended as separate arguments (no shell in between).
// A spec is "ssh", "slurm" or a template; a template without {host} is rejected
// with a message that shows where to put it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::daemon {

struct LaunchAgent {
  enum class Kind { kSsh, kSlurm, kTemplate };
  Kind kind = Kind::kSsh;
  std::vector<std::string> words;  // kTemplate: the template split into words
  std::string spec;                // as the user wrote it, for messages
};

/// "ssh" | "slurm" | a template with {host}.
Result<LaunchAgent> parse_launch_agent(std::string_view spec);
/// slurm inside a Slurm allocation (SLURM_JOB_NODELIST set), else ssh.
LaunchAgent default_launch_agent();
/// True when the daemon must stay in the foreground under this agent, for its
/// whole life (slurm): the agent then returns only when that daemon ends.
bool runs_in_foreground(const LaunchAgent& agent);
/// The argv that runs `command` on `host` through `agent`.
std::vector<std::string> launch_argv(const LaunchAgent& agent, const std::string& host,
                                     const std::vector<std::string>& command);

/// Split a command line into words the way a shell would for plain words,
/// '…' and "…" quotes and backslash escapes (no expansions).
Result<std::vector<std::string>> split_words(std::string_view line);
/// Quote one word for a POSIX shell ('…' with embedded quotes escaped).
std::string shell_quote(std::string_view word);

}  // namespace cohort::daemon
