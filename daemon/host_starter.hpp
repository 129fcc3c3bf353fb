// daemon/host_starter.hpp — starting cohortd on other hosts (AddHosts).
//
// The master runs, for every host of an AddHosts request and all at once (never
// one after another), the host's launch agent (launch_agent.hpp) with
//   cohortd --join MASTER-ADDRESSES --vm NAME --daemonize [--heartbeat-timeout MS]
// The agent's stdin is a pipe that carries the VM's cookie and is then closed:
// the cookie is never on a command line or in an environment. Its stdout and
// stderr go to a file in the runtime directory. With --daemonize the agent's
// command returns once the new daemon has joined (ready line "host=N") or
// failed (its error on stderr). The request is answered when every agent has
// finished or passed the deadline (then it is killed); a host that failed is
// reported with the agent's own output and does not stop the others.
//
// Under srun (runs_in_foreground) the daemon is not daemonized: a Slurm step
// ends, and its processes are killed, when its task returns. That agent stays a
// child of the master for the daemon's whole life; the host counts as started
// when the ready line appears in the agent's output (polled on every tick), and
// the agent's later exit is only logged (the host's loss is membership's).
//
// Host names may be Slurm host lists ("n[1-3],gpu01"), expanded here: that is
// how `cohort start` inside an allocation passes SLURM_JOB_NODELIST. A name
// equal to this daemon's Slurm node name (SLURMD_NODENAME) is this host.
//
// Agents are children of the daemon: Daemon::reap_children hands their exits
// here through Cluster::child_exited. Single-threaded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/client_conn.hpp"
#include "proto/daemon_messages.hpp"

namespace cohort::daemon {

class Cluster;

class HostStarter {
 public:
  explicit HostStarter(Cluster& c) : c_(c) {}
  /// Start every host of `m`; the reply goes to `client` when all are done.
  void start(ClientConn& client, const proto::AddHosts& m);
  /// True when `pid` was one of our agents.
  bool child_exited(pid_t pid, int wait_status);
  /// Kill agents past their deadline.
  void on_tick();

 private:
  using Clock = std::chrono::steady_clock;
  struct Agent {
    pid_t pid = 0;
    std::string host;
    std::string output_file;
    std::size_t outcome = 0;       // index into the request's outcomes
    std::uint32_t request = 0;
    Clock::time_point deadline;
    bool killed = false;
    bool foreground = false;       // the agent lives as long as its daemon (srun)
    bool ready = false;            // foreground: the daemon joined; the reply has it
    bool hard_killed = false;      // foreground: SIGKILL after SIGTERM was not enough
  };
  struct Request {
    ConnId conn = 0;
    proto::AddHostsReply reply;
    std::size_t open = 0;
  };
  void finish(Agent& a, int wait_status);
  /// Foreground agents: has the daemon printed its ready line yet?
  void check_ready(Agent& a);
  void maybe_reply(std::uint32_t request);

  Cluster& c_;
  std::vector<Agent> agents_;
  std::vector<std::pair<std::uint32_t, Request>> requests_;
  std::uint32_t next_request_ = 1;
};

}  // namespace cohort::daemon
