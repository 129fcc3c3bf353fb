#include "daemon/host_starter.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "base/env.hpp"
#include "base/fd.hpp"
#include "base/log.hpp"
#include "daemon/cluster.hpp"
#include "daemon/daemon.hpp"
#include "daemon/hostfile.hpp"
#include "daemon/launch_agent.hpp"

extern char** environ;

namespace cohort::daemon {

namespace {
constexpr const char* kLog = "daemon.hosts";

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "cohortd";
}

std::string read_tail(const std::string& path, std::size_t max) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > max) s = "..." + s.substr(s.size() - max);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// posix_spawn of the agent: stdin from `in`, stdout+stderr to `out_file`, own
// process group (so a deadline kills the whole agent, ssh and all).
Result<pid_t> spawn_agent(const std::vector<std::string>& argv, int in, const std::string& out_file) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&at, &none);  // the daemon blocks SIGCHLD/TERM for its signalfd
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &at, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) return errno_status(Errc::kBadProgram, "cannot run launch agent '" + argv[0] + "'", rc);
  return pid;
}

// Inside a Slurm step, the name Slurm gives this node (often also its host name).
bool is_this_slurm_node(const std::string& name) {
  const char* self = std::getenv("SLURMD_NODENAME");
  return self && *self && name == self;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// The index in a `cohortd ready host=N ...` line of `out`, or 0.
std::uint32_t ready_index(const std::string& out) {
  auto at = out.find("cohortd ready host=");
  if (at == std::string::npos) return 0;
  return static_cast<std::uint32_t>(std::strtoul(out.c_str() + at + 19, nullptr, 10));
}
}  // namespace

void HostStarter::start(ClientConn& client, const proto::AddHosts& m) {
  std::uint32_t rid = next_request_++;
  Request req;
  req.conn = client.id();
  req.reply.req = m.req;
  auto deadline = Clock::now() + std::chrono::milliseconds(std::max(1000, m.timeout_ms));
  Daemon& d = c_.daemon();
  std::vector<proto::HostStart> hosts = m.hosts;
  if (!m.hostfile.empty()) {
    auto specs = parse_hostfile(m.hostfile, m.hostfile_name);
    if (!specs.is_ok()) {
      req.reply.status.code = static_cast<std::uint16_t>(specs.status().code());
      req.reply.status.message = specs.status().message();
      d.conns().send(client, req.reply);
      return;
    }
    for (const HostSpec& h : *specs) hosts.push_back({h.name, h.agent, h.slots, h.wdir, h.path});
  }
  // Slurm host lists (SLURM_JOB_NODELIST from `cohort start` in an allocation):
  // one entry per node; a list that does not parse is reported as that host.
  std::vector<proto::HostStart> expanded;
  std::set<std::string> seen;
  for (const proto::HostStart& h : hosts) {
    auto names = h.name.find_first_of("[,") == std::string::npos
                     ? Result<std::vector<std::string>>(std::vector<std::string>{h.name})
                     : expand_host_list(h.name);
    if (!names.is_ok()) {
      proto::HostStartOutcome o;
      o.name = h.name;
      o.status.code = static_cast<std::uint16_t>(names.status().code());
      o.status.message = names.status().message();
      req.reply.hosts.push_back(o);
      continue;
    }
    for (const std::string& n : *names) {
      if (!seen.insert(n).second) continue;  // a node named twice is started once
      expanded.push_back(h);
      expanded.back().name = n;
    }
  }
  for (const proto::HostStart& h : expanded) {
    proto::HostStartOutcome o;
    o.name = h.name;
    std::size_t slot = req.reply.hosts.size();
    req.reply.hosts.push_back(o);
    auto fail = [&](const Status& s) {
      req.reply.hosts[slot].status.code = static_cast<std::uint16_t>(s.code());
      req.reply.hosts[slot].status.message = s.message();
      COHORT_LOG_WARN(kLog) << "cannot start a daemon on " << h.name << ": " << s.message();
    };
    std::uint32_t have = is_this_slurm_node(h.name) ? c_.self_ : c_.find_host(h.name);
    if (have) {
      // Already in the VM (typically the master's own line of the hostfile):
      // its options apply from now on when it is this host.
      req.reply.hosts[slot].index = have;
      if (have == c_.self_) {
        if (h.slots > 0) c_.hosts_[have].slots = static_cast<std::uint32_t>(h.slots);
        if (!h.wdir.empty() || !h.path.empty()) d.spawner().set_host_defaults(h.wdir, h.path);
      }
      continue;
    }
    std::string spec = !h.agent.empty() ? h.agent : m.agent;
    Result<LaunchAgent> agent = spec.empty() ? Result<LaunchAgent>(default_launch_agent())
                                             : parse_launch_agent(spec);
    if (!agent.is_ok()) {
      fail(agent.status());
      continue;
    }
    // Under srun the daemon stays in the foreground: the step lives as long as it.
    bool foreground = runs_in_foreground(*agent);
    std::vector<std::string> cmd = {self_exe(), "--join", c_.address(), "--vm", d.vm_name()};
    if (!foreground) cmd.push_back("--daemonize");
    cmd.insert(cmd.end(), {"--heartbeat-timeout", std::to_string(c_.opts_.heartbeat_timeout.count())});
    if (h.slots > 0) cmd.insert(cmd.end(), {"--slots", std::to_string(h.slots)});
    if (!h.wdir.empty()) cmd.insert(cmd.end(), {"--wdir", h.wdir});
    if (!h.path.empty()) cmd.insert(cmd.end(), {"--path", h.path});
    auto argv = launch_argv(*agent, h.name, cmd);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      fail(errno_status(Errc::kIoError, "pipe", errno));
      continue;
    }
    UniqueFd rd(p[0]), wr(p[1]);
    std::string out_file = d.runtime_dir() + "/agent-" + h.name + ".out";
    auto pid = spawn_agent(argv, rd.get(), out_file);
    rd.reset();
    if (!pid.is_ok()) {
      fail(pid.status());
      continue;
    }
    // The cookie goes down the agent's stdin, in hex: its raw bytes may hold a
    // newline (a pipe buffer takes the 65 bytes at once).
    static const char* kHex = "0123456789abcdef";
    std::string line;
    for (unsigned char ch : d.cookie()) line += {kHex[ch >> 4], kHex[ch & 15]};
    line += "\n";
    (void)write_all(wr.get(), line.data(), line.size());
    wr.reset();
    COHORT_LOG_INFO(kLog) << "starting a daemon on " << h.name << " through " << agent->spec
                          << " (pid " << *pid << "): " << join_words(argv);
    agents_.push_back({*pid, h.name, out_file, slot, rid, deadline, false, foreground, false, false});
    ++req.open;
  }
  requests_.emplace_back(rid, std::move(req));
  maybe_reply(rid);
}

bool HostStarter::child_exited(pid_t pid, int wait_status) {
  auto it = std::find_if(agents_.begin(), agents_.end(), [pid](const Agent& a) { return a.pid == pid; });
  if (it == agents_.end()) return false;
  Agent a = *it;
  agents_.erase(it);
  if (a.ready) {
    // A foreground agent (srun) whose daemon had joined: that daemon has ended.
    std::string out = read_tail(a.output_file, 1000);
    ::unlink(a.output_file.c_str());
    COHORT_LOG_INFO(kLog) << "the launch agent of the daemon on " << a.host << " (pid " << a.pid
                          << ") ended: "
                          << (WIFEXITED(wait_status)
                                  ? "status " + std::to_string(WEXITSTATUS(wait_status))
                                  : "signal " + std::to_string(WTERMSIG(wait_status)))
                          << (out.empty() ? "" : "; it said: " + out);
    return true;
  }
  finish(a, wait_status);
  return true;
}

void HostStarter::check_ready(Agent& a) {
  std::uint32_t index = ready_index(read_tail(a.output_file, 4000));
  if (index == 0 || !c_.host_known(index)) return;
  a.ready = true;
  auto rit = std::find_if(requests_.begin(), requests_.end(),
                          [&](const auto& r) { return r.first == a.request; });
  if (rit == requests_.end()) return;
  rit->second.reply.hosts[a.outcome].index = index;
  --rit->second.open;
  maybe_reply(a.request);
}

void HostStarter::finish(Agent& a, int st) {
  auto rit = std::find_if(requests_.begin(), requests_.end(),
                          [&](const auto& r) { return r.first == a.request; });
  if (rit == requests_.end()) return;
  Request& req = rit->second;
  proto::HostStartOutcome& o = req.reply.hosts[a.outcome];
  std::string out = read_tail(a.output_file, 4000);
  ::unlink(a.output_file.c_str());
  // The ready line of `cohortd --daemonize` names the index it was given.
  std::uint32_t index = ready_index(out);
  bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && index != 0 && c_.host_known(index);
  if (ok) {
    o.index = index;
  } else {
    std::string how = a.killed ? "did not join before the deadline"
                      : WIFEXITED(st) ? "exited with status " + std::to_string(WEXITSTATUS(st))
                                      : "was killed by signal " + std::to_string(WTERMSIG(st));
    o.status.code = static_cast<std::uint16_t>(a.killed ? Errc::kTimeout : Errc::kHostLost);
    o.status.message = "the launch agent for " + a.host + " " + how +
                       (out.empty() ? " and printed nothing" : ": " + out);
    COHORT_LOG_WARN(kLog) << o.status.message;
  }
  --req.open;
  maybe_reply(a.request);
}

void HostStarter::maybe_reply(std::uint32_t request) {
  auto rit = std::find_if(requests_.begin(), requests_.end(),
                          [&](const auto& r) { return r.first == request; });
  if (rit == requests_.end() || rit->second.open > 0) return;
  c_.daemon().conns().send(rit->second.conn, rit->second.reply);
  requests_.erase(rit);
}

void HostStarter::on_tick() {
  auto now = Clock::now();
  for (Agent& a : agents_) {
    if (a.foreground && !a.ready && !a.killed) check_ready(a);
    if (!a.ready && !a.killed && now > a.deadline) {
      a.killed = true;
      // srun cancels its step on SIGTERM (SIGKILL would leave the step to
      // Slurm's own time-outs); anything else, and an srun that lingers, is killed.
      ::kill(-a.pid, a.foreground ? SIGTERM : SIGKILL);  // reaped, reported as a timeout
    } else if (a.killed && a.foreground && !a.hard_killed &&
               now > a.deadline + std::chrono::seconds(5)) {
      a.hard_killed = true;
      ::kill(-a.pid, SIGKILL);
    }
  }
}

}  // namespace cohort::daemon
