#include <gtest/gtest.h>

#include <cstdlib>

#include "proto/auth.hpp"
#include "daemon/launch_agent.hpp"

namespace cohort::daemon {
namespace {

TEST(DaemonAuth, ResponsesVerifyOnlyWithTheRightCookieAndContext) {
  std::string cookie(32, 'k');
  auto c = auth::make_challenge();
  ASSERT_TRUE(c.is_ok());
  auto c2 = auth::make_challenge();
  ASSERT_TRUE(c2.is_ok());
  EXPECT_NE(*c, *c2);  // 256 random bits twice the same would be a broken generator
  auth::Mac m = auth::respond(cookie, *c, auth::kDialContext);
  EXPECT_TRUE(auth::verify(cookie, *c, auth::kDialContext, m));
  EXPECT_FALSE(auth::verify(std::string(32, 'x'), *c, auth::kDialContext, m));  // wrong cookie
  EXPECT_FALSE(auth::verify(cookie, *c, auth::kAcceptContext, m));            // reflected
  EXPECT_FALSE(auth::verify(cookie, *c2, auth::kDialContext, m));             // replayed
  auth::Mac bad = m;
  bad[5] ^= 1;
  EXPECT_FALSE(auth::verify(cookie, *c, auth::kDialContext, bad));
  EXPECT_FALSE(auth::verify(cookie, *c, auth::kDialContext, std::span(m.data(), 31)));
}

TEST(DaemonAuth, HmacMatchesAKnownAnswer) {
  // HMAC-SHA256(key "Jefe", "cohort/1 dial" || bytes 0..31), computed
  // independently with Python's hmac module.
  auth::Challenge ch{};
  for (std::size_t i = 0; i < ch.size(); ++i) ch[i] = static_cast<std::uint8_t>(i);
  auth::Mac m = auth::respond("Jefe", ch, auth::kDialContext);
  static const char kHex[] = "084f6d2c89f733f9569ffb7882af7e17cbbfa134ba18efecb2d25b99b4986ac3";
  std::string got;
  for (std::uint8_t b : m) {
    got.push_back("0123456789abcdef"[b >> 4]);
    got.push_back("0123456789abcdef"[b & 15]);
  }
  EXPECT_EQ(got, kHex);
}

TEST(DaemonAuth, TaskTokensDifferPerTidAndCookie) {
  std::string cookie(32, 'k');
  EXPECT_EQ(auth::task_token(cookie, 0x100001), auth::task_token(cookie, 0x100001));
  EXPECT_NE(auth::task_token(cookie, 0x100001), auth::task_token(cookie, 0x100002));
  EXPECT_NE(auth::task_token(cookie, 0x100001), auth::task_token(std::string(32, 'j'), 0x100001));
}

TEST(DaemonLaunchAgent, SshIsBatchModeAndQuotesTheRemoteCommand) {
  auto a = parse_launch_agent("ssh");
  ASSERT_TRUE(a.is_ok());
  auto argv = launch_argv(*a, "node7", {"/opt/cohort/bin/cohortd", "--join", "it's here"});
  ASSERT_GE(argv.size(), 3u);
  EXPECT_EQ(argv[0], "ssh");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "BatchMode=yes"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "node7"), argv.end());
  EXPECT_EQ(argv.back(), "'/opt/cohort/bin/cohortd' '--join' 'it'\\''s here'");
}

TEST(DaemonLaunchAgent, TemplatesSubstituteTheHostAndAppendTheCommand) {
  auto a = parse_launch_agent("tests/netns/netns_exec.sh \"pre fix\" {host}");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  auto argv = launch_argv(*a, "h2", {"cohortd", "--dir", "/d"});
  EXPECT_EQ(argv, (std::vector<std::string>{"tests/netns/netns_exec.sh", "pre fix", "h2", "cohortd",
                                            "--dir", "/d"}));
  auto none = parse_launch_agent("ip netns exec");
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("{host}"), std::string::npos);
  EXPECT_FALSE(parse_launch_agent("sh -c 'unterminated {host}").is_ok());
}

TEST(DaemonLaunchAgent, SlurmInsideAnAllocation) {
  ::setenv("SLURM_JOB_NODELIST", "n[1-2]", 1);
  EXPECT_EQ(default_launch_agent().kind, LaunchAgent::Kind::kSlurm);
  ::unsetenv("SLURM_JOB_NODELIST");
  EXPECT_EQ(default_launch_agent().kind, LaunchAgent::Kind::kSsh);
  auto a = parse_launch_agent("slurm");
  ASSERT_TRUE(a.is_ok());
  auto argv = launch_argv(*a, "n2", {"cohortd"});
  EXPECT_EQ(argv.front(), "srun");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--nodelist=n2"), argv.end());
  EXPECT_EQ(argv.back(), "cohortd");
}

TEST(DaemonLaunchAgent, SplitWordsLikeAShell) {
  auto w = split_words(R"(a 'b c' "d \"e\"" f\ g)");
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(*w, (std::vector<std::string>{"a", "b c", "d \"e\"", "f g"}));
  EXPECT_EQ(shell_quote("x'y"), "'x'\\''y'");
}

}  // namespace
}  // namespace cohort::daemon
