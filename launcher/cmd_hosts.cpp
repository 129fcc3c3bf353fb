// `cohort hosts`: the VM's host table, as its master daemon keeps it.
#include <cstdio>

#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {
namespace {

std::string count(unsigned n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

/// "1 package, 1 NUMA node, 2 cores, 2 PUs", as the daemon's Topology::summary().
std::string topology_text(const HostInfo& h) {
  if (h.cores == 0) return "unknown";
  return count(h.packages, "package", "packages") + ", " +
         count(h.numa_nodes, "NUMA node", "NUMA nodes") + ", " + count(h.cores, "core", "cores") +
         ", " + count(h.pus, "PU", "PUs");
}

}  // namespace

const char* const kHostsUsage =
    "usage: cohort hosts [--vm NAME] [-v]\n"
    "\n"
    "List the hosts of the VM: index (the high bits of every tid started there),\n"
    "host name, architecture, CPU count, tasks running, and the daemon's pid.\n"
    "\n"
    "  -v, --verbose   also each host's topology as hwloc sees it (packages, NUMA\n"
    "                  nodes, cores, PUs), which 'cohort run --bind-to' binds on,\n"
    "                  and why tasks there are not bound, if they are not\n";

int cmd_hosts(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, verbose = false;
  Parser p("cohort hosts");
  add_global_options(p, g, &help);
  p.flag({"-v", "--verbose"}, &verbose);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kHostsUsage);
  if (help) return show_usage(kHostsUsage);
  if (!rest->empty())
    return usage_error("cohort hosts: unexpected argument '" + rest->front() + "'", kHostsUsage);

  auto s = connect_tool(g);
  if (!s) return report_no_vm(g);
  std::vector<std::string> header = {"INDEX", "NAME", "ARCH", "CPUS", "SLOTS", "TASKS", "DAEMON-PID"};
  if (verbose) header.push_back("TOPOLOGY");
  Table t(header, {true, false, false, true, true, true, true, false});
  for (const HostInfo& h : s->hosts()) {
    std::vector<std::string> row = {std::to_string(h.index), h.name, h.arch,
                                    std::to_string(h.ncpus), std::to_string(h.slots),
                                    std::to_string(h.ntasks), std::to_string(h.daemon_pid)};
    if (verbose) {
      std::string topo = topology_text(h);
      if (!h.topology_note.empty()) topo += " (" + h.topology_note + ")";
      row.push_back(std::move(topo));
    }
    t.add(std::move(row));
  }
  t.print(stdout);
  return kExitOk;
}

}  // namespace cohort::cli
