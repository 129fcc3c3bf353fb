// transport/ofi/ofi_library.hpp — libfabric, loaded when first needed.
//
// Linking libfabric makes every process pay for it at start-up, used or not:
// Debian's libfabric pulls in PSM, whose loader calibrates the CPU clock for
// about 0.2 s (and takes signal handlers, base/signals.hpp). So cohort links
// only libfabric's headers and dlopen()s libfabric.so.1 the first time an ofi
// endpoint is opened. Everything else in libfabric's API is inline and goes
// through the objects these five calls return.
#pragma once

#include <rdma/fabric.h>

#include "base/status.hpp"

namespace cohort::transport::ofi {

struct FabricLibrary {
  int (*getinfo)(std::uint32_t version, const char* node, const char* service,
                 std::uint64_t flags, const fi_info* hints, fi_info** info);
  void (*freeinfo)(fi_info* info);
  fi_info* (*dupinfo)(const fi_info* info);  // nullptr: a fresh, empty one (fi_allocinfo)
  int (*fabric)(fi_fabric_attr* attr, fid_fabric** fabric, void* context);
  const char* (*strerror)(int errnum);
};

/// libfabric's entry points, loading it on first call; kUnsupported with the
/// loader's reason when it cannot be loaded.
Result<const FabricLibrary*> fabric_library();

/// fi_strerror() once the library is loaded; a number before that.
std::string fabric_strerror(int errnum);

}  // namespace cohort::transport::ofi
