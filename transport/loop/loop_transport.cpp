#include "transport/loop/loop_transport.hpp"

#include "transport/loop/loop_endpoint.hpp"
#include "transport/loop/loop_inbox.hpp"

namespace cohort::transport::loop {

bool LoopTransport::reaches(const Address& self, const Address& peer) const {
  return find_inbox(peer) != nullptr;
}

Result<std::unique_ptr<Endpoint>> LoopTransport::open(const EndpointOptions& options) {
  return LoopEndpoint::open(options);
}

Transport& transport() {
  static LoopTransport instance;
  return instance;
}

}  // namespace cohort::transport::loop
