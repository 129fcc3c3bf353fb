// daemon/hosts.hpp — host membership: which hosts form the VM, and this one.
//
// For now a VM is one host: this daemon, index 1. The multi-host version will
// keep the table the master broadcasts here (numbered events, applied in the
// same order by every daemon); the rest of the daemon already asks this unit,
// not a constant, for the local index, for names and for the host list.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/topology.hpp"
#include "proto/messages.hpp"

namespace cohort::daemon {

class Hosts {
 public:
  /// Describe this host: its name (gethostname), "unix:<socket>" as its
  /// address, its architecture ("x86_64-le") and usable CPUs.
  Hosts(std::uint32_t local_index, const std::string& socket_path, pid_t daemon_pid);

  std::uint32_t local_index() const noexcept { return local_.index; }
  const std::string& local_name() const noexcept { return local_.name; }
  /// True when `name` (a Spawn's host field) names this host: its name, its
  /// short name, "localhost", or its index in decimal.
  bool is_local(const std::string& name) const;
  /// True for a host index that is part of the VM.
  bool known(std::uint32_t index) const noexcept { return index == local_.index; }

  /// This host's topology, for HostInfo (`cohort hosts -v`).
  void set_topology(const Topology& t);

  /// Every host, with `local_tasks` as this host's task count.
  std::vector<proto::HostInfo> list(std::uint32_t local_tasks) const;

  /// "x86_64-le": uname's machine and the byte order.
  static std::string arch();
  /// CPUs this process may run on (its affinity mask), at least 1.
  static std::uint32_t ncpus();

 private:
  proto::HostInfo local_;
};

}  // namespace cohort::daemon
