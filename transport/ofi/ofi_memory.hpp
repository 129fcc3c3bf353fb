// transport/ofi/ofi_memory.hpp — memory registration, where the provider asks for it.
//
// Only providers with FI_MR_LOCAL need descriptors for the buffers of sends
// and receives (rxm and shm do not; verbs without rxm, some efa and cxi
// set-ups do). cohort never exposes memory for remote access, so the other
// mode bits matter little: FI_MR_PROV_KEY or not (we request unique keys
// ourselves), FI_MR_ENDPOINT (registrations are bound to the endpoint).
//
// The policy, and why:
//  * our own buffers — the bounce receive pool and each send operation's
//    staging area — are registered once, when they are allocated, and live as
//    long as the endpoint;
//  * the caller's buffers — payloads sent without a copy, destinations of
//    receive_payload() — are registered per operation and released when it
//    completes. A cache keyed by address would be faster, but is only correct
//    if it learns when the caller frees or remaps memory (libfabric's own MR
//    cache hooks munmap/brk or uses userfaultfd for that, and providers that
//    need FI_MR_LOCAL enable it under fi_mr_reg, so repeated registrations of
//    the same buffer are already cheap there). Small payloads are copied into
//    registered staging rather than registered at all.
// COHORT_OFI_REGISTER=1 registers even where the provider does not ask, so the
// path is tested on machines without such hardware.
//
// Not thread-safe: used by its endpoint's thread.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/status.hpp"

struct fid_mr;
struct fid_domain;
struct fid_ep;

namespace cohort::transport::ofi {

class Fabric;

inline constexpr const char* kRegisterEnv = "COHORT_OFI_REGISTER";

/// One memory registration, closed by the destructor.
class Registration {
 public:
  Registration() = default;
  explicit Registration(fid_mr* mr) noexcept : mr_(mr) {}
  Registration(Registration&& o) noexcept : mr_(o.mr_) { o.mr_ = nullptr; }
  Registration& operator=(Registration&& o) noexcept;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration() { reset(); }

  /// The descriptor to pass with the buffer (nullptr when not registered).
  void* desc() const noexcept;
  void reset() noexcept;

 private:
  fid_mr* mr_ = nullptr;
};

class Memory {
 public:
  /// Reads the provider's mode and COHORT_OFI_REGISTER. `fabric` outlives this.
  explicit Memory(const Fabric& fabric);

  /// Whether data-transfer calls need descriptors.
  bool needed() const noexcept { return needed_; }

  /// Registers [data, data + size) for local sends and receives.
  Result<Registration> register_local(const void* data, std::size_t size);

  /// Registers each of `iov` (when needed()): appends the registrations to
  /// `regs` and writes one descriptor per iovec to `descs` (nullptr when not
  /// needed()).
  Status register_iov(std::span<const iovec> iov, std::vector<Registration>& regs,
                      void** descs);

 private:
  const Fabric& fabric_;
  bool needed_ = false;
  bool bind_to_endpoint_ = false;
  bool provider_keys_ = false;
  std::uint64_t next_key_ = 1;
};

}  // namespace cohort::transport::ofi
