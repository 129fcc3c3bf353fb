// daemon/topology.hpp — what this host's processors look like: packages, NUMA
// nodes, cores and processing units (PUs, hardware threads), as hwloc sees them.
//
// The daemon reads it once at start-up for two uses: planning where spawned
// tasks are bound (binding.hpp) and `cohort hosts -v` ("1 package, 1 NUMA
// node, 2 cores, 2 PUs", carried in proto::HostInfo).
//
// hwloc's environment is honoured: with HWLOC_XMLFILE (or HWLOC_SYNTHETIC) the
// topology is read from there, which is how multi-package and multi-NUMA
// layouts are tested on a small machine. Such a topology does not describe
// this machine (this_system is false): it can be planned on but its CPUs are
// never bound to — they may not exist.
//
// Built without hwloc (COHORT_WITH_HWLOC=OFF or not found) detect() returns an
// unknown topology (all counts 0) whose note says so; the daemon then binds
// nothing. Plain data otherwise: no hwloc type appears here, so tests and the
// planner need no hwloc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.hpp"

namespace cohort::daemon {

struct Topology {
  std::uint32_t packages = 0;
  std::uint32_t numa_nodes = 0;
  std::uint32_t cores = 0;
  std::uint32_t pus = 0;
  /// For each core (hwloc's logical order), the OS indexes of its PUs — what
  /// sched_setaffinity() takes. A machine that reports no cores has one per PU.
  std::vector<std::vector<unsigned>> core_cpus;
  /// For each NUMA node (logical order), the OS indexes of its PUs.
  std::vector<std::vector<unsigned>> numa_cpus;
  /// True when this describes the machine we run on, so its CPUs may be bound.
  bool this_system = false;
  /// Empty, or why tasks are not bound here ("built without hwloc",
  /// "synthetic topology (HWLOC_XMLFILE)").
  std::string note;

  bool known() const noexcept { return cores > 0; }
  /// "1 package, 1 NUMA node, 2 cores, 2 PUs", or "unknown" when not known().
  std::string summary() const;

  /// Whether this daemon was built with hwloc.
  static bool hwloc_available() noexcept;
  /// This host (or what HWLOC_XMLFILE / HWLOC_SYNTHETIC describe instead).
  /// Never fails: an hwloc error gives an unknown topology whose note says why.
  static Topology detect();
  /// An hwloc synthetic description ("pack:2 core:2 pu:1"), for tests;
  /// kUnsupported without hwloc, kInvalidArgument for a bad description.
  static Result<Topology> synthetic(const std::string& description);
  /// An XML file as `lstopo file.xml` writes it, for tests.
  static Result<Topology> from_xml(const std::string& path);
};

}  // namespace cohort::daemon
