// transport/ofi/ofi_fabric.hpp — choosing a libfabric provider and opening the
// libfabric objects of one endpoint: fabric, domain, address vector, one
// completion queue for both directions, and one RDM endpoint.
//
// Provider choice, first match wins:
//   1. COHORT_OFI_PROVIDER, a prov_name as fi_info prints it ("tcp;ofi_rxm",
//      "shm", "verbs;ofi_rxm", "efa"); unknown -> kInvalidArgument listing
//      what this machine offers.
//   2. FI_PROVIDER, libfabric's own filter: the first provider it leaves.
//   3. The first provider fi_getinfo returns whose core is a native fabric
//      (anything but tcp, udp, sockets, net, shm); where there is none, the
//      first one offered (here tcp;ofi_rxm), noted once at info level.
// Only providers with FI_EP_RDM and FI_TAGGED qualify. Endpoints ask for
// FI_RM_ENABLED and FI_THREAD_DOMAIN, and for FI_SOURCE and FI_ORDER_SAS
// where offered (neither is needed: ofi_tags.hpp); they accept the FI_CONTEXT,
// FI_CONTEXT2 and FI_ASYNC_IOV modes and the FI_MR_LOCAL, FI_MR_ENDPOINT,
// FI_MR_VIRT_ADDR, FI_MR_ALLOCATED and FI_MR_PROV_KEY registration modes
// (ofi_memory.hpp). Providers with socket addresses are bound to
// EndpointOptions::bind_host with FI_SOURCE.
//
// Each Endpoint has its own Fabric (FI_THREAD_DOMAIN: one thread per domain,
// as the transport contract has one thread per endpoint). Not thread-safe.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.hpp"
#include "transport/ofi/ofi_library.hpp"

namespace cohort::transport::ofi {

inline constexpr const char* kProviderEnv = "COHORT_OFI_PROVIDER";
/// "0" opens the completion queue without a wait fd (caps().wait_fd = false).
inline constexpr const char* kWaitFdEnv = "COHORT_OFI_WAIT_FD";  // "1": a CQ wait object

class Fabric {
 public:
  /// Chooses the provider (see above) and opens everything, enabled.
  static Result<std::unique_ptr<Fabric>> open(const std::string& bind_host);
  /// Closes everything still open, the endpoint first.
  ~Fabric();
  /// Closes the endpoint alone: no operation runs or completes after this, so
  /// their contexts and memory registrations may then be released.
  void close_endpoint() noexcept;
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  fid_domain* domain() const noexcept { return domain_; }
  fid_av* av() const noexcept { return av_; }
  fid_cq* cq() const noexcept { return cq_; }
  fid_ep* ep() const noexcept { return ep_; }
  fid_fabric* fabric() const noexcept { return fabric_; }

  const std::string& provider() const noexcept { return provider_; }
  const std::string& fabric_name() const noexcept { return fabric_name_; }
  /// fi_getname(): what peers pass to fi_av_insert().
  const std::string& name() const noexcept { return name_; }
  /// The completion queue's FI_WAIT_FD, or -1 when the provider has none.
  int wait_fd() const noexcept { return wait_fd_; }

  std::size_t inject_size() const noexcept { return inject_size_; }
  std::size_t iov_limit() const noexcept { return iov_limit_; }
  std::uint64_t mr_mode() const noexcept { return mr_mode_; }
  bool has_source() const noexcept { return has_source_; }

 private:
  Fabric() = default;
  Status open_objects();

  fi_info* info_ = nullptr;
  fid_fabric* fabric_ = nullptr;
  fid_domain* domain_ = nullptr;
  fid_av* av_ = nullptr;
  fid_cq* cq_ = nullptr;
  fid_ep* ep_ = nullptr;
  int wait_fd_ = -1;
  std::string provider_, fabric_name_, name_;
  std::size_t inject_size_ = 0, iov_limit_ = 1;
  std::uint64_t mr_mode_ = 0;
  bool has_source_ = false;
};

/// "fi_tsend: Connection refused (-111)": libfabric's text for a negative return.
std::string fi_error(std::string_view call, long ret);

/// The shm provider leaves its 16 MiB region (/dev/shm/<name>) behind when a
/// process dies without closing. Removes that of the endpoint at `address`
/// if its provider is shm, it lived on this host and its process is gone
/// (or a zombie); returns whether it removed something.
bool remove_dead_region(std::string_view address, std::string_view this_host);

/// The prov_names that offer RDM endpoints with tagged messages here, in
/// libfabric's order, ", "-joined (for messages and tests).
std::string available_providers();

}  // namespace cohort::transport::ofi
