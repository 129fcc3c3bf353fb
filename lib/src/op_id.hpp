// lib/src/op_id.hpp — transport OpIds of the engine's operations.
//
// An OpId is the address of the operation (SendOp, RecvOp, UnexpectedMsg) with
// its kind in the two low bits, so a completion finds its operation without a
// table lookup. Operations must not move while the transport holds their id.
#pragma once

#include <cstdint>

#include "lib/src/matcher.hpp"
#include "lib/src/progress.hpp"
#include "transport/transport.hpp"

namespace cohort::lib {

enum : std::uintptr_t { kOpSend = 0, kOpRecv = 1, kOpUnexpected = 2, kOpMask = 3 };
static_assert(alignof(SendOp) >= 4 && alignof(RecvOp) >= 4 && alignof(UnexpectedMsg) >= 4);

template <class T>
transport::OpId op_id(T* p, std::uintptr_t kind) noexcept {
  return static_cast<transport::OpId>(reinterpret_cast<std::uintptr_t>(p) | kind);
}
template <class T>
T* op_ptr(transport::OpId id) noexcept {
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(id) & ~std::uintptr_t{kOpMask});
}

}  // namespace cohort::lib
