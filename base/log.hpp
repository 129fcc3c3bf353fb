// base/log.hpp — levelled, per-subsystem logging to stderr (or a file).
//
// Debug output is compiled in and off by default; COHORT_LOG chooses it at run
// time: "debug" (everything), "transport:debug,daemon:info", "warn". A
// subsystem matches its own name and every name below it ("transport" covers
// "transport.tcp"). Each line is written with one write(2), so lines from
// several processes sharing a log file do not interleave.
//
//   COHORT_LOG_INFO("daemon.spawn") << "started " << program << " as tid " << tid;
//   COHORT_LOG_DEBUG("transport.tcp") << "connect " << addr;   // costs a compare when off
#pragma once

#include <sstream>
#include <string_view>

namespace cohort::log {

enum class Level : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kOff = 5 };

/// True when a line of `level` for `subsystem` would be written.
bool enabled(Level level, std::string_view subsystem) noexcept;
/// Re-read COHORT_LOG (or use `spec`); tests and the daemon's --log flag call this.
void configure(std::string_view spec);
/// Send log lines to `fd` instead of stderr (the daemon uses its log file).
void set_fd(int fd) noexcept;
/// A tag put in every line, e.g. "cohortd[1]" or "t0x100001".
void set_process_tag(std::string_view tag);

class Line {
 public:
  Line(Level level, std::string_view subsystem, const char* file, int line);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  template <class T>
  Line& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  std::ostringstream out_;
};

}  // namespace cohort::log

#define COHORT_LOG_AT(level, subsystem)                                 \
  if (!::cohort::log::enabled(::cohort::log::Level::level, subsystem)) \
    ;                                                                   \
  else                                                                  \
    ::cohort::log::Line(::cohort::log::Level::level, subsystem, __FILE__, __LINE__)

#define COHORT_LOG_TRACE(subsystem) COHORT_LOG_AT(kTrace, subsystem)
#define COHORT_LOG_DEBUG(subsystem) COHORT_LOG_AT(kDebug, subsystem)
#define COHORT_LOG_INFO(subsystem) COHORT_LOG_AT(kInfo, subsystem)
#define COHORT_LOG_WARN(subsystem) COHORT_LOG_AT(kWarn, subsystem)
#define COHORT_LOG_ERROR(subsystem) COHORT_LOG_AT(kError, subsystem)

/// Our own invariants only — never input from users, files or the wire.
#define COHORT_CHECK(cond)                                                         \
  do {                                                                             \
    if (!(cond)) ::cohort::log::check_failed(#cond, __FILE__, __LINE__);           \
  } while (0)

namespace cohort::log {
[[noreturn]] void check_failed(const char* cond, const char* file, int line) noexcept;
}
