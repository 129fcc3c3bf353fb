// `cohort add` and `cohort remove`: hosts join and leave a running VM.
#include <cstdio>

#include "launcher/cli_args.hpp"
#include "launcher/host_admin.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kAddUsage =
    "usage: cohort add [--vm NAME] [--hostfile FILE] [--agent TEMPLATE] [--timeout S] HOST...\n"
    "\n"
    "Start a daemon on each HOST (at once, through the launch agent; see 'cohort\n"
    "start --help') and add it to the running VM. Jobs already running can spawn\n"
    "onto the new hosts. Hosts that fail are reported with the agent's error.\n";

const char* const kRemoveUsage =
    "usage: cohort remove [--vm NAME] [--drain] [--timeout S] HOST...\n"
    "\n"
    "Remove hosts from the running VM: their tasks are killed (their watchers are\n"
    "notified), or with --drain allowed to finish first, then their daemons stop.\n";

int cmd_add(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false;
  Parser p("cohort add");
  add_global_options(p, g, &help);
  MoreHosts more;
  p.option({"--hostfile"}, &more.hostfile);
  p.option({"--agent"}, &more.agent);
  p.option({"--timeout"}, &more.timeout);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kAddUsage);
  if (help) return show_usage(kAddUsage);
  more.hosts = *rest;
  if (Status s = more.check(); !s.is_ok()) return usage_error("cohort add: " + s.message(), kAddUsage);
  if (more.empty()) return usage_error("cohort add: which hosts?", kAddUsage);
  if (!connect_tool(g)) return report_no_vm(g);
  return more.start(g, "cohort add");
}

int cmd_remove(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, drain = false;
  std::string timeout = "60";
  Parser p("cohort remove");
  add_global_options(p, g, &help);
  p.flag({"--drain"}, &drain);
  p.option({"--timeout"}, &timeout);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kRemoveUsage);
  if (help) return show_usage(kRemoveUsage);
  if (rest->empty()) return usage_error("cohort remove: which hosts?", kRemoveUsage);
  int t = std::atoi(timeout.c_str());
  if (t <= 0) return usage_error("cohort remove: --timeout wants seconds", kRemoveUsage);
  if (!connect_tool(g)) return report_no_vm(g);
  proto::RemoveHosts req;
  req.names = *rest;
  req.drain = drain;
  Status s = remove_hosts(vm_dir_of(g), req, std::chrono::seconds(t));
  if (!s.is_ok()) {
    std::fprintf(stderr, "cohort remove: %s\n", s.message().c_str());
    return kExitFailure;
  }
  for (const auto& h : *rest) std::printf("host %s removed\n", h.c_str());
  return kExitOk;
}

}  // namespace cohort::cli
