// The registry: the explicit list, find(), and COHORT_TRANSPORTS parsing.
#include <cstdlib>

#include <gtest/gtest.h>

#include "transport/registry.hpp"

namespace cohort::transport {
namespace {

std::vector<std::string_view> names(const std::vector<Transport*>& v) {
  std::vector<std::string_view> out;
  for (Transport* t : v) out.push_back(t->name());
  return out;
}

TEST(Registry, AllListsTcpButNotLoop) {
  bool tcp = false;
  for (Transport* t : all()) {
    ASSERT_NE(t, nullptr);
    EXPECT_NE(t->name(), "loop");
    tcp |= t->name() == "tcp";
  }
  EXPECT_TRUE(tcp);
}

TEST(Registry, Find) {
  ASSERT_NE(find("tcp"), nullptr);
  EXPECT_EQ(find("tcp")->name(), "tcp");
  ASSERT_NE(find("loop"), nullptr);
  EXPECT_EQ(find("loop")->name(), "loop");
  EXPECT_EQ(find("carrier-pigeon"), nullptr);
  EXPECT_EQ(find(""), nullptr);
}

TEST(Registry, ParseEnabled) {
  auto every = parse_enabled("");
  ASSERT_TRUE(every.is_ok());
  EXPECT_EQ(every->size(), all().size());
  auto blanks = parse_enabled(" , ,");
  ASSERT_TRUE(blanks.is_ok());
  EXPECT_EQ(blanks->size(), all().size());

  auto tcp = parse_enabled(" tcp ");
  ASSERT_TRUE(tcp.is_ok());
  EXPECT_EQ(names(*tcp), std::vector<std::string_view>{"tcp"});

  auto twice = parse_enabled("loop,tcp,tcp");
  ASSERT_TRUE(twice.is_ok());
  EXPECT_EQ(names(*twice), (std::vector<std::string_view>{"tcp", "loop"}))
      << "registry order, duplicates dropped, loop last";
}

TEST(Registry, UnknownNameIsAnError) {
  auto r = parse_enabled("tcp,bogus");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
  const std::string m = r.status().message();
  EXPECT_NE(m.find("'bogus'"), std::string::npos) << m;
  EXPECT_NE(m.find("COHORT_TRANSPORTS"), std::string::npos) << m;
  EXPECT_NE(m.find("tcp"), std::string::npos) << "lists the valid names: " << m;
}

TEST(Registry, EnabledReadsTheEnvironment) {
  ::setenv("COHORT_TRANSPORTS", "tcp", 1);
  auto r = enabled();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(names(*r), std::vector<std::string_view>{"tcp"});
  ::setenv("COHORT_TRANSPORTS", "ib", 1);
  EXPECT_FALSE(enabled().is_ok());
  ::unsetenv("COHORT_TRANSPORTS");
  r = enabled();
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->size(), all().size());
}

}  // namespace
}  // namespace cohort::transport
