// launcher/host_admin.hpp — host administration requests for `cohort start
// --hostfile`, `cohort add` and `cohort remove`.
//
// These requests (proto/daemon_messages.hpp: AddHosts, RemoveHosts) are for the
// `cohort` tool only, so they are sent over a short-lived connection of their
// own to the local (master) daemon: Hello as a tool with the VM's cookie,
// one request, one reply. The client library's Session has no call for them;
// they are not part of the programming interface.
//
//   auto r = add_hosts(vm_dir, request, std::chrono::seconds(60));
//   for (const auto& h : r->hosts) ...     // index, or the agent's error
#pragma once

#include <chrono>
#include <string>

#include <vector>

#include "base/status.hpp"
#include "launcher/commands.hpp"
#include "proto/daemon_messages.hpp"

namespace cohort::cli {

/// Send AddHosts to the daemon of the VM in `dir` and wait for every host.
Result<proto::AddHostsReply> add_hosts(const std::string& dir, proto::AddHosts request,
                                       std::chrono::milliseconds deadline);
/// Send RemoveHosts and wait until those hosts are gone.
Status remove_hosts(const std::string& dir, proto::RemoveHosts request,
                    std::chrono::milliseconds deadline);

/// Print the outcome of an AddHosts: one line per host that failed (to
/// stderr, with the agent's own output). Returns how many failed.
int report_added(const proto::AddHostsReply& r, const char* command);

/// The hosts that `cohort start` and `cohort add` are asked to start: names
/// on the command line and/or a hostfile, a default agent and a deadline.
struct MoreHosts {
  std::vector<std::string> hosts;
  std::string hostfile;
  std::string agent;
  std::string timeout;                // seconds, as typed
  /// Reads the hostfile and checks the timeout (the daemon checks the rest).
  Status check();
  bool empty() const { return hosts.empty() && hostfile.empty(); }
  /// Ask the VM of `g` to start them; prints the outcome. Exit status.
  int start(const Globals& g, const char* command) const;

 private:
  std::string hostfile_text_;
  int timeout_s_ = 30;
};

}  // namespace cohort::cli
