#include "base/env.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include <cohort/tid.hpp>

namespace cohort {
namespace {

TEST(Tid, Layout) {
  Tid t = tid::make(3, 17);
  EXPECT_GT(t, 0);
  EXPECT_EQ(tid::host_of(t), 3u);
  EXPECT_EQ(tid::local_of(t), 17u);
  EXPECT_TRUE(tid::valid(t));
  EXPECT_TRUE(tid::is_daemon(tid::daemon_of(3)));
  EXPECT_FALSE(tid::is_daemon(t));
  EXPECT_GT(tid::make(tid::kMaxHost, tid::kLocalMask), 0);  // bit 31 stays clear
  EXPECT_FALSE(tid::valid(kAnyTid));
}

TEST(Env, VmDirIsPrivateAndCookieIs0600) {
  std::string tmp = std::filesystem::temp_directory_path() / ("cohort-env-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(tmp);
  ::setenv(env::kDir, tmp.c_str(), 1);
  auto dir = env::vm_dir("x", true);
  ASSERT_TRUE(dir.is_ok()) << dir.status().to_string();
  struct stat st {};
  ASSERT_EQ(::stat(dir->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  EXPECT_EQ(env::read_cookie(*dir).status().code(), Errc::kNoVm);
  auto made = env::create_cookie(*dir);
  ASSERT_TRUE(made.is_ok());
  auto read = env::read_cookie(*dir);
  ASSERT_TRUE(read.is_ok());
  EXPECT_EQ(*read, *made);
  EXPECT_EQ(read->size(), env::kCookieBytes);
  ASSERT_EQ(::stat(env::path_in(*dir, env::kCookieName).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::chmod(env::path_in(*dir, env::kCookieName).c_str(), 0644);
  EXPECT_EQ(env::read_cookie(*dir).status().code(), Errc::kPermissionDenied);

  EXPECT_EQ(env::vm_dir("../evil", false).status().code(), Errc::kInvalidArgument);
  ::unsetenv(env::kDir);
  std::filesystem::remove_all(tmp);
}

TEST(Env, GetIntRejectsGarbage) {
  ::setenv("COHORT_TEST_INT", "12x", 1);
  EXPECT_EQ(env::get_int("COHORT_TEST_INT", 5).status().code(), Errc::kInvalidArgument);
  ::setenv("COHORT_TEST_INT", "-12", 1);
  EXPECT_EQ(*env::get_int("COHORT_TEST_INT", 5), -12);
  ::unsetenv("COHORT_TEST_INT");
  EXPECT_EQ(*env::get_int("COHORT_TEST_INT", 5), 5);
}

}  // namespace
}  // namespace cohort
