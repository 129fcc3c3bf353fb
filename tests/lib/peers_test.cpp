// The hello bytes that name a task on the connections it makes.
#include "lib/src/peers.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace cohort::lib {
namespace {

std::span<const std::byte> as_span(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

TEST(PeersHello, RoundTrip) {
  const Tid t = tid::make(5, 42);
  const std::string h = Peers::hello_bytes(t);
  EXPECT_EQ(Peers::tid_from_hello(as_span(h)), t);
}

TEST(PeersHello, RejectsStrangers) {
  EXPECT_EQ(Peers::tid_from_hello({}), kNoTid);
  EXPECT_EQ(Peers::tid_from_hello(as_span("GET / HTTP/1.1\r\n")), kNoTid);
  std::string h = Peers::hello_bytes(tid::make(1, 1));
  EXPECT_EQ(Peers::tid_from_hello(as_span(h.substr(0, 6))), kNoTid);  // short
  std::string daemon = Peers::hello_bytes(tid::daemon_of(1));
  daemon[7] = '\x80';  // negative: not a valid task id
  EXPECT_EQ(Peers::tid_from_hello(as_span(daemon)), kNoTid);
}

TEST(PeersHello, TidNames) {
  EXPECT_EQ(tid_name(tid::make(1, 0x2a)), "t10002a");
}

}  // namespace
}  // namespace cohort::lib
