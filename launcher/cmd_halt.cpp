// `cohort halt`: stop the VM — every task, then every daemon.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "base/env.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kHaltUsage =
    "usage: cohort halt [--vm NAME]\n"
    "\n"
    "Stop the VM: its daemons kill every task they run and exit. Waits (up to\n"
    "10 s) until this host's daemon is gone, so that 'cohort start' may follow.\n";

namespace {

// True while `pid` runs. A zombie counts as gone: where PID 1 does not reap
// (some containers), a daemonized cohortd stays a zombie after it exits.
bool process_alive(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return ::kill(pid, 0) == 0 || errno == EPERM;
  char buf[512];
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string stat(buf, n);
  auto paren = stat.rfind(')');  // the command name may itself hold ')' or spaces
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace

int cmd_halt(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false;
  Parser p("cohort halt");
  add_global_options(p, g, &help);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kHaltUsage);
  if (help) return show_usage(kHaltUsage);
  if (!rest->empty())
    return usage_error("cohort halt: unexpected argument '" + rest->front() + "'", kHaltUsage);

  auto s = connect_tool(g);
  if (!s) return report_no_vm(g);
  int pid = 0;
  std::size_t ntasks = 0;
  for (const HostInfo& h : s->hosts()) {
    if (h.index == s->host()) pid = h.daemon_pid;
    ntasks += h.ntasks;
  }
  s->halt();
  s.reset();  // leave before the daemon closes on us

  // halt() returns once the daemon has accepted; wait for it to be gone, so
  // that the runtime directory is free for the next `cohort start`.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pid > 0 && process_alive(pid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "cohort halt: the daemon (pid %d) accepted the halt but is still running\n",
                   pid);
      return kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("cohort VM '%s' halted (%zu task%s stopped)\n", env::vm_name(g.vm).c_str(), ntasks,
              ntasks == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace cohort::cli
