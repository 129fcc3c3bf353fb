// transport/ucx/ucx_address.hpp — the ucx transport's Address: a UCP worker
// address in a checked, printable envelope.
//
// Text form: "ucx:" then base64url (no padding) of the binary form:
//
//   u8  version (1)      u8 flags (0)     u16 reserved
//   u32 worker address length
//   u64 nonce            random per endpoint: a hello for another nonce is refused
//   u64 host             hash of the kernel boot id
//   u64 pid namespace    inode of /proc/self/ns/pid
//   u32 pid              u64 process start time (clock ticks after boot)
//   u32 checksum         FNV-1a over every other byte
//   ... worker address   what ucp_worker_get_address() gave
//
// UCX never validates a worker address it is handed (a corrupt one can crash
// it), so everything is checked here first; a malformed address is
// kInvalidArgument with a message saying what is wrong. The identity fields let
// a peer on the same host (same boot, same pid namespace) watch this process
// with a pidfd: UCX 1.13 reports no error when a shared-memory peer dies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace cohort::transport::ucx {

/// Who owns an address: enough to tell "same host" and to watch the process.
struct Identity {
  std::uint64_t host = 0;    // 0 when unknown
  std::uint64_t pid_ns = 0;  // 0 when unknown
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;
  /// True when `other` runs on this host in this pid namespace (its pid means the same here).
  bool same_pid_space(const Identity& other) const noexcept {
    return host != 0 && pid_ns != 0 && host == other.host && pid_ns == other.pid_ns;
  }
};

/// This process's identity (reads /proc; fields it cannot read stay 0).
Identity local_identity();
/// Start time of process `pid` (field 22 of /proc/<pid>/stat), or an error when it is gone.
Result<std::uint64_t> process_start_time(std::uint32_t pid);

struct PeerAddress {
  std::uint64_t nonce = 0;
  Identity owner;
  std::string worker;  // the raw UCP worker address
};

inline constexpr std::string_view kAddressPrefix = "ucx:";
/// Bytes of the binary form before the worker address.
inline constexpr std::size_t kAddressFixedBytes = 48;
/// Worker addresses longer than this are refused (UCX's are a few hundred bytes).
inline constexpr std::size_t kMaxWorkerAddress = 64 * 1024;

std::string encode_binary(const PeerAddress& a);
/// "ucx:" + base64url(encode_binary(a)).
std::string encode_text(const PeerAddress& a);

Result<PeerAddress> parse_binary(std::span<const std::byte> bytes);
Result<PeerAddress> parse_text(std::string_view text);

/// A short printable form of an address for messages: its first characters.
std::string abbreviate(std::string_view text);

}  // namespace cohort::transport::ucx
