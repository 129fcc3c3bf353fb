#include "base/netif.hpp"

namespace cohort {

bool is_host_only_interface(std::string_view name) noexcept {
  for (std::string_view p : {"docker", "virbr", "br-", "lxcbr", "lxdbr", "cni", "podman", "vboxnet"})
    if (name.substr(0, p.size()) == p) return true;
  return false;
}

}  // namespace cohort
