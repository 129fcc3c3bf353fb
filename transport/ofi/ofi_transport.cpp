#include "transport/ofi/ofi_transport.hpp"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>

#include "transport/ofi/ofi_address.hpp"
#include "transport/ofi/ofi_endpoint.hpp"

namespace cohort::transport::ofi {

bool OfiTransport::reaches(const Address& self, const Address& peer) const {
  auto a = parse_address(self);
  auto b = parse_address(peer);
  return a.is_ok() && b.is_ok() && same_fabric(*a, *b);
}

Result<std::unique_ptr<Endpoint>> OfiTransport::open(const EndpointOptions& options) {
  return OfiEndpoint::open(options);
}

bool OfiTransport::native_hardware() const {
  if (const char* p = std::getenv("COHORT_OFI_PROVIDER"); p != nullptr && *p != '\0') return true;
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* dir : {"/sys/class/infiniband", "/sys/class/cxi"})
    if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec)) return true;
  for (const auto& e : fs::directory_iterator("/dev", ec)) {
    const std::string n = e.path().filename().string();
    for (const char* prefix : {"hfi1_", "ipath", "qib", "cxi"})
      if (n.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

Transport& transport() {
  static OfiTransport instance;
  return instance;
}

namespace {

struct Registry {
  std::mutex mutex;
  std::unordered_map<std::string, LocalEndpoints::Token> open;
};

Registry& registry() {
  // Never destroyed: endpoints closed by other static destructors may still ask.
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

LocalEndpoints::Token LocalEndpoints::add(const std::string& name) {
  auto token = std::make_shared<std::atomic<bool>>(true);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.open[name] = token;
  return token;
}

void LocalEndpoints::remove(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.open.find(name);
  if (it == r.open.end()) return;
  it->second->store(false, std::memory_order_release);
  r.open.erase(it);
}

LocalEndpoints::Token LocalEndpoints::find(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.open.find(name);
  return it == r.open.end() ? nullptr : it->second;
}

}  // namespace cohort::transport::ofi
