// tests/multiproc/tasks/bulk_ops.hpp — the commands mp_task_bulk understands.
#pragma once

#include <cstdint>

namespace cohort::mptest {

enum class BulkOp : std::int32_t { kQuit = 0, kExpect = 1, kEmit = 2 };

}  // namespace cohort::mptest
