#include "transport/ucx/ucx_transport.hpp"

#include "transport/ucx/ucx_address.hpp"
#include "transport/ucx/ucx_endpoint.hpp"

namespace cohort::transport::ucx {

bool UcxTransport::reaches(const Address& self, const Address& peer) const {
  return parse_text(self).is_ok() && parse_text(peer).is_ok();
}

Result<std::unique_ptr<Endpoint>> UcxTransport::open(const EndpointOptions& options) {
  return UcxEndpoint::open(options);
}

Transport& transport() {
  static UcxTransport instance;
  return instance;
}

}  // namespace cohort::transport::ucx
