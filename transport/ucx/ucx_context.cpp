#include "transport/ucx/ucx_context.hpp"

#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "base/log.hpp"

namespace cohort::transport::ucx {

namespace {

constexpr const char* kLog = "transport.ucx";

std::mutex g_mutex;
std::weak_ptr<Context> g_context;
pid_t g_owner = 0;  // the process that created g_context

}  // namespace

// Setting MM_ERROR_HANDLING when no shared-memory transport is loaded makes UCX
// warn about an invalid setting, hence this look at UCX_TLS.
bool shm_may_be_used() {
  const char* tls = std::getenv("UCX_TLS");
  if (tls == nullptr || *tls == '\0' || *tls == '^') return true;
  std::string_view v(tls);
  for (std::string_view name : {"all", "sm", "shm", "mm", "posix", "sysv"}) {
    for (std::size_t at = v.find(name); at != std::string_view::npos; at = v.find(name, at + 1)) {
      bool starts = at == 0 || v[at - 1] == ',';
      bool ends = at + name.size() == v.size() || v[at + name.size()] == ',';
      if (starts && ends) return true;
    }
  }
  return false;
}

namespace {

bool user_set_mm_error_handling() {
  for (const char* var :
       {"UCX_MM_ERROR_HANDLING", "UCX_POSIX_ERROR_HANDLING", "UCX_SYSV_ERROR_HANDLING"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

Status ucx_failed(const char* call, ucs_status_t s) {
  return Status(Errc::kUnsupported, std::string("UCX could not start (") + call + ": " +
                                        ucs_status_string(s) +
                                        "); check UCX_TLS and UCX_NET_DEVICES, or leave ucx "
                                        "out of COHORT_TRANSPORTS");
}

}  // namespace

Result<std::shared_ptr<Context>> Context::acquire() {
  std::lock_guard lock(g_mutex);
  if (g_owner == ::getpid()) {
    if (auto live = g_context.lock()) return live;
  }
  ucp_config_t* config = nullptr;
  if (ucs_status_t s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK)
    return ucx_failed("ucp_config_read", s);
  if (shm_may_be_used() && !user_set_mm_error_handling()) {
    if (ucs_status_t s = ucp_config_modify(config, "MM_ERROR_HANDLING", "y"); s != UCS_OK) {
      COHORT_LOG_DEBUG(kLog) << "cannot set MM_ERROR_HANDLING: " << ucs_status_string(s);
    }
  }
  ucp_params_t params{};
  params.field_mask =
      UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED | UCP_PARAM_FIELD_NAME;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  params.mt_workers_shared = 1;
  params.name = "cohort";
  std::shared_ptr<Context> ctx(new Context());
  ucs_status_t s = ucp_init(&params, config, &ctx->context_);
  ucp_config_release(config);
  if (s != UCS_OK) {
    ctx->context_ = nullptr;
    return ucx_failed("ucp_init", s);
  }
  g_context = ctx;
  g_owner = ::getpid();
  COHORT_LOG_DEBUG(kLog) << "UCP context created (UCX " << UCP_API_MAJOR << "." << UCP_API_MINOR
                         << ")";
  return ctx;
}

Context::~Context() {
  if (context_ != nullptr) ucp_cleanup(context_);
}

}  // namespace cohort::transport::ucx
