// `cohort start`: boot a persistent VM on this host with `cohortd --daemonize`.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "base/env.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/host_admin.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kStartUsage =
    "usage: cohort start [--vm NAME] [--hostfile FILE] [--agent TEMPLATE] [--timeout S] [HOST...]\n"
    "\n"
    "Start a persistent VM on this host: a cohortd daemon that stays in the\n"
    "background until 'cohort halt'. Later cohort commands and programs find it\n"
    "through its runtime directory (per-user, named after the VM, or $COHORT_DIR).\n"
    "If the VM is already running, says so and succeeds.\n"
    "\n"
    "With HOSTs or a hostfile, this daemon becomes the master and starts a daemon\n"
    "on every other host at once, through the launch agent: ssh (the default),\n"
    "srun inside a Slurm allocation, or --agent 'TEMPLATE' with {host} in it\n"
    "(e.g. 'ip netns exec {host}'); a hostfile line's agent= overrides it. A host\n"
    "that does not join within --timeout (default 30 s) is reported with the\n"
    "agent's own error; the VM goes on without it (exit status 1).\n"
    "\n"
    "Inside a Slurm allocation (SLURM_JOB_NODELIST set) with no HOST and no\n"
    "hostfile, the hosts are the allocation's nodes: a daemon is started on every\n"
    "one of them (but this one) with srun, and stays as a step of the job until\n"
    "'cohort halt'. 'cohort start localhost' starts only this host.\n"
    "\n"
    "The daemon is $COHORT_DAEMON if set, else cohortd next to this cohort executable.\n";

namespace {

std::string vm_label(const Globals& g) { return "'" + env::vm_name(g.vm) + "'"; }

// Say where a running VM is, from its own host table.
void describe_running(Session& s, const Globals& g) {
  int pid = 0;
  for (const HostInfo& h : s.hosts())
    if (h.index == s.host()) pid = h.daemon_pid;
  std::printf("cohort VM %s is already running (%s, daemon pid %d)\n", vm_label(g).c_str(),
              vm_dir_of(g).c_str(), pid);
}

}  // namespace

int cmd_start(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false;
  Parser p("cohort start");
  add_global_options(p, g, &help);
  std::string hostfile, agent, timeout;
  p.option({"--hostfile"}, &hostfile);
  p.option({"--agent"}, &agent);
  p.option({"--timeout"}, &timeout);
  auto rest = p.parse(args);
  if (!rest) return usage_error(rest.status().message(), kStartUsage);
  if (help) return show_usage(kStartUsage);
  MoreHosts more;
  more.hosts = *rest;
  const char* nodelist = std::getenv("SLURM_JOB_NODELIST");
  if (more.hosts.empty() && hostfile.empty() && nodelist && *nodelist) {
    // The daemon expands the Slurm host list and skips its own node.
    more.hosts.push_back(nodelist);
    const char* job = std::getenv("SLURM_JOB_ID");
    std::printf("cohort start: inside Slurm job %s: starting the VM on its nodes %s\n",
                job ? job : "?", nodelist);
  }
  more.hostfile = hostfile;
  more.agent = agent;
  more.timeout = timeout;
  if (Status s = more.check(); !s.is_ok())
    return usage_error("cohort start: " + s.message(), kStartUsage);

  std::string connect_error;
  try {
    if (auto s = connect_tool(g)) {
      describe_running(*s, g);
      return more.start(g, "cohort start");
    }
  } catch (const Error& e) {
    // Something is there but we cannot use it; let the daemon have its say too.
    connect_error = e.what();
  }

  auto daemon = daemon_path();
  if (!daemon) {
    std::fprintf(stderr, "cohort start: %s\n", daemon.status().message().c_str());
    return kExitFailure;
  }
  std::vector<std::string> argv = {daemon.value(), "--daemonize"};
  if (!g.vm.empty()) argv.insert(argv.end(), {"--vm", g.vm});

  // Everything the daemon says goes through one pipe that we read with a deadline:
  // the daemonized child may keep the pipe open long after its parent has exited.
  ChildOptions o;
  o.merge_stderr = true;
  o.new_process_group = true;
  auto child = start_child(argv, o);
  if (!child) {
    std::fprintf(stderr, "cohort start: %s\n", child.status().message().c_str());
    return kExitFailure;
  }
  LineReader reader(child->out.get());
  std::vector<std::string> other_lines;
  std::optional<ReadyLine> ready;
  std::optional<int> wait_status;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!wait_status) {
    auto line = reader.next(std::chrono::milliseconds(100));
    if (line) {
      if (auto r = parse_ready_line(line.value())) ready = r.value();
      else other_lines.push_back(line.value());
      continue;
    }
    if (auto st = wait_child(child->pid, std::chrono::milliseconds(0))) {
      wait_status = st.value();
      // The parent is gone; what it wrote is in the pipe already.
      std::string tail = reader.drain();
      std::size_t pos = 0;
      while (pos < tail.size()) {
        auto nl = tail.find('\n', pos);
        std::string l = tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? tail.size() : nl + 1;
        if (auto r = parse_ready_line(l)) ready = r.value();
        else if (!l.empty()) other_lines.push_back(l);
      }
    } else if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "cohort start: %s did not report ready within 30 s; see %s\n",
                   daemon->c_str(), env::path_in(vm_dir_of(g), env::kLogName).c_str());
      return kExitFailure;
    }
  }

  bool ok = WIFEXITED(*wait_status) && WEXITSTATUS(*wait_status) == 0 && ready;
  for (const std::string& l : other_lines) std::fprintf(stderr, "%s\n", l.c_str());
  if (!ok) {
    std::fprintf(stderr, "cohort start: the daemon did not start (%s)%s%s\n",
                 describe_wait_status(*wait_status).c_str(),
                 connect_error.empty() ? "" : "; connecting to the VM said: ",
                 connect_error.c_str());
    return kExitFailure;
  }
  std::printf("cohort VM %s started: host %u, daemon pid %d, socket %s\n", vm_label(g).c_str(),
              ready->host, static_cast<int>(ready->pid), ready->socket.c_str());
  std::string vm_opt = g.vm.empty() ? "" : " --vm " + g.vm;
  std::printf("run jobs with 'cohort%s run -n N PROGRAM'; stop it with 'cohort%s halt'\n",
              vm_opt.c_str(), vm_opt.c_str());
  return more.start(g, "cohort start");
}

}  // namespace cohort::cli
