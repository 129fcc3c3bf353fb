// Reading the topology through hwloc, when the daemon is built with it
// (COHORT_HAVE_HWLOC is defined for this target only; see CMakeLists.txt).
#include "daemon/topology.hpp"

#include <cerrno>
#include <cstdlib>

#ifdef COHORT_HAVE_HWLOC
#include <hwloc.h>
#endif

namespace cohort::daemon {
namespace {

std::string count(std::uint32_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

#ifdef COHORT_HAVE_HWLOC

std::vector<unsigned> cpus_of(hwloc_const_cpuset_t set) {
  std::vector<unsigned> out;
  if (set == nullptr) return out;
  for (int i = hwloc_bitmap_first(set); i >= 0; i = hwloc_bitmap_next(set, i))
    out.push_back(static_cast<unsigned>(i));
  return out;
}

std::vector<std::vector<unsigned>> cpus_by(hwloc_topology_t topo, hwloc_obj_type_t type) {
  std::vector<std::vector<unsigned>> out;
  const int n = hwloc_get_nbobjs_by_type(topo, type);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, static_cast<unsigned>(i));
    if (o != nullptr) out.push_back(cpus_of(o->cpuset));
  }
  return out;
}

/// Initialise, let `configure` choose the source (0 = fine), load, read.
template <class Configure>
Result<Topology> load(Configure configure, const std::string& what) {
  hwloc_topology_t topo = nullptr;
  if (hwloc_topology_init(&topo) != 0)
    return errno_status(Errc::kInternal, "hwloc_topology_init", errno);
  struct Guard {
    hwloc_topology_t t;
    ~Guard() { hwloc_topology_destroy(t); }
  } guard{topo};
  if (configure(topo) != 0)
    return Status(Errc::kInvalidArgument, "hwloc cannot read " + what);
  if (hwloc_topology_load(topo) != 0)
    return errno_status(Errc::kInternal, "hwloc_topology_load (" + what + ")", errno);

  Topology t;
  t.packages = static_cast<std::uint32_t>(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE));
  t.pus = static_cast<std::uint32_t>(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU));
  t.core_cpus = cpus_by(topo, HWLOC_OBJ_CORE);
  // Some virtual machines report PUs without cores: then each PU is a core.
  if (t.core_cpus.empty()) t.core_cpus = cpus_by(topo, HWLOC_OBJ_PU);
  t.cores = static_cast<std::uint32_t>(t.core_cpus.size());
  t.numa_cpus = cpus_by(topo, HWLOC_OBJ_NUMANODE);
  t.numa_nodes = static_cast<std::uint32_t>(t.numa_cpus.size());
  t.this_system = hwloc_topology_is_thissystem(topo) != 0;
  if (!t.this_system) {
    for (const char* var : {"HWLOC_XMLFILE", "HWLOC_SYNTHETIC"})
      if (t.note.empty() && std::getenv(var) != nullptr)
        t.note = std::string("synthetic topology (") + var + "): tasks are not bound";
    if (t.note.empty()) t.note = what + " is not this machine: tasks are not bound";
  }
  return t;
}

#endif  // COHORT_HAVE_HWLOC

}  // namespace

std::string Topology::summary() const {
  if (!known()) return "unknown";
  return count(packages, "package", "packages") + ", " +
         count(numa_nodes, "NUMA node", "NUMA nodes") + ", " + count(cores, "core", "cores") +
         ", " + count(pus, "PU", "PUs");
}

bool Topology::hwloc_available() noexcept {
#ifdef COHORT_HAVE_HWLOC
  return true;
#else
  return false;
#endif
}

Topology Topology::detect() {
#ifdef COHORT_HAVE_HWLOC
  // hwloc_topology_load() itself honours HWLOC_XMLFILE and HWLOC_SYNTHETIC.
  auto t = load([](hwloc_topology_t) { return 0; }, "this host");
  if (t.is_ok()) return std::move(t).value();
  Topology unknown;
  unknown.note = "hwloc failed: " + t.status().message() + "; tasks are not bound";
  return unknown;
#else
  Topology unknown;
  unknown.note = "built without hwloc: tasks are not bound";
  return unknown;
#endif
}

Result<Topology> Topology::synthetic(const std::string& description) {
#ifdef COHORT_HAVE_HWLOC
  return load(
      [&](hwloc_topology_t topo) {
        return hwloc_topology_set_synthetic(topo, description.c_str());
      },
      "synthetic topology '" + description + "'");
#else
  return Status(Errc::kUnsupported, "built without hwloc: no synthetic topology '" +
                                        description + "'");
#endif
}

Result<Topology> Topology::from_xml(const std::string& path) {
#ifdef COHORT_HAVE_HWLOC
  return load([&](hwloc_topology_t topo) { return hwloc_topology_set_xml(topo, path.c_str()); },
              "XML topology " + path);
#else
  return Status(Errc::kUnsupported, "built without hwloc: cannot read " + path);
#endif
}

}  // namespace cohort::daemon
