// transport/registry.hpp — the transports this build contains, in order of preference.
//
// The list is explicit (registry.cpp, from the enabled transports), not built by
// self-registering statics, which the linker drops from static libraries.
// COHORT_TRANSPORTS=tcp,shm restricts it, like UCX_TLS.
//
//   COHORT_ASSIGN_OR_RETURN(auto usable, transport::enabled());
//   for (Transport* t : usable) ... t->open(options) ...
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "transport/transport.hpp"

namespace cohort::transport {

/// Every transport built in, most preferred first ("loop" is for tests and not listed).
std::span<Transport* const> all();
/// The transport called `name`, or nullptr. find("loop") gives the test transport.
Transport* find(std::string_view name);
/// The transports allowed by COHORT_TRANSPORTS (all() when unset), or
/// kInvalidArgument naming an unknown entry.
Result<std::vector<Transport*>> enabled();
/// enabled() for an explicit list ("tcp,shm"; blanks and empty entries ignored;
/// empty = all()). The result keeps the order of all(); "loop" may be named and
/// comes last.
Result<std::vector<Transport*>> parse_enabled(std::string_view spec);

}  // namespace cohort::transport
