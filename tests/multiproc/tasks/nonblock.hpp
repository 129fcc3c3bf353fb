// tests/multiproc/tasks/nonblock.hpp — tags and sizes shared by
// mp_task_nonblock and mp_matching_test's non-blocking test.
#pragma once

#include <cstddef>
#include <vector>

namespace cohort::mptest {

// test -> task
inline constexpr int kNbSmall = 41;
inline constexpr int kNbPacked = 42;
inline constexpr int kNbLarge = 43;
inline constexpr std::size_t kNbSmallSize = 3000;
inline constexpr std::size_t kNbLargeSize = 1u << 20;
inline const std::vector<double> kNbDoubles = {1.5, -2.25, 1e300, 0.0};
// task -> test
inline constexpr int kNbReplySmall = 51;
inline constexpr int kNbReplyPacked = 52;
inline constexpr int kNbReplyLarge = 53;
inline constexpr int kNbLate = 59;
inline constexpr std::size_t kNbReplySmallSize = 5000;
inline constexpr std::size_t kNbReplyLargeSize = 2u << 20;
inline constexpr std::size_t kNbLateSize = 10;

}  // namespace cohort::mptest
