// cohort/tid.hpp — task identifiers.
//
// A tid is a positive 32-bit integer, PVM's layout, so that pvm3.h programs keep
// `int tid`:   bit 31 = 0 | bits 20..30 host index (1..2047) | bits 0..19 local
// counter (1..1048575). Local counter 0 names the host's daemon itself. A tid is
// never reused while the VM lives.
//
//   cohort::Tid t = cohort::tid::make(2, 17);
//   cohort::tid::host_of(t);    // 2
#pragma once

#include <cstdint>

namespace cohort {

using Tid = std::int32_t;

inline constexpr Tid kAnyTid = -1;   ///< wildcard source in recv/probe
inline constexpr int kAnyTag = -1;   ///< wildcard tag in recv/probe
inline constexpr Tid kNoTid = 0;     ///< "none", e.g. the parent of a task started by hand

namespace tid {
inline constexpr int kHostShift = 20;
inline constexpr std::uint32_t kLocalMask = (1u << kHostShift) - 1;
inline constexpr std::uint32_t kMaxHost = 0x7ff;

constexpr Tid make(std::uint32_t host, std::uint32_t local) noexcept {
  return static_cast<Tid>(((host & kMaxHost) << kHostShift) | (local & kLocalMask));
}
constexpr std::uint32_t host_of(Tid t) noexcept {
  return (static_cast<std::uint32_t>(t) >> kHostShift) & kMaxHost;
}
constexpr std::uint32_t local_of(Tid t) noexcept {
  return static_cast<std::uint32_t>(t) & kLocalMask;
}
/// The tid of host `host`'s daemon (local part 0).
constexpr Tid daemon_of(std::uint32_t host) noexcept { return make(host, 0); }
constexpr bool is_daemon(Tid t) noexcept { return t > 0 && local_of(t) == 0; }
constexpr bool valid(Tid t) noexcept { return t > 0 && host_of(t) != 0; }
}  // namespace tid

}  // namespace cohort
