// `cohort kill`: send a signal to tasks, by task id.
#include <signal.h>

#include <cstdio>

#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/subprocess.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kKillUsage =
    "usage: cohort kill [--vm NAME] [-s SIGNAL] TID...\n"
    "\n"
    "Send SIGNAL (default TERM) to each task. A TID is written as 'cohort ps'\n"
    "shows it (t100001), in hex (0x100001) or in decimal (1048577).\n"
    "\n"
    "  -s, --signal SIGNAL   a name (TERM, SIGKILL, int) or a number (9)\n";

int cmd_kill(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false;
  std::string sig_text = "TERM";
  Parser p("cohort kill");
  add_global_options(p, g, &help);
  p.option({"-s", "--signal"}, &sig_text);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kKillUsage);
  if (help) return show_usage(kKillUsage);
  if (rest->empty()) return usage_error("cohort kill: which task? give a TID", kKillUsage);
  int sig = parse_signal(sig_text);
  if (sig <= 0)
    return usage_error("cohort kill: '" + sig_text + "' is not a signal (try TERM, KILL, INT or 9)",
                       kKillUsage);
  std::vector<Tid> tids;
  for (const std::string& a : *rest) {
    auto t = parse_tid(a);
    if (!t) return usage_error("cohort kill: " + t.status().message(), kKillUsage);
    tids.push_back(t.value());
  }

  auto s = connect_tool(g);
  if (!s) return report_no_vm(g);
  int rc = kExitOk;
  for (Tid t : tids) {
    try {
      s->kill(t, sig);
    } catch (const Error& e) {
      // Go on with the others; one gone task should not shield the rest.
      std::fprintf(stderr, "cohort kill: %s: %s\n", format_tid(t).c_str(), e.what());
      rc = kExitFailure;
    }
  }
  return rc;
}

}  // namespace cohort::cli
