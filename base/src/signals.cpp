#include "base/signals.hpp"

#include <dlfcn.h>
#include <signal.h>

#include <cstring>

namespace cohort {

int reset_foreign_handlers() noexcept {
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGFPE};
  static constexpr const char* kOffenders[] = {"libinfinipath.so"};
  int reset = 0;
  for (int sig : kSignals) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    void* handler = (old.sa_flags & SA_SIGINFO) != 0 ? reinterpret_cast<void*>(old.sa_sigaction)
                                                     : reinterpret_cast<void*>(old.sa_handler);
    if (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN) continue;
    Dl_info info{};
    if (::dladdr(handler, &info) == 0 || info.dli_fname == nullptr) continue;
    for (const char* lib : kOffenders) {
      if (std::strstr(info.dli_fname, lib) == nullptr) continue;
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigemptyset(&dfl.sa_mask);
      if (::sigaction(sig, &dfl, nullptr) == 0) ++reset;
    }
  }
  return reset;
}

}  // namespace cohort
