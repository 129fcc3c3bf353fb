// transport/ofi/ofi_transport.hpp — the "ofi" Transport: libfabric reliable
// datagram endpoints with tagged messages, on whatever provider the machine
// offers (verbs;ofi_rxm, efa, psm2/3, cxi on clusters; tcp;ofi_rxm and shm
// anywhere). Which provider: ofi_fabric.hpp. How frames travel: ofi_tags.hpp.
//
// It also keeps the process's list of its own open ofi endpoints: libfabric's
// shm provider crashes when handed the address of a closed endpoint of the
// same process, so connect() asks here first (LocalEndpoints).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "transport/transport.hpp"

namespace cohort::transport::ofi {

class OfiTransport final : public Transport {
 public:
  std::string_view name() const override { return "ofi"; }
  /// True when both are ofi addresses on the same provider and fabric (and,
  /// for shm, the same host).
  bool reaches(const Address& self, const Address& peer) const override;
  Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) override;
  /// An RDMA device of a kind libfabric drives: /sys/class/infiniband (verbs,
  /// efa, psm3), /dev/hfi1_* (psm2), /dev/ipath* and /dev/qib* (psm), cxi.
  /// Or COHORT_OFI_PROVIDER set: the user asked for a provider.
  bool native_hardware() const override;
};

/// The process's OfiTransport (what the registry lists).
Transport& transport();

/// The ofi endpoints open in this process, by fabric name. Thread-safe.
class LocalEndpoints {
 public:
  using Token = std::shared_ptr<std::atomic<bool>>;
  /// Called by an endpoint once open; the token stays true until it closes.
  static Token add(const std::string& name);
  /// Called by an endpoint as it closes: later find() misses, tokens turn false.
  static void remove(const std::string& name);
  /// The live endpoint's token, or null.
  static Token find(const std::string& name);
};

}  // namespace cohort::transport::ofi
