// `cohort hosts`: the VM's host table, as its master daemon keeps it.
#include <cstdio>

#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kHostsUsage =
    "usage: cohort hosts [--vm NAME]\n"
    "\n"
    "List the hosts of the VM: index (the high bits of every tid started there),\n"
    "host name, architecture, CPU count, tasks running, and the daemon's pid.\n";

int cmd_hosts(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false;
  Parser p("cohort hosts");
  add_global_options(p, g, &help);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kHostsUsage);
  if (help) return show_usage(kHostsUsage);
  if (!rest->empty())
    return usage_error("cohort hosts: unexpected argument '" + rest->front() + "'", kHostsUsage);

  auto s = connect_tool(g);
  if (!s) return report_no_vm(g);
  Table t({"INDEX", "NAME", "ARCH", "CPUS", "TASKS", "DAEMON-PID"},
          {true, false, false, true, true, true});
  for (const HostInfo& h : s->hosts())
    t.add({std::to_string(h.index), h.name, h.arch, std::to_string(h.ncpus),
           std::to_string(h.ntasks), std::to_string(h.daemon_pid)});
  t.print(stdout);
  return kExitOk;
}

}  // namespace cohort::cli
