// What dead tasks leave in /dev/shm: only the reaped pid's libfabric regions go.
#include "daemon/leftovers.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/daemon_harness.hpp"

namespace cohort::daemon {
namespace {

namespace fs = std::filesystem;

TEST(ShmLeftovers, OnlyTheDeadPidsRegionsAreRemoved) {
  testing::TempDir dir;
  for (const char* name : {"4242:0:0", "4242:1:3", "42420:0:0", "424:0:0", "4242:x:0", "4242-0-0",
                           "4242:0", "ucx_shm_posix_4242", "other"})
    std::ofstream(dir.path() + "/" + name) << "x";
  fs::create_directory(dir.path() + "/4242:9:9");  // not a regular file: kept
  EXPECT_EQ(remove_shm_leftovers(4242, dir.path()), 2);
  EXPECT_FALSE(fs::exists(dir.path() + "/4242:0:0"));
  EXPECT_FALSE(fs::exists(dir.path() + "/4242:1:3"));
  for (const char* kept : {"42420:0:0", "424:0:0", "4242:x:0", "4242-0-0", "4242:0",
                           "ucx_shm_posix_4242", "other", "4242:9:9"})
    EXPECT_TRUE(fs::exists(dir.path() + "/" + kept)) << kept;
  EXPECT_EQ(remove_shm_leftovers(4242, dir.path() + "/missing"), 0);
}

}  // namespace
}  // namespace cohort::daemon
