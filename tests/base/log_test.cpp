#include "base/log.hpp"

#include <gtest/gtest.h>

namespace cohort::log {
namespace {

TEST(Log, SubsystemRules) {
  configure("transport:debug,daemon.spawn:trace");
  EXPECT_TRUE(enabled(Level::kDebug, "transport"));
  EXPECT_TRUE(enabled(Level::kDebug, "transport.tcp"));
  EXPECT_FALSE(enabled(Level::kDebug, "transports"));  // a prefix must end at a dot
  EXPECT_FALSE(enabled(Level::kDebug, "daemon"));
  EXPECT_TRUE(enabled(Level::kTrace, "daemon.spawn"));
  EXPECT_TRUE(enabled(Level::kWarn, "lib"));
  configure("error");
  EXPECT_FALSE(enabled(Level::kWarn, "lib"));
  EXPECT_TRUE(enabled(Level::kError, "lib"));
  configure("");
  EXPECT_TRUE(enabled(Level::kWarn, "lib"));
  EXPECT_FALSE(enabled(Level::kInfo, "lib"));
}

}  // namespace
}  // namespace cohort::log
