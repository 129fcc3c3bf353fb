// transport/tcp/tcp_transport.hpp — the "tcp" Transport: reaches any peer with a
// tcp address; opens TcpEndpoints. Always built; the daemon uses it for its own
// links, tasks when nothing faster reaches a peer.
#pragma once

#include <string_view>

#include "transport/transport.hpp"

namespace cohort::transport::tcp {

class TcpTransport final : public Transport {
 public:
  std::string_view name() const override { return "tcp"; }
  /// True when `peer` is a well-formed tcp address list. Routing is the network's business.
  bool reaches(const Address& self, const Address& peer) const override;
  Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) override;
};

/// The process's TcpTransport (what the registry lists).
Transport& transport();

}  // namespace cohort::transport::tcp
