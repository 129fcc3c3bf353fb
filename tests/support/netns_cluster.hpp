// tests/support/netns_cluster.hpp — an emulated cluster of hosts on one machine.
//
// Each host is a network namespace with its own hostname (UTS namespace), SysV
// IPC namespace, /dev/shm and /etc/hosts, attached by a veth pair to a Linux
// bridge that lives in a namespace of its own. Nothing is added to the root
// network namespace except one "unreachable" route for the cluster's subnet,
// so that a stray connect from the root namespace fails locally instead of
// leaving the machine (the subnet is not local there).
//
// Every cluster gets a prefix and a /24 subnet of its own, derived from the
// test process's pid, so concurrent tests (ctest -j) never share hosts.
// Needs root, iproute2, util-linux (nsenter/unshare) and, for partitions and
// loss, nftables. create() answers kUnsupported with the reason when any of
// that is missing, so tests can GTEST_SKIP with a message.
//
//   auto c = cohort::testing::NetnsCluster::create(3);
//   if (!c.is_ok()) GTEST_SKIP() << c.status().to_string();
//   auto r = (*c)->run(1, {"hostname"});            // "h1"
//   pid_t d = (*c)->spawn(2, {bin("cohortd"), "--dir", dir}, log_path);
//   (*c)->partition(1, 2); ... (*c)->heal();
//
// The destructor kills every process in every host, deletes the namespaces,
// the bind-mount anchors, the per-host /dev/shm directories and the route.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "tests/support/daemon_harness.hpp"

namespace cohort::testing {

class NetnsCluster {
 public:
  /// Hosts h1..hN. kUnsupported (with the reason) when this machine cannot.
  static Result<std::unique_ptr<NetnsCluster>> create(int hosts);
  ~NetnsCluster();
  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;

  /// "h3" — also the host's hostname and its name in every host's /etc/hosts.
  static std::string host_name(int i) { return "h" + std::to_string(i); }
  /// The host's address on the cluster network, e.g. "10.213.41.13".
  std::string address(int i) const;
  const std::string& prefix() const { return prefix_; }
  /// Hosts that exist now, ascending.
  std::vector<int> hosts() const;

  /// The argv prefix that runs a command inside host i (hostname, IPC,
  /// network, /dev/shm and /etc/hosts of that host). A launch agent template
  /// for cohort is this prefix joined with spaces (see agent_template()).
  std::vector<std::string> exec_prefix(int i) const;
  /// `exec_prefix` of a host named by `{host}`, for `--agent 'TEMPLATE'`: the
  /// helper script tests/netns/netns_exec.sh with this cluster's prefix.
  std::string agent_template() const;

  /// Run argv inside host i to completion (stdout/stderr captured, deadline).
  Result<ProgramResult> run(int i, const std::vector<std::string>& argv,
                            std::chrono::milliseconds deadline = std::chrono::seconds(30)) const;
  /// Start argv inside host i in a new session, output to `log`; returns its pid.
  Result<pid_t> spawn(int i, const std::vector<std::string>& argv, const std::string& log) const;

  Status add_host(int i);
  Status remove_host(int i);
  /// SIGKILL every process living in host i (a crashed machine).
  Status kill_host(int i);
  /// Take host i's link down / up at the bridge (a dead cable; noticed only by timeouts).
  Status fail_link(int i);
  Status recover_link(int i);
  /// Drop every frame between hosts a and b (nftables on the bridge).
  Status partition(int a, int b);
  /// Drop `percent`% of the frames to and from host i.
  Status loss(int i, int percent);
  /// Remove every partition and loss rule.
  Status heal();

 private:
  NetnsCluster() = default;
  std::string ns(int i) const { return prefix_ + "-h" + std::to_string(i); }
  std::string bridge_ns() const { return prefix_ + "-br"; }
  std::string anchor(int i, const char* kind) const;
  Status write_hosts_files() const;
  Status ensure_chaos_table();

  std::string prefix_;   // e.g. "cht4821"
  std::string subnet_;   // e.g. "10.213.41"
  std::string run_dir_;  // /run/<prefix>: namespace anchors and hosts files
  std::vector<int> hosts_;
  bool route_added_ = false;
  bool chaos_ = false;
  bool devshm_bound_ = false;  // run_dir_/devshm is a bind of the root /dev/shm
};

/// Where tests/netns/netns_exec.sh is (the source tree; COHORT_SOURCE_DIR).
std::string netns_exec_script();

}  // namespace cohort::testing
