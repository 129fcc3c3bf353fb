#pragma once
// Network interfaces a cohort address may name. Shared by the daemon (the
// address other daemons dial) and the tcp transport (the addresses tasks
// publish to each other).

#include <string_view>

namespace cohort {

/// True for interface names that never reach another host: the host-only
/// bridges of containers and VMs (docker*, virbr*, br-*, lxcbr*, lxdbr*, cni*,
/// podman*, vboxnet*). A peer on another host that dials their address
/// reaches its own bridge, or nothing.
bool is_host_only_interface(std::string_view name) noexcept;

}  // namespace cohort
