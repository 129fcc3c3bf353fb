// transport/ofi/ofi_address.hpp — ofi endpoint addresses, as printable text.
//
// An address names everything a peer needs, fields joined by '|':
//
//   ofi:<provider>|<fabric>|<host>|<pid>|<nonce>|<eager>|<watch>|<name>
//   ofi:tcp;ofi_rxm|127.0.0.1/32|node7:4f1c2a9e|4242|9c0e...|65536|127.0.0.1:40123|0200a3f1...
//
//   provider  fi_info's prov_name ("tcp;ofi_rxm", "shm", "verbs;ofi_rxm", "efa")
//   fabric    fi_fabric_attr::name ("127.0.0.1/32", an IB subnet, "shm")
//   host      hostname and the start of the kernel's boot id: which machine
//   pid       the owning process
//   nonce     64 random bits chosen at open(): which endpoint of that process
//   eager     its caps().max_inline: frames sent before the welcome fit it
//   watch     the numeric TCP address of the endpoint's watch listener (ofi_watch.hpp)
//   name      the fi_getname() blob, in hex, for fi_av_insert()
//
// reaches() compares provider and fabric (and host, for providers that only
// work within one machine, such as shm): a peer on another provider or fabric
// cannot be reached, whatever its address looks like.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace cohort::transport::ofi {

struct OfiAddress {
  std::string provider;
  std::string fabric;
  std::string host;
  std::uint32_t pid = 0;
  std::uint64_t nonce = 0;
  std::uint64_t eager = 0;
  std::string watch;  // "127.0.0.1:40123" or "[::1]:40123"
  std::string name;   // raw fi_getname() bytes
};

/// The printable form (see above).
std::string format_address(const OfiAddress& a);
/// Parses format_address()'s output; kInvalidArgument naming what is wrong.
Result<OfiAddress> parse_address(std::string_view text);

/// Whether an endpoint at `self` can talk to one at `peer` at all.
bool same_fabric(const OfiAddress& self, const OfiAddress& peer);
/// Providers whose endpoints reach only their own machine ("shm").
bool host_local_provider(std::string_view provider);

/// This machine, as the host field says it: "<hostname>:<boot id prefix>".
std::string local_host_id();

/// Hex of raw bytes and back (empty optional-like Status on bad input).
std::string to_hex(std::string_view bytes);
Result<std::string> from_hex(std::string_view hex);

}  // namespace cohort::transport::ofi
