#include "transport/base/options.hpp"

#include <atomic>
#include <string>

#include "base/log.hpp"

namespace cohort::transport {

std::size_t resolve_eager_limit(const EndpointOptions& options, std::string_view subsystem) {
  if (options.eager_limit == 0) return kDefaultEagerLimit;
  if (options.eager_limit <= kMaxEagerLimit) return options.eager_limit;
  // Warn once per process: lib opens one endpoint per transport with the same value.
  static std::atomic<bool> warned{false};
  if (!warned.exchange(true)) {
    COHORT_LOG_WARN(subsystem) << "eager limit " << options.eager_limit << " exceeds the maximum "
                               << kMaxEagerLimit << "; using " << kMaxEagerLimit
                               << " (lower COHORT_EAGER_LIMIT to silence this)";
  }
  return kMaxEagerLimit;
}

Status check_options(const EndpointOptions& options) {
  if (options.hello.size() > kMaxHello)
    return Status(Errc::kInvalidArgument, "endpoint hello of " +
                                              std::to_string(options.hello.size()) +
                                              " bytes exceeds the limit of " +
                                              std::to_string(kMaxHello) + "; send less at connect");
  return Status();
}

Status bad_peer(PeerId peer, bool known, std::string_view endpoint) {
  std::string m = "peer " + std::to_string(peer) + " of endpoint " + std::string(endpoint);
  if (known) return Status(Errc::kPeerLost, m + " is gone (disconnected or lost); connect again");
  return Status(Errc::kInvalidArgument, m + " was never connected or accepted");
}

}  // namespace cohort::transport
