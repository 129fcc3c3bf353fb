#include "daemon/hosts.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bit>
#include <cstdio>

namespace cohort::daemon {

Hosts::Hosts(std::uint32_t local_index, const std::string& socket_path, pid_t daemon_pid) {
  local_.index = local_index;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0')
    std::snprintf(name, sizeof name, "localhost");
  local_.name = name;
  local_.address = "unix:" + socket_path;
  local_.arch = arch();
  local_.ncpus = ncpus();
  local_.daemon_pid = daemon_pid;
}

bool Hosts::is_local(const std::string& name) const {
  if (name == local_.name || name == "localhost" || name == std::to_string(local_.index))
    return true;
  auto dot = local_.name.find('.');
  return dot != std::string::npos && name == local_.name.substr(0, dot);
}

void Hosts::set_topology(const Topology& t) {
  local_.packages = t.packages;
  local_.numa_nodes = t.numa_nodes;
  local_.cores = t.cores;
  local_.pus = t.pus;
  local_.topology_note = t.note;
}

std::vector<proto::HostInfo> Hosts::list(std::uint32_t local_tasks) const {
  proto::HostInfo h = local_;
  h.ntasks = local_tasks;
  return {h};
}

std::string Hosts::arch() {
  struct utsname u {};
  std::string machine = ::uname(&u) == 0 ? u.machine : "unknown";
  return machine + (std::endian::native == std::endian::little ? "-le" : "-be");
}

std::uint32_t Hosts::ncpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::uint32_t>(n);
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<std::uint32_t>(n) : 1;
}

}  // namespace cohort::daemon
