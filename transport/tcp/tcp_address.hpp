// transport/tcp/tcp_address.hpp — tcp endpoint addresses, as text and as sockaddrs.
//
// An address is printable: "tcp:127.0.0.1:40123" or "tcp:[::1]:40123". An
// endpoint listening on every interface publishes a list, joined by ',', most
// useful first (non-loopback before loopback); connect() tries them in order.
// Hosts in addresses are numeric: connect() never waits for DNS. Only the bind
// host given at open() may be a name.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::transport::tcp {

/// An IPv4 or IPv6 socket address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t size = 0;

  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
  int family() const noexcept { return storage.ss_family; }
  bool is_wildcard() const noexcept;
  bool is_loopback() const noexcept;
  unsigned port() const noexcept;
  void set_port(unsigned port) noexcept;
};

/// "tcp:127.0.0.1:40123" / "tcp:[::1]:40123".
std::string format_address(const SocketAddress& address);

/// Parses one address or a ','-separated list; kInvalidArgument naming the bad part.
Result<std::vector<SocketAddress>> parse_address_list(std::string_view text);

/// The address to bind for EndpointOptions::bind_host ("" = every IPv4 interface;
/// a numeric address or a host name), port 0.
Result<SocketAddress> resolve_bind_host(const std::string& host);

/// What a listener bound to `bound` publishes: its own address, or for a
/// wildcard bind one address per interface that is up (never a host-only
/// bridge), loopback last; with `forced` (COHORT_IF) that interface's only,
/// kNotFound when it has none.
Result<std::string> published_address(const SocketAddress& bound, std::string_view forced = {});

}  // namespace cohort::transport::tcp
