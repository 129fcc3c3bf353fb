// tests/daemon/daemon_fixture.hpp — a fresh cohortd per test, and raw clients for it.
//
// TearDown fails the test when the daemon's log holds an error line the test
// did not declare (daemon_->expect_error("...")).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "base/env.hpp"
#include "proto/messages.hpp"
#include "tests/daemon/raw_client.hpp"
#include "tests/support/daemon_harness.hpp"

/// `lhs = value of expr`, or fail the test with its status.
#define ASSIGN_OR_FAIL(lhs, expr) \
  ASSIGN_OR_FAIL_IMPL(COHORT_STATUS_CONCAT(res_, __LINE__), lhs, expr)
#define ASSIGN_OR_FAIL_IMPL(tmp, lhs, expr)                              \
  auto tmp = (expr);                                                     \
  ASSERT_TRUE(tmp.is_ok()) << #expr << ": " << tmp.status().to_string(); \
  lhs = std::move(tmp).value()

namespace cohort::testing {

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = DaemonProcess::start(dir_.path());
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    daemon_ = std::move(d).value();
    auto c = env::read_cookie(dir_.path());
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    cookie_ = *c;
  }
  void TearDown() override {
    if (!daemon_) return;
    std::string all;
    for (const auto& line : daemon_->unexpected_errors()) all += line + "\n";
    EXPECT_TRUE(all.empty()) << "unexpected error lines in the daemon's log:\n" << all;
  }

  Result<RawClient> connect() { return RawClient::connect(daemon_->socket_path()); }
  /// A connected, enrolled (hand-started) client.
  Result<RawClient> enrolled(bool is_tool = false) {
    COHORT_ASSIGN_OR_RETURN(RawClient c, connect());
    COHORT_ASSIGN_OR_RETURN(proto::Welcome w, c.hello(cookie_, kNoTid, is_tool));
    if (w.status.code != 0) return Status(static_cast<Errc>(w.status.code), w.status.message);
    me_ = w.tid;
    return c;
  }
  /// A Spawn request for `program args...` with output forwarded.
  static proto::Spawn spawn_req(const std::string& program, std::vector<std::string> args = {},
                                int count = 1, std::int32_t exit_tag = proto::kNoTag) {
    proto::Spawn s;
    s.req = next_req();
    s.program = program;
    s.args = std::move(args);
    s.count = count;
    s.exit_tag = exit_tag;
    return s;
  }
  static std::uint32_t next_req() {
    static std::uint32_t n = 100;
    return ++n;
  }
  /// True while some process of this host has `pid` and is not a zombie.
  static bool process_alive(pid_t pid);

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string cookie_;
  Tid me_ = kNoTid;
};

inline bool DaemonTest::process_alive(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[512] = {};
  std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, n);
  auto paren = s.rfind(')');
  return paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] != 'Z';
}

}  // namespace cohort::testing
