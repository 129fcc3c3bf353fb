#include "daemon/hostfile.hpp"

#include <gtest/gtest.h>

namespace cohort::daemon {
namespace {

TEST(DaemonHostfile, HostsOptionsCommentsDefaultsAndRanges) {
  auto r = parse_hostfile(
      "# the cluster\n"
      "\n"
      "*      slots=4\n"
      "node1\n"
      "node2  slots=8 wdir=/scratch/me path=/opt/app/bin:/usr/bin   # big one\n"
      "gpu[1-2] agent='ip netns exec {host}' wd=\"/w d\" ep=/x\n",
      "hosts.txt");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].name, "node1");
  EXPECT_EQ((*r)[0].slots, 4);
  EXPECT_EQ((*r)[0].line, 4);
  EXPECT_EQ((*r)[1].slots, 8);
  EXPECT_EQ((*r)[1].wdir, "/scratch/me");
  EXPECT_EQ((*r)[1].path, "/opt/app/bin:/usr/bin");
  EXPECT_EQ((*r)[2].name, "gpu1");
  EXPECT_EQ((*r)[3].name, "gpu2");
  EXPECT_EQ((*r)[3].agent, "ip netns exec {host}");
  EXPECT_EQ((*r)[3].wdir, "/w d");
  EXPECT_EQ((*r)[3].path, "/x");
  EXPECT_EQ((*r)[3].slots, 4);
}

TEST(DaemonHostfile, ErrorsNameFileLineAndRemedy) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"a\nb slots=zero\n", "hosts:2: slots must be a positive whole number, got 'zero'"},
      {"a colour=red\n", "hosts:1: unknown option 'colour'"},
      {"a\n\na\n", "hosts:3: host 'a' is listed twice"},
      {"a agent='ip netns exec\n", "hosts:1: unterminated ' quote"},
      {"slots=3\n", "hosts:1: a line must start with a host name"},
      {"n[3-1]\n", "hosts:1: host list 'n[3-1]': bad range"},
      {"a b\n", "hosts:1: 'b' is not an option"},
  };
  for (auto& c : cases) {
    auto r = parse_hostfile(c.text, "hosts");
    ASSERT_FALSE(r.is_ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos)
        << "for:\n" << c.text << "got: " << r.status().message();
  }
}

TEST(DaemonHostfile, MissingFile) {
  auto r = read_hostfile("/nonexistent/hosts");
  EXPECT_EQ(r.status().code(), Errc::kNotFound);
}

TEST(DaemonHostfile, SlurmHostLists) {
  auto r = expand_host_list("n[01-03,7],gpu9,x[2]y");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, (std::vector<std::string>{"n01", "n02", "n03", "n7", "gpu9", "x2y"}));
  EXPECT_FALSE(expand_host_list("n[1-").is_ok());
  EXPECT_FALSE(expand_host_list("n[a-b]").is_ok());
}

}  // namespace
}  // namespace cohort::daemon
