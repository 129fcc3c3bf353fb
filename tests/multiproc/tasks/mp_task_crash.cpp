// mp_task_crash ACTION [CODE]: tells its parent {int32 pid} on kTagReady, waits
// for kTagGo, then
//   abort  -> std::abort() (SIGABRT)
//   segv   -> writes through a null pointer (SIGSEGV)
//   exit   -> exits with CODE
//   hang   -> waits until a signal ends it (at the latest SIGALRM)
//   isend-abort SIZE -> starts sending SIZE pattern bytes (seed SIZE) to its
//             parent on kTagData, then aborts while the send is in flight
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

namespace {

[[noreturn]] void crash(const std::string& action, int code) {
  if (action == "exit") std::exit(code);
  // No core files from crashes we cause on purpose; the default action of the
  // signal, not a sanitizer's handler, must end the process.
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  if (action == "abort") {
    ::signal(SIGABRT, SIG_DFL);
    std::abort();
  }
  if (action == "segv") {
    ::signal(SIGSEGV, SIG_DFL);
    volatile int* p = nullptr;
    *p = 1;
  }
  for (;;) ::pause();  // "hang"
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) task_fail(kExitUsage, "usage: mp_task_crash abort|segv|exit CODE|hang");
  const std::string action = argv[1];
  const int code = argc > 2 ? std::atoi(argv[2]) : 1;
  int rc = run_task([&](cohort::Session& s) {
    cohort::Message ready;
    ready << static_cast<std::int32_t>(::getpid());
    s.send(s.parent(), kTagReady, ready);
    task_recv(s, s.parent(), kTagGo);
    if (action == "isend-abort") {
      std::vector<std::byte> data = make_pattern(static_cast<std::size_t>(code),
                                                 static_cast<std::uint32_t>(code));
      cohort::Request r = s.isend(s.parent(), kTagData, std::span<const std::byte>(data));
      crash("abort", 0);
    }
    // Crash while still enrolled: the daemon must notice without a goodbye.
    crash(action, code);
    return 0;
  });
  return rc;
}
