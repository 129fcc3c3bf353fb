// tests/multiproc/tasks/task_common.hpp — what the multi-process tests and
// their task programs (mp_task_*) share: exit codes, tags, data patterns and a
// small frame for a task's main().
//
// A task reports by its exit code and by messages to its parent (the test).
// Exit codes: 0 = all checks passed; kExitUnsupported = "cannot run here" (the
// test skips); the others name what went wrong, with a line on stderr (which
// the daemon forwards to the test's output as "[t<tid>] ...").
//
//   int main(int argc, char** argv) {
//     return cohort::mptest::run_task([&](cohort::Session& s) {
//       cohort::Message m = cohort::mptest::task_recv(s, s.parent(), kTagGo);
//       ...
//       return 0;
//     });
//   }
#pragma once

#include <cohort/cohort.hpp>

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace cohort::mptest {

// ---- exit codes ------------------------------------------------------------
inline constexpr int kExitUnsupported = 77;  // like automake/fabtests: "skip"
inline constexpr int kExitTimeout = 70;      // a bounded wait in the task expired
inline constexpr int kExitBadData = 71;      // a content or identity check failed
inline constexpr int kExitError = 72;        // the library threw
inline constexpr int kExitUsage = 73;        // bad command line

// ---- tags used between the tests and the tasks ------------------------------
inline constexpr int kTagGo = 1;       // test -> task: start / proceed
inline constexpr int kTagReport = 2;   // task -> test: a result
inline constexpr int kTagData = 3;     // payload under test
inline constexpr int kTagAck = 4;      // task -> test: a command finished
inline constexpr int kTagCmd = 5;      // test -> task: a command
inline constexpr int kTagDone = 6;     // task -> test: no more data follows
inline constexpr int kTagReady = 7;    // task -> test: set up, waiting for kTagGo
inline constexpr int kTagToken = 8;    // ring token
inline constexpr int kTagWork = 9;     // master -> worker
inline constexpr int kTagResult = 10;  // worker -> master
inline constexpr int kTagStop = 11;    // master -> worker
inline constexpr int kTagChildExit = 12;  // spawner's exit notifications for its children
/// The tags mp_task_tagger sends, in this order (message i has tag kTaggerTags[i]).
inline constexpr int kTaggerTags[] = {21, 22, 23, 21, 22};

/// How long a task waits for any one message before it gives up (kExitTimeout).
inline constexpr std::chrono::seconds kTaskWait{30};
/// A task that is still alive after this long dies by SIGALRM, so that no task
/// outlives a failed or hung test.
inline constexpr unsigned kTaskAlarmSeconds = 100;

// ---- data patterns ----------------------------------------------------------
/// Byte i of a pattern: depends on the position at several scales, so that a
/// dropped, repeated or shifted chunk of any size is noticed.
inline std::byte pattern_byte(std::size_t i, std::uint32_t seed) noexcept {
  std::uint32_t x = static_cast<std::uint32_t>(i) * 131u + seed * 7919u +
                    static_cast<std::uint32_t>(i >> 8) * 13u +
                    static_cast<std::uint32_t>(i >> 16) * 101u;
  return static_cast<std::byte>((x ^ (x >> 9)) & 0xff);
}
inline void fill_pattern(std::span<std::byte> out, std::uint32_t seed) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern_byte(i, seed);
}
inline std::vector<std::byte> make_pattern(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  fill_pattern(v, seed);
  return v;
}
/// The index of the first byte that differs from the pattern, or -1.
inline long long pattern_mismatch(std::span<const std::byte> in, std::uint32_t seed) noexcept {
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i] != pattern_byte(i, seed)) return static_cast<long long>(i);
  return -1;
}

/// The eager limit the library uses: $COHORT_EAGER_LIMIT, else 64 KiB.
inline std::size_t eager_limit() {
  if (const char* v = std::getenv("COHORT_EAGER_LIMIT"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (end != v && *end == '\0' && n > 0) return static_cast<std::size_t>(n);
  }
  return 64 * 1024;
}

// ---- the frame of a task's main() -------------------------------------------
/// Print `why` on stderr and exit with `code`.
[[noreturn]] inline void task_fail(int code, const std::string& why) {
  std::fprintf(stderr, "task failed (exit %d): %s\n", code, why.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  std::exit(code);
}

/// recv_for with kTaskWait; a timeout ends the task with kExitTimeout.
inline Message task_recv(Session& s, Tid source, int tag) {
  std::optional<Message> m = s.recv_for(source, tag, kTaskWait);
  if (!m)
    task_fail(kExitTimeout, "no message from " + std::to_string(source) + " with tag " +
                                std::to_string(tag) + " within " +
                                std::to_string(kTaskWait.count()) + " s");
  return std::move(*m);
}

/// Check a condition in a task; on failure exit with kExitBadData.
inline void task_check(bool ok, const std::string& what) {
  if (!ok) task_fail(kExitBadData, what);
}

/// Enroll, run `body(session)`, leave, and turn exceptions into exit codes.
template <class Body>
int run_task(Body&& body) {
  ::alarm(kTaskAlarmSeconds);
  int rc = 0;
  try {
    Session s;
    rc = body(s);
  } catch (const Error& e) {
    std::fprintf(stderr, "task failed: cohort::Error %s: %s\n",
                 std::string(errc_name(e.errc())).c_str(), e.what());
    rc = kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "task failed: exception: %s\n", e.what());
    rc = kExitError;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  return rc;
}

}  // namespace cohort::mptest
