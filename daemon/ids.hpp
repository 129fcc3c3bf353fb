// daemon/ids.hpp — how the daemon writes ids in log lines and error messages.
//
// Tids are written in hex with a 't' prefix ("t0x100003"): the host index is
// then readable at a glance (0x1xxxxx = host 1), and it is the form the
// library's log lines use too.
#pragma once

#include <cohort/tid.hpp>

#include <cstdio>
#include <string>

namespace cohort::daemon {

inline std::string tid_name(Tid t) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "t0x%x", static_cast<unsigned>(t));
  return buf;
}

}  // namespace cohort::daemon
