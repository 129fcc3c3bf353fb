// launcher/commands.hpp — the subcommands of `cohort` and what they share.
//
// Each subcommand lives in its own cmd_<name>.cpp and is a function from its
// arguments (everything after the subcommand name) to the process exit code.
// main.cpp parses the global options, picks the subcommand from kCommands and
// calls it. A subcommand prints its own usage (usage()) on bad arguments.
//
// Exit codes, shared by every subcommand:
//   0 success; 1 failure (no VM, daemon error, ...); 2 bad arguments or usage;
//   `cohort run` adds the job's own status, 126/127 for programs that cannot
//   start, and 128+N when it was stopped by signal N.
#pragma once

#include <string>
#include <vector>

namespace cohort::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCannotExecute = 126;
inline constexpr int kExitNotFound = 127;

/// Options that apply to every subcommand.
struct Globals {
  std::string vm;        ///< --vm NAME; empty: $COHORT_VM or "default"
};

struct Command {
  const char* name;
  const char* summary;   ///< one line for `cohort help`
  const char* usage;     ///< the subcommand's full usage text
  int (*run)(const Globals&, const std::vector<std::string>& args);
};

int cmd_start(const Globals&, const std::vector<std::string>& args);
int cmd_halt(const Globals&, const std::vector<std::string>& args);
int cmd_hosts(const Globals&, const std::vector<std::string>& args);
int cmd_add(const Globals&, const std::vector<std::string>& args);
int cmd_remove(const Globals&, const std::vector<std::string>& args);
int cmd_ps(const Globals&, const std::vector<std::string>& args);
int cmd_kill(const Globals&, const std::vector<std::string>& args);
int cmd_run(const Globals&, const std::vector<std::string>& args);
int cmd_bench(const Globals&, const std::vector<std::string>& args);

extern const char* const kStartUsage;
extern const char* const kHaltUsage;
extern const char* const kHostsUsage;
extern const char* const kAddUsage;
extern const char* const kRemoveUsage;
extern const char* const kPsUsage;
extern const char* const kKillUsage;
extern const char* const kRunUsage;
extern const char* const kBenchUsage;

/// Print `message` (if any) and the usage text to stderr; returns kExitUsage.
int usage_error(const std::string& message, const char* usage);
/// Print `usage` to stdout for an explicit --help; returns 0.
int show_usage(const char* usage);

class Parser;
/// Let a subcommand accept the global options after its name too
/// (`cohort ps --vm test`): adds them to `p`, writing into `g`.
void add_global_options(Parser& p, Globals& g, bool* help);

}  // namespace cohort::cli
