// transport/shm/shm_address.hpp — who can reach whom over shared memory, and
// the text of an shm endpoint's address.
//
// Two endpoints can talk over shm only when they share a kernel, a /dev/shm, a
// network namespace (the control socket lives in the abstract Unix namespace,
// which is per network namespace) and a hostname. HostIdentity captures exactly
// that; reaches() compares identities, never pings anything. Emulated hosts in
// separate namespaces (testbed/) differ in hostname, /dev/shm and network
// namespace, so they never try shm with each other.
//
// An address is printable, fields separated by '/':
//
//   shm:<hostname>/<boot id>/<shm dev>.<shm ino>/<net ns>/<pid ns>.<pid>/<socket>/<eager limit>
//
// <socket> is the abstract-namespace name of the endpoint's control socket,
// <pid ns>.<pid> lets a connector on the same pid namespace watch the process
// before it answers, <eager limit> is the largest payload the endpoint takes
// eagerly (senders size their frames by the receiver's limit).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace cohort::transport::shm {

struct HostIdentity {
  std::string hostname;
  std::string boot_id;           // /proc/sys/kernel/random/boot_id: one per kernel boot
  std::uint64_t shm_dev = 0;     // st_dev and st_ino of /dev/shm: one per tmpfs mount
  std::uint64_t shm_ino = 0;
  std::uint64_t net_ns = 0;      // inode of /proc/self/ns/net: the abstract socket namespace

  friend bool operator==(const HostIdentity&, const HostIdentity&) = default;
};

/// This process's identity, read from the kernel on each call (open() only).
HostIdentity local_host_identity();
/// Inode of /proc/self/ns/pid (0 when unreadable).
std::uint64_t local_pid_namespace();

struct ShmAddress {
  HostIdentity host;
  std::uint64_t pid_ns = 0;
  pid_t pid = 0;
  std::string socket_name;  // without the leading NUL of the abstract namespace
  std::size_t eager_limit = 0;
};

std::string format_address(const ShmAddress& address);
/// kInvalidArgument naming what is wrong when `text` is not an shm address.
Result<ShmAddress> parse_address(std::string_view text);

}  // namespace cohort::transport::shm
