// cohort/errc.hpp — the one list of error codes used by every layer of cohort.
//
// Codes are grouped by what they take down (callers' mistakes, transient
// conditions, one peer, a host or the whole VM, internal faults). The list is
// written once as an X-macro so that names, messages and the C API's negative
// numbers (cohort.h: COHORT_E* == -value) all come from the same table.
//
//   std::error_code ec = cohort::Errc::kNoSuchTask;   // works via make_error_code
//   ec.message();                                     // "no such task"
#pragma once

#include <string_view>
#include <system_error>

// X(name, value, message)
#define COHORT_ERRC_LIST(X)                                                          \
  X(kOk, 0, "success")                                                               \
  /* The caller's mistake: fix the call. */                                          \
  X(kInvalidArgument, 1, "invalid argument")                                         \
  X(kNoSuchTask, 2, "no such task")                                                  \
  X(kNoSuchHost, 3, "no such host")                                                  \
  X(kUnsupported, 4, "operation not supported")                                      \
  X(kNotEnrolled, 5, "not enrolled in a virtual machine")                            \
  X(kNoVm, 6, "no virtual machine is running")                                       \
  X(kTruncated, 7, "message truncated")                                              \
  X(kTypeMismatch, 8, "type mismatch")                                               \
  X(kNotFound, 9, "not found")                                                       \
  X(kPermissionDenied, 10, "permission denied")                                      \
  X(kAlreadyExists, 11, "already exists")                                            \
  X(kBadProgram, 12, "program cannot be started")                                    \
  /* Transient: try again, or wait longer. */                                        \
  X(kRetry, 20, "resource temporarily unavailable, try again")                       \
  X(kTimeout, 21, "timed out")                                                       \
  X(kCanceled, 22, "canceled")                                                       \
  /* One peer is gone. */                                                            \
  X(kPeerLost, 30, "peer lost")                                                      \
  /* A host, the local daemon or the whole VM is gone. */                            \
  X(kHostLost, 40, "host lost")                                                      \
  X(kDaemonLost, 41, "connection to the local daemon lost")                          \
  X(kVmHalted, 42, "virtual machine halted")                                         \
  X(kAuthFailed, 43, "authentication failed")                                        \
  /* Internal: a bug or a broken peer speaking nonsense. */                          \
  X(kProtocolError, 50, "protocol error")                                            \
  X(kIoError, 51, "I/O error")                                                       \
  X(kInternal, 52, "internal error")                                                 \
  X(kOutOfMemory, 53, "out of memory")

namespace cohort {

enum class Errc : int {
#define COHORT_ERRC_ENUM(name, value, msg) name = value,
  COHORT_ERRC_LIST(COHORT_ERRC_ENUM)
#undef COHORT_ERRC_ENUM
};

/// "kNoSuchTask" -> "no such task"; unknown values give "unknown error".
std::string_view errc_message(Errc code) noexcept;
/// The enumerator's name without the k, e.g. "NoSuchTask".
std::string_view errc_name(Errc code) noexcept;
/// True for codes that are worth retrying (kRetry, kTimeout).
constexpr bool errc_is_transient(Errc c) noexcept {
  return c == Errc::kRetry || c == Errc::kTimeout;
}

const std::error_category& cohort_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), cohort_category()};
}

}  // namespace cohort

template <>
struct std::is_error_code_enum<cohort::Errc> : std::true_type {};
