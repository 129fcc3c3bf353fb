// transport/shm/shm_transport.hpp — the "shm" Transport: tasks on the same host
// talk through shared memory (rings for small frames, a single CMA copy or a
// pipelined two-copy for large payloads). See README.md in this folder.
//
// reaches() is true only between endpoints of one host identity (same kernel
// boot, /dev/shm, network namespace and hostname; shm_address.hpp), so it is
// preferred over tcp for exactly the peers it can serve.
#pragma once

#include <string_view>

#include "transport/transport.hpp"

namespace cohort::transport::shm {

class ShmTransport final : public Transport {
 public:
  std::string_view name() const override { return "shm"; }
  /// True when both addresses are shm addresses of the same host identity.
  bool reaches(const Address& self, const Address& peer) const override;
  Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) override;
};

/// The process's ShmTransport (what the registry lists).
Transport& transport();

}  // namespace cohort::transport::shm
