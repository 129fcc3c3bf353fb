#include "transport/tcp/tcp_transport.hpp"

#include "transport/tcp/tcp_address.hpp"
#include "transport/tcp/tcp_endpoint.hpp"

namespace cohort::transport::tcp {

bool TcpTransport::reaches(const Address& self, const Address& peer) const {
  return parse_address_list(peer).is_ok();
}

Result<std::unique_ptr<Endpoint>> TcpTransport::open(const EndpointOptions& options) {
  return TcpEndpoint::open(options);
}

Transport& transport() {
  static TcpTransport instance;
  return instance;
}

}  // namespace cohort::transport::tcp
