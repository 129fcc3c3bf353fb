// daemon/net_iface.hpp — which address a daemon tells its peers to dial.
//
// A daemon listens on every IPv4 address by default (--listen 0.0.0.0:0, never
// a fixed port) and advertises a list of its addresses, most useful first,
// that peers try in order. Chosen: interfaces that are up and not loopback,
// minus the host-only bridges of containers and VMs (docker*, virbr*, br-*,
// lxcbr*, lxdbr*, cni*, podman*, vboxnet*), which do not reach other hosts.
// `--interface NAME` / COHORT_IF forces one interface. Loopback is advertised
// only when nothing else exists (a VM of one host).
#pragma once

#include <string>
#include <vector>

#include "base/netif.hpp"
#include "base/status.hpp"

namespace cohort::daemon {

/// True for interface names that never reach another host (base/netif.hpp).
using cohort::is_host_only_interface;

/// The IPv4 addresses to advertise, best first. `forced` (an interface name)
/// restricts the choice to it; kNotFound when it has no IPv4 address.
Result<std::vector<std::string>> advertised_ips(const std::string& forced);

/// "tcp:A:PORT,tcp:B:PORT" for a listener on `bound_ip` (0.0.0.0: every
/// advertised address) and `port`.
Result<std::string> advertised_address(const std::string& bound_ip, unsigned port,
                                       const std::string& forced_interface);

}  // namespace cohort::daemon
