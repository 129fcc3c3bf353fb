// tests/multiproc/tasks/flood.hpp — the numbered messages mp_task_flood sends
// and mp_ordering_test checks: which size and encoding message `seq` has, and
// what it holds.
//
// Raw messages: 8 header bytes {uint32 rank, uint32 seq} (native order), then
// pattern bytes (seed flood_seed(rank, seq)). Packed messages (every third small
// one): int32 rank, uint32 seq, then the pattern as one pack_bytes item.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tests/multiproc/tasks/task_common.hpp"

namespace cohort::mptest {

inline constexpr std::size_t kFloodHeader = 8;

/// Total payload bytes of message `seq`: mostly small, some just past the
/// eager limit, a few of 1 MiB, so that eager and rendezvous messages mix.
inline std::size_t flood_size(std::uint32_t seq, std::size_t eager) {
  if (seq % 500 == 499) return 1u << 20;
  if (seq % 50 == 25) return eager + 1;
  if (seq % 7 == 3) return kFloodHeader;
  return kFloodHeader + (seq * 37u) % 300u;
}
inline bool flood_packed(std::uint32_t seq, std::size_t eager) {
  return seq % 3 == 1 && flood_size(seq, eager) < eager;
}
inline std::uint32_t flood_seed(std::uint32_t rank, std::uint32_t seq) {
  return rank * 1000003u + seq;
}

}  // namespace cohort::mptest
