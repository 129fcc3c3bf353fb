#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "daemon/spawner.hpp"
#include "tests/support/daemon_harness.hpp"

namespace cohort::daemon {
namespace {

class DaemonProgramLookup : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directory(dir_.path() + "/bin");
    make(dir_.path() + "/bin/tool", 0700);
    make(dir_.path() + "/bin/plain", 0600);
  }
  static void make(const std::string& path, mode_t mode) {
    std::ofstream(path) << "#!/bin/sh\n";
    ::chmod(path.c_str(), mode);
  }
  testing::TempDir dir_;
};

TEST_F(DaemonProgramLookup, BareNameIsSearchedInPath) {
  auto rel = find_program("tool", dir_.path(), "bin");  // a relative PATH entry: under cwd
  ASSERT_TRUE(rel.is_ok()) << rel.status().to_string();
  EXPECT_EQ(*rel, dir_.path() + "/bin/tool");
  auto p = find_program("tool", "/", "/nonexistent:" + dir_.path() + "/bin");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(*p, dir_.path() + "/bin/tool");
}

TEST_F(DaemonProgramLookup, MissingNameSaysWhereItLooked) {
  auto p = find_program("nothere", "/", "/usr/bin:/bin");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), Errc::kBadProgram);
  EXPECT_EQ(p.status().message(), "program 'nothere' not found in PATH (/usr/bin:/bin)");
}

TEST_F(DaemonProgramLookup, NotExecutableIsPermissionDenied) {
  auto p = find_program("plain", "/", dir_.path() + "/bin");
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().message(), "program 'plain': Permission denied");
  auto q = find_program(dir_.path() + "/bin", "/", "");
  EXPECT_NE(q.status().message().find("Is a directory"), std::string::npos) << q.status().message();
}

TEST_F(DaemonProgramLookup, PathsWithASlashAreRelativeToCwd) {
  // Checked relative to cwd, and executed as given once the task is there
  // (so that a script's $0 is what the user typed).
  auto p = find_program("bin/tool", dir_.path(), "");
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(*p, "bin/tool");
  auto q = find_program("./bin/none", dir_.path(), "");
  EXPECT_EQ(q.status().message(), "program './bin/none': No such file or directory");
}

}  // namespace
}  // namespace cohort::daemon
