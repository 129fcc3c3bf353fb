// Error paths driven by the loop transport's Injector, and loop endpoints used
// from two threads.
#include <poll.h>

#include <thread>

#include <gtest/gtest.h>

#include "tests/transport/conformance_harness.hpp"
#include "transport/loop/loop_endpoint.hpp"
#include "transport/loop/loop_transport.hpp"
#include "transport/tcp/tcp_transport.hpp"

namespace cohort::transport::loop {
namespace {

using testing::pump;
using testing::Side;

std::unique_ptr<Side> open_side(std::string hello = "") {
  EndpointOptions o;
  o.hello = std::move(hello);
  auto ep = transport().open(o);
  EXPECT_TRUE(ep.is_ok()) << ep.status().to_string();
  return std::make_unique<Side>(std::move(*ep));
}

Result<Progress> send_bytes(Side& s, PeerId to, OpId op, const std::vector<std::byte>& payload) {
  static const std::vector<std::byte> header(8, std::byte{1});
  iovec v{const_cast<std::byte*>(payload.data()), payload.size()};
  return s.ep().send(to, Frame{header, {&v, 1}}, op);
}

TEST(LoopInjector, OnlyLoopEndpointsHaveOne) {
  auto a = open_side();
  EXPECT_NE(injector(a->ep()), nullptr);
  auto t = tcp::transport().open({});
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(injector(**t), nullptr);
}

TEST(LoopInjector, FailNextSend) {
  auto a = open_side(), b = open_side();
  PeerId p = *a->ep().connect(b->ep().address());
  std::vector<std::byte> one(10, std::byte{1}), two(20, std::byte{2});
  injector(a->ep())->fail_next_send(Status(Errc::kIoError, "injected"));
  auto r = send_bytes(*a, p, 1, one);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, Progress::kPending);
  auto r2 = send_bytes(*a, p, 2, two);
  ASSERT_TRUE(r2.is_ok());
  EXPECT_EQ(*r2, Progress::kDone);
  ASSERT_TRUE(
      pump({a.get(), b.get()}, [&] { return b->frames.size() == 1 && a->sends_done.size() == 1; }));
  EXPECT_EQ(a->sends_done[1].code(), Errc::kIoError);
  EXPECT_EQ(b->frames[0].payload, two) << "the failed frame is not delivered";
  EXPECT_TRUE(a->down.empty());
}

TEST(LoopInjector, DropPeerTakesDownBothEnds) {
  auto a = open_side(), b = open_side();
  PeerId p = *a->ep().connect(b->ep().address());
  std::vector<std::byte> one(10);
  ASSERT_TRUE(send_bytes(*a, p, 1, one).is_ok());
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return b->frames.size() == 1; }));
  injector(a->ep())->drop_peer(p);
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return a->down.size() == 1 && b->down.size() == 1; }));
  EXPECT_EQ(a->down[p].code(), Errc::kPeerLost);
  EXPECT_EQ(b->down[b->accepted[0].first].code(), Errc::kPeerLost);
  auto later = send_bytes(*a, p, 2, one);
  ASSERT_FALSE(later.is_ok());
  EXPECT_EQ(later.status().code(), Errc::kPeerLost);
  auto back = send_bytes(*b, b->accepted[0].first, 3, one);
  ASSERT_FALSE(back.is_ok());
  EXPECT_EQ(back.status().code(), Errc::kPeerLost);
}

TEST(LoopInjector, DelayConnectQueuesSendsInOrder) {
  auto a = open_side("late"), b = open_side();
  injector(a->ep())->delay_connect(3);
  PeerId p = *a->ep().connect(b->ep().address());
  std::vector<std::vector<std::byte>> payloads;
  for (int i = 0; i < 5; ++i) payloads.emplace_back(100 * i, static_cast<std::byte>(i));
  for (int i = 0; i < 5; ++i) {
    auto r = send_bytes(*a, p, i, payloads[i]);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(*r, Progress::kPending);
  }
  for (int poll = 0; poll < 2; ++poll) {
    a->poll_once();
    b->poll_once();
  }
  EXPECT_TRUE(a->sends_done.empty()) << "not connected before the third poll";
  EXPECT_TRUE(b->frames.empty());
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return b->frames.size() == 5; }));
  EXPECT_EQ(a->sends_done.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(a->sends_done[i].is_ok());
    EXPECT_EQ(b->frames[i].payload, payloads[i]);
  }
  EXPECT_EQ(b->accepted[0].second, "late");
}

TEST(LoopInjector, DelayedConnectToNobodyFailsLater) {
  auto a = open_side();
  Address nobody = testing::dead_address(transport());
  injector(a->ep())->delay_connect(2);
  PeerId p = *a->ep().connect(nobody);
  std::vector<std::byte> one(10);
  ASSERT_EQ(*send_bytes(*a, p, 1, one), Progress::kPending);
  a->poll_once();
  EXPECT_TRUE(a->down.empty());
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.size() == 1; }));
  EXPECT_EQ(a->sends_done[1].code(), Errc::kPeerLost);
  EXPECT_EQ(a->kinds.front(), Event::Kind::kSendDone);
  EXPECT_EQ(a->kinds.back(), Event::Kind::kPeerDown);
}

TEST(LoopInjector, DisconnectCancelsSendsWaitingForTheConnection) {
  auto a = open_side(), b = open_side();
  injector(a->ep())->delay_connect(5);
  PeerId p = *a->ep().connect(b->ep().address());
  std::vector<std::byte> one(10);
  ASSERT_EQ(*send_bytes(*a, p, 1, one), Progress::kPending);
  ASSERT_EQ(*send_bytes(*a, p, 2, one), Progress::kPending);
  a->ep().disconnect(p);
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return a->sends_done.size() == 2; }));
  EXPECT_EQ(a->sends_done[1].code(), Errc::kCanceled);
  EXPECT_EQ(a->sends_done[2].code(), Errc::kCanceled);
  for (int i = 0; i < 10; ++i) b->poll_once();
  EXPECT_TRUE(b->accepted.empty());
  EXPECT_TRUE(a->down.empty());
}

// Two threads, one endpoint each, blocking on wait_fd() between polls.
TEST(LoopEndpoint, TwoThreadsPingPong) {
  auto a = open_side(), b = open_side();
  PeerId p = *a->ep().connect(b->ep().address());
  constexpr int kRounds = 2000;
  auto wait = [](Side& s) {
    pollfd pfd{*s.ep().wait_fd(), POLLIN, 0};
    ::poll(&pfd, 1, 1000);
  };
  std::thread echo([&] {
    std::size_t seen = 0;
    while (seen < kRounds) {
      if (b->poll_once() == 0) wait(*b);
      for (; seen < b->frames.size(); ++seen) {
        auto& f = b->frames[seen];
        ASSERT_TRUE(send_bytes(*b, f.peer, seen, f.payload).is_ok());
      }
    }
  });
  std::vector<std::byte> msg(8);
  for (int i = 0; i < kRounds; ++i) {
    msg[0] = static_cast<std::byte>(i);
    ASSERT_TRUE(send_bytes(*a, p, i, msg).is_ok());
    while (a->frames.size() == static_cast<std::size_t>(i))
      if (a->poll_once() == 0) wait(*a);
    ASSERT_EQ(a->frames[i].payload, msg);
  }
  echo.join();
}

}  // namespace
}  // namespace cohort::transport::loop
