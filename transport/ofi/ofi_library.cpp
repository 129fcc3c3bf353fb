#include "transport/ofi/ofi_library.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "base/signals.hpp"

namespace cohort::transport::ofi {
namespace {

struct Loaded {
  FabricLibrary api{};
  Status status;
};

// rxm sends a message eagerly, in one bounce buffer, up to its buffer size
// (16 KiB by default) and segments anything longer. A frame is our 16-byte
// prefix and 32-byte header plus the payload, so a 16 KiB payload would just
// miss it and take rxm's slower path (5x the latency here). Unless the user
// chose, the buffers are made to fit it; rxm reads these when libfabric
// initialises its providers, at the first fi_getinfo().
void size_rxm_buffers() {
  constexpr const char* kSize = "16640";  // 16 KiB + kPrefixSize + kMaxHeader, rounded up
  if (std::getenv("FI_OFI_RXM_BUFFER_SIZE") == nullptr &&
      std::getenv("FI_OFI_RXM_EAGER_LIMIT") == nullptr) {
    ::setenv("FI_OFI_RXM_BUFFER_SIZE", kSize, 0);
    ::setenv("FI_OFI_RXM_EAGER_LIMIT", kSize, 0);  // verbs;ofi_rxm wants them equal
  }
}

Loaded load() {
  Loaded l;
  size_rxm_buffers();
  // The soname of libfabric 1.x; RTLD_LOCAL keeps its symbols out of the
  // program's way (a program may link another libfabric itself).
  void* h = ::dlopen("libfabric.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* why = ::dlerror();
    l.status = Status(Errc::kUnsupported, std::string("cannot load libfabric.so.1 (") +
                                              (why ? why : "?") +
                                              "); install libfabric1, or leave ofi out of "
                                              "COHORT_TRANSPORTS");
    return l;
  }
  // PSM's loader has just taken SIGTERM and the crash signals (unless the
  // daemon set IPATH_NO_BACKTRACE): give them back.
  reset_foreign_handlers();
  auto sym = [&](const char* name) { return ::dlsym(h, name); };
  l.api.getinfo = reinterpret_cast<decltype(l.api.getinfo)>(sym("fi_getinfo"));
  l.api.freeinfo = reinterpret_cast<decltype(l.api.freeinfo)>(sym("fi_freeinfo"));
  l.api.dupinfo = reinterpret_cast<decltype(l.api.dupinfo)>(sym("fi_dupinfo"));
  l.api.fabric = reinterpret_cast<decltype(l.api.fabric)>(sym("fi_fabric"));
  l.api.strerror = reinterpret_cast<decltype(l.api.strerror)>(sym("fi_strerror"));
  if (!l.api.getinfo || !l.api.freeinfo || !l.api.dupinfo || !l.api.fabric || !l.api.strerror)
    l.status = Status(Errc::kUnsupported,
                      "libfabric.so.1 lacks fi_getinfo, fi_freeinfo, fi_dupinfo, fi_fabric or "
                      "fi_strerror; install libfabric 1.9 or later");
  // Never dlclose()d: providers keep threads and handlers for the process's life.
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

Result<const FabricLibrary*> fabric_library() {
  const Loaded& l = loaded();
  if (!l.status.is_ok()) return l.status;
  return &l.api;
}

std::string fabric_strerror(int errnum) {
  auto lib = fabric_library();
  if (!lib.is_ok()) return "libfabric error " + std::to_string(errnum);
  return (*lib)->strerror(errnum);
}

}  // namespace cohort::transport::ofi
