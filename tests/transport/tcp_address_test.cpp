// tcp addresses: parsing, printing, lists.
#include <gtest/gtest.h>

#include "transport/tcp/tcp_address.hpp"

namespace cohort::transport::tcp {
namespace {

TEST(TcpAddress, ParsesAndPrintsIpv4AndIpv6) {
  auto a = parse_address_list("tcp:127.0.0.1:4000");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ(format_address((*a)[0]), "tcp:127.0.0.1:4000");
  EXPECT_TRUE((*a)[0].is_loopback());
  EXPECT_EQ((*a)[0].port(), 4000u);

  auto b = parse_address_list("tcp:[::1]:65535,tcp:10.1.2.3:1");
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  ASSERT_EQ(b->size(), 2u);
  EXPECT_EQ(format_address((*b)[0]), "tcp:[::1]:65535");
  EXPECT_EQ(format_address((*b)[1]), "tcp:10.1.2.3:1");
  EXPECT_FALSE((*b)[1].is_loopback());
}

TEST(TcpAddress, RejectsMalformed) {
  for (const char* bad :
       {"", "tcp:", "127.0.0.1:4000", "shm:x", "tcp:127.0.0.1", "tcp:127.0.0.1:", "tcp:127.0.0.1:0",
        "tcp:127.0.0.1:65536", "tcp:127.0.0.1:12x", "tcp:localhost:4000", "tcp:[::1:4000",
        "tcp:1.2.3.4:5,", "tcp:[::1]4000"}) {
    auto r = parse_address_list(bad);
    EXPECT_FALSE(r.is_ok()) << "'" << bad << "' was accepted";
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Errc::kInvalidArgument);
    }
  }
}

TEST(TcpAddress, BindHost) {
  auto any = resolve_bind_host("");
  ASSERT_TRUE(any.is_ok());
  EXPECT_TRUE(any->is_wildcard());
  auto lo = resolve_bind_host("127.0.0.1");
  ASSERT_TRUE(lo.is_ok());
  EXPECT_TRUE(lo->is_loopback());
  EXPECT_EQ(*published_address(*lo), "tcp:127.0.0.1:0");
  auto wild = *any;
  wild.set_port(777);
  std::string list = *published_address(wild);
  EXPECT_NE(list.find("tcp:127.0.0.1:777"), std::string::npos) << list;
  EXPECT_TRUE(parse_address_list(list).is_ok()) << list;
}

// COHORT_IF forces one interface: loopback ("lo") publishes 127.0.0.1 only; an
// interface that does not exist is an error that names it.
TEST(TcpAddress, ForcedInterface) {
  auto wild = *resolve_bind_host("");
  wild.set_port(778);
  auto lo = published_address(wild, "lo");
  ASSERT_TRUE(lo.is_ok()) << lo.status().to_string();
  EXPECT_EQ(*lo, "tcp:127.0.0.1:778");
  auto none = published_address(wild, "nosuchif0");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), Errc::kNotFound);
  EXPECT_NE(none.status().message().find("nosuchif0"), std::string::npos);
  EXPECT_NE(none.status().message().find("COHORT_IF"), std::string::npos);
}

}  // namespace
}  // namespace cohort::transport::tcp
