// transport/loop/loop_transport.hpp — the "loop" Transport: endpoints in one
// process, for self-sends and tests. Not in registry::all(); find("loop") gives it.
#pragma once

#include <string_view>

#include "transport/transport.hpp"

namespace cohort::transport::loop {

class LoopTransport final : public Transport {
 public:
  std::string_view name() const override { return "loop"; }
  /// True when `peer` is a loop endpoint open in this process.
  bool reaches(const Address& self, const Address& peer) const override;
  Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) override;
};

/// The process's LoopTransport.
Transport& transport();

}  // namespace cohort::transport::loop
