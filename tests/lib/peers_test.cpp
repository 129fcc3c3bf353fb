// The hello bytes that name a task on the connections it makes.
#include "lib/src/peers.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace cohort::lib {
namespace {

std::span<const std::byte> as_span(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

constexpr std::string_view kCookie = "0123456789abcdef0123456789abcdef";

TEST(PeersHello, RoundTrip) {
  const Tid t = tid::make(5, 42);
  const std::string h = Peers::hello_bytes(t, kCookie);
  EXPECT_EQ(Peers::tid_from_hello(as_span(h), kCookie), t);
}

TEST(PeersHello, RejectsStrangers) {
  EXPECT_EQ(Peers::tid_from_hello({}, kCookie), kNoTid);
  EXPECT_EQ(Peers::tid_from_hello(as_span("GET / HTTP/1.1\r\n"), kCookie), kNoTid);
  std::string h = Peers::hello_bytes(tid::make(1, 1), kCookie);
  EXPECT_EQ(Peers::tid_from_hello(as_span(h.substr(0, 6)), kCookie), kNoTid);  // short
  std::string daemon = Peers::hello_bytes(tid::daemon_of(1), kCookie);
  daemon[7] = '\x80';  // negative: not a valid task id
  EXPECT_EQ(Peers::tid_from_hello(as_span(daemon), kCookie), kNoTid);
}

// Task-to-task connections prove knowledge of the VM's cookie: a hello made
// with another cookie, a token moved to another tid, or a flipped bit is refused.
TEST(PeersHello, TokenMustMatchTheCookieAndTheTid) {
  const Tid t = tid::make(2, 7);
  EXPECT_EQ(Peers::tid_from_hello(as_span(Peers::hello_bytes(t, "another VM")), kCookie), kNoTid);
  std::string moved = Peers::hello_bytes(t, kCookie);
  moved[4] = static_cast<char>(moved[4] + 1);  // claims another tid with t's token
  EXPECT_EQ(Peers::tid_from_hello(as_span(moved), kCookie), kNoTid);
  std::string flipped = Peers::hello_bytes(t, kCookie);
  flipped.back() = static_cast<char>(flipped.back() ^ 1);
  EXPECT_EQ(Peers::tid_from_hello(as_span(flipped), kCookie), kNoTid);
  std::string tokenless = Peers::hello_bytes(t, kCookie).substr(0, 10);
  tokenless[8] = tokenless[9] = '\0';  // the old, token-less hello
  EXPECT_EQ(Peers::tid_from_hello(as_span(tokenless), kCookie), kNoTid);
}

TEST(PeersHello, TidNames) {
  EXPECT_EQ(tid_name(tid::make(1, 0x2a)), "t10002a");
}

}  // namespace
}  // namespace cohort::lib
