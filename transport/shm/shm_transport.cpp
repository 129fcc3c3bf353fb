#include "transport/shm/shm_transport.hpp"

#include "transport/shm/shm_address.hpp"
#include "transport/shm/shm_endpoint.hpp"

namespace cohort::transport::shm {

bool ShmTransport::reaches(const Address& self, const Address& peer) const {
  auto a = parse_address(self);
  auto b = parse_address(peer);
  return a.is_ok() && b.is_ok() && a->host == b->host;
}

Result<std::unique_ptr<Endpoint>> ShmTransport::open(const EndpointOptions& options) {
  return ShmEndpoint::open(options);
}

Transport& transport() {
  static ShmTransport instance;
  return instance;
}

}  // namespace cohort::transport::shm
