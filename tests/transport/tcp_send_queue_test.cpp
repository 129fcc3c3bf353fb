// The tcp send queue: partial writes resume exactly where they stopped, frames
// finish in order, and storage is reused.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "transport/tcp/tcp_send_queue.hpp"

namespace cohort::transport::tcp {
namespace {

std::string gathered(SendQueue& q, std::size_t limit = SIZE_MAX) {
  iovec iov[64];
  std::size_t bytes = 0;
  std::size_t n = q.gather(iov, &bytes, limit);
  std::string s;
  for (std::size_t i = 0; i < n; ++i)
    s.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  EXPECT_EQ(s.size(), bytes);
  return s;
}

TEST(TcpSendQueue, ResumesPartialFramesInOrder) {
  SendQueue q;
  std::string h1 = "HH", p1a = "abc", p1b = "", p1c = "de", h2 = "", p2 = "xyz";
  std::byte prefix[kPrefixSize];
  for (auto& b : prefix) b = std::byte{'P'};
  iovec v1[] = {{p1a.data(), p1a.size()}, {p1b.data(), 0}, {p1c.data(), p1c.size()}};
  iovec v2[] = {{p2.data(), p2.size()}};
  auto span_of = [](std::string& s) {
    return std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size());
  };
  q.push(prefix, Frame{span_of(h1), v1}, 1, false, 5);  // 5 prefix bytes already sent
  q.push(prefix, Frame{span_of(h2), v2}, 2, true, 0);
  const std::string p16(kPrefixSize, 'P');
  EXPECT_EQ(gathered(q), p16.substr(5) + "HHabcde" + p16 + "xyz");
  // A limit cuts inside an iovec and describes no more than it allows.
  EXPECT_EQ(gathered(q, 11 + 3), p16.substr(5) + "HHa");
  EXPECT_EQ(gathered(q, 0), "");

  std::vector<std::pair<OpId, bool>> done;
  auto record = [&](OpId op, bool internal) { done.emplace_back(op, internal); };
  q.advance(11 + 3, record);  // rest of the prefix, "HH", "a"
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(gathered(q), "bcde" + p16 + "xyz");
  q.advance(4, record);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0], std::make_pair(OpId{1}, false));
  q.advance(kPrefixSize + 3, record);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1], std::make_pair(OpId{2}, true));
  EXPECT_TRUE(q.empty());
}

TEST(TcpSendQueue, GrowsAndClearsInOrder) {
  SendQueue q;
  std::byte prefix[kPrefixSize] = {};
  for (OpId op = 0; op < 100; ++op) q.push(prefix, Frame{}, op, false, 0);
  q.advance(kPrefixSize * 10, [](OpId, bool) {});
  EXPECT_EQ(q.size(), 90u);
  std::vector<OpId> cleared;
  q.clear([&](OpId op, bool) { cleared.push_back(op); });
  ASSERT_EQ(cleared.size(), 90u);
  for (std::size_t i = 0; i < cleared.size(); ++i) EXPECT_EQ(cleared[i], 10 + i);
}

}  // namespace
}  // namespace cohort::transport::tcp
