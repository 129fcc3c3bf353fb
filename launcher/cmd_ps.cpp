// `cohort ps`: the tasks running in the VM, one line each; with -t, the
// transport each task uses to each of its peers, and why.
#include <cstdio>
#include <map>

#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {
namespace {

// One line per (task, peer): the task's own choice for its messages to the peer.
int print_transports(Session& s, const std::vector<TaskInfo>& tasks, long long job) {
  std::map<Tid, const TaskInfo*> by_tid;
  for (const TaskInfo& ti : tasks)
    if (job < 0 || ti.job == static_cast<std::uint32_t>(job)) by_tid[ti.tid] = &ti;
  Table t({"TID", "PEER", "TRANSPORT", "REASON"});
  for (const TransportChoice& c : s.transport_choices()) {
    if (!by_tid.count(c.task)) continue;
    t.add({format_tid(c.task), format_tid(c.peer), c.transport, c.reason});
  }
  t.print(stdout);
  return kExitOk;
}

}  // namespace

const char* const kPsUsage =
    "usage: cohort ps [--vm NAME] [-j JOB] [-t]\n"
    "\n"
    "List the tasks running in the VM: task id (t<hex>, as PVM prints it; 'cohort\n"
    "kill' takes it as is), parent task, host, pid, job and rank in the job, and\n"
    "the program. Exited tasks are not listed.\n"
    "\n"
    "  -j, --job JOB      only the tasks of this job\n"
    "  -t, --transports   for each task, each peer it sends to (or that connected\n"
    "                     to it), the transport it uses and why: \"same host\",\n"
    "                     \"different host\", \"forced by COHORT_TRANSPORTS=tcp\", ...\n";

int cmd_ps(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, transports = false;
  std::string job_text;
  Parser p("cohort ps");
  add_global_options(p, g, &help);
  p.option({"-j", "--job"}, &job_text);
  p.flag({"-t", "--transports"}, &transports);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kPsUsage);
  if (help) return show_usage(kPsUsage);
  if (!rest->empty())
    return usage_error("cohort ps: unexpected argument '" + rest->front() + "'", kPsUsage);
  long long job = -1;
  if (!job_text.empty()) {
    auto j = parse_int(job_text, "cohort ps -j", 0, 0xffffffffll);
    if (!j) return usage_error(j.status().message(), kPsUsage);
    job = j.value();
  }

  auto s = connect_tool(g);
  if (!s) return report_no_vm(g);
  std::map<std::uint32_t, std::string> host_names;
  for (const HostInfo& h : s->hosts()) host_names[h.index] = h.name;

  std::vector<TaskInfo> tasks = s->tasks();
  if (transports) return print_transports(*s, tasks, job);
  Table t({"TID", "PARENT", "HOST", "PID", "JOB", "RANK", "COMMAND"},
          {false, false, false, true, true, true, false});
  for (const TaskInfo& ti : tasks) {
    if (job >= 0 && ti.job != static_cast<std::uint32_t>(job)) continue;
    auto hn = host_names.find(ti.host);
    t.add({format_tid(ti.tid), ti.parent == kNoTid ? "-" : format_tid(ti.parent),
           hn != host_names.end() ? hn->second : std::to_string(ti.host), std::to_string(ti.pid),
           std::to_string(ti.job), std::to_string(ti.rank), ti.program});
  }
  t.print(stdout);
  return kExitOk;
}

}  // namespace cohort::cli
