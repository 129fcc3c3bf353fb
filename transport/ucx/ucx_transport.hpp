// transport/ucx/ucx_transport.hpp — the "ucx" Transport: UCX's UCP tag API,
// over whatever UCX_TLS lets UCX use (RDMA fabrics, tcp, posix/sysv shared
// memory). Built when COHORT_WITH_UCX finds UCX; opens UcxEndpoints.
#pragma once

#include <string_view>

#include "transport/transport.hpp"

namespace cohort::transport::ucx {

class UcxTransport final : public Transport {
 public:
  std::string_view name() const override { return "ucx"; }
  /// True when both addresses are well-formed ucx addresses. What cannot be told
  /// in advance: whether UCX on the two sides shares a transport (UCX_TLS, the
  /// network, a common /dev/shm). That shows as kPeerDown after connect().
  bool reaches(const Address& self, const Address& peer) const override;
  Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) override;
};

/// The process's UcxTransport (what the registry lists).
Transport& transport();

}  // namespace cohort::transport::ucx
