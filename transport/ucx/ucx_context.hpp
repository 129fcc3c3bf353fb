// transport/ucx/ucx_context.hpp — the process's UCP context, shared by every
// ucx endpoint and released with the last of them.
//
// One ucp_context per process (UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP), created
// on the first open() and destroyed when the last endpoint holding it closes,
// so a process that stops using ucx gives back everything UCX opened. The
// context is created with mt_workers_shared: endpoints (one ucp_worker each,
// single-threaded) may live on different threads.
//
// Configuration comes from UCX's own environment (UCX_TLS, UCX_NET_DEVICES,
// UCX_RNDV_THRESH, ...), read when the context is created. One setting is
// changed unless the user set it: shared-memory transports (posix, sysv) are
// asked to advertise peer-failure support (UCX_MM_ERROR_HANDLING=y). Without
// it UCX 1.13 refuses them for endpoints with UCP_ERR_HANDLING_MODE_PEER and
// same-host traffic would go over TCP. (UCX still does not notice a dead
// shared-memory peer; the endpoint watches such peers itself, see
// ucx_liveness.hpp.)
//
// A child process after fork() never reuses its parent's context: acquire()
// makes a new one.
#pragma once

#include <ucp/api/ucp.h>

#include <memory>

#include "base/status.hpp"

namespace cohort::transport::ucx {

/// Whether UCX_TLS may select a shared-memory transport (unset, "all", "sm", "posix", ...).
bool shm_may_be_used();

class Context {
 public:
  /// The live context of this process, or a new one; kUnsupported (with UCX's
  /// reason and what to check) when UCX cannot start.
  static Result<std::shared_ptr<Context>> acquire();

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  ucp_context_h handle() const noexcept { return context_; }

 private:
  Context() = default;
  ucp_context_h context_ = nullptr;
};

}  // namespace cohort::transport::ucx
