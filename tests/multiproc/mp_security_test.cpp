// Task-to-task connections are authenticated, end to end (lib/src/peers.hpp):
// the hello bytes of every connection carry the connecting task's tid and a
// token made from the VM's cookie, and a task drops a connection whose hello
// has no valid token before anything on it is delivered, warning once per
// endpoint (Engine::handle, kPeerAccepted).
//
// The test connects to a real task (mp_task_listen, tcp only) with tcp
// endpoints of its own, so that it chooses the hello bytes, and sends one
// frame with a correct wire header on each connection. A valid hello for a
// made-up tid comes first, the control: its frame must arrive, from that tid.
// The same tid with a token made from another cookie, and bytes that are no
// hello at all, must get their connection dropped and their frame never
// delivered; so must a connection with a valid token whose frame says it
// comes from another task.
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/env.hpp"
#include "lib/src/peers.hpp"
#include "lib/src/wire_header.hpp"
#include "proto/messages.hpp"
#include "tests/daemon/raw_client.hpp"
#include "tests/multiproc/mp_fixture.hpp"
#include "transport/registry.hpp"
#include "transport/transport.hpp"

namespace cohort::mptest {
namespace {

constexpr const char* kWarning =
    "dropping a connection over tcp that is not from a task of this VM (no valid token); "
    "further ones are dropped silently";

/// A connection to the listener made by hand: an endpoint of ours with the
/// hello bytes we chose, and the one frame sent on it.
struct HandConnection {
  std::unique_ptr<transport::Endpoint> endpoint;
  transport::PeerId peer = transport::kNoPeer;
  lib::WireBytes header{};
  std::string payload;
  iovec iov{};
  bool sent = false;  // the frame left (its buffers are ours again)
  bool down = false;  // the listener dropped the connection
  Status down_why;
  std::string delivered;  // the listener's report of a message, if it got one
};

/// What the listener did with a hand-made connection, as far as we can see.
enum class Seen { kDropped, kDelivered, kNeither };

void PrintTo(Seen s, std::ostream* os) {
  *os << (s == Seen::kDropped     ? "dropped the connection"
          : s == Seen::kDelivered ? "delivered a message"
                                  : "neither, within the test's wait");
}

class MpSecurity : public MultiprocTest {
 protected:
  /// Open a tcp endpoint whose hello is `hello`, connect to `address` and
  /// send one raw frame from `source` to `dest` on kTagData.
  static void connect_and_send(HandConnection& c, transport::Transport& tcp, std::string hello,
                               const std::string& address, Tid source, Tid dest,
                               std::string payload) {
    transport::EndpointOptions eo;
    eo.hello = std::move(hello);
    auto ep = tcp.open(eo);
    ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
    c.endpoint = std::move(*ep);
    auto peer = c.endpoint->connect(address);
    ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
    c.peer = *peer;
    c.payload = std::move(payload);
    (void)dest;  // a connection ends at one task: the header names only the sender
    lib::encode({.flags = lib::kFlagRaw, .source = source, .tag = kTagData, .context = 0},
                c.header);
    c.iov = {c.payload.data(), c.payload.size()};
    transport::Frame f{std::as_bytes(std::span(c.header)), {&c.iov, 1}};
    auto r = c.endpoint->send(c.peer, f, /*op=*/1);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    c.sent = *r == transport::Progress::kDone;
  }

  /// Poll `c`'s endpoint (a frame queued before the connection is up leaves
  /// only from poll()) and the session in turn, until the listener drops the
  /// connection, reports a message (kTagReport) or kTestWait passes.
  Seen watch(HandConnection& c, Tid listener) {
    const auto deadline = std::chrono::steady_clock::now() + kTestWait;
    std::array<transport::Event, 16> events;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::size_t n = c.endpoint->poll(events);
      for (std::size_t i = 0; i < n; ++i) {
        const transport::Event& e = events[i];
        if (e.kind == transport::Event::Kind::kSendDone && e.status.is_ok()) c.sent = true;
        if (e.kind == transport::Event::Kind::kPeerDown && e.peer == c.peer) {
          c.down = true;
          c.down_why = e.status;
        }
      }
      if (session().probe(listener, kTagReport)) {
        Message r = must_recv(listener, kTagReport);
        const auto source = r.unpack<std::int32_t>();
        c.delivered = std::to_string(r.unpack<std::uint64_t>()) + " bytes from " +
                      lib::tid_name(source);
        return Seen::kDelivered;
      }
      if (c.down) return Seen::kDropped;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return Seen::kNeither;
  }

  /// `t`'s address over `transport`, asked of the daemon as a tool would.
  std::string address_of(Tid t, const std::string& transport, const std::string& cookie) {
    auto c = cohort::testing::RawClient::connect(daemon().socket_path());
    if (!c.is_ok()) throw std::runtime_error("daemon socket: " + c.status().to_string());
    auto w = c->hello(cookie, kNoTid, /*is_tool=*/true, "mp_security_test");
    if (!w.is_ok()) throw std::runtime_error("hello: " + w.status().to_string());
    proto::Resolve q;
    q.req = 1;
    q.tid = t;
    if (Status s = c->send(q); !s.is_ok()) throw std::runtime_error(s.to_string());
    auto r = c->expect<proto::ResolveReply>();
    if (!r.is_ok()) throw std::runtime_error("resolve: " + r.status().to_string());
    if (r->status.code != 0) throw std::runtime_error("resolve: " + r->status.message);
    for (const proto::AddressEntry& a : r->addresses)
      if (a.transport == transport) return a.address;
    throw std::runtime_error("task " + std::to_string(t) + " published no " + transport +
                             " address");
  }

  /// Lines the listener printed, "[out] ..." or "[err] ...", in order.
  std::vector<std::string> lines_;
};

std::size_t count_containing(const std::vector<std::string>& lines, const std::string& s) {
  std::size_t n = 0;
  for (const std::string& l : lines) n += l.find(s) != std::string::npos;
  return n;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += "  " + l + "\n";
  return s;
}

TEST_F(MpSecurity, ConnectionWithoutTheVmsTokenIsDropped) {
  transport::Transport* tcp = transport::find("tcp");
  if (tcp == nullptr) GTEST_SKIP() << "the tcp transport is not built";
  auto cookie = env::read_cookie(dir());
  ASSERT_TRUE(cookie.is_ok()) << cookie.status().to_string();

  SpawnOptions o;
  // Only tcp, so that the listener has a tcp address whatever else is built;
  // warnings logged whatever COHORT_LOG the test runs under.
  o.env = {"COHORT_TRANSPORTS=tcp", "COHORT_LOG=warn"};
  o.on_output = [this](Tid, OutputStream stream, std::string_view line) {
    lines_.push_back((stream == OutputStream::kStderr ? "[err] " : "[out] ") + std::string(line));
  };
  const Tid listener = spawn_ok(bin("mp_task_listen"), {}, 1, o)[0];
  (void)must_recv(listener, kTagReady);
  const std::string address = address_of(listener, "tcp", *cookie);

  // Well-formed, on this VM's host, and a counter no task of this test reaches.
  const Tid stranger = tid::make(session().host(), tid::kLocalMask - 1);

  // The control: with the VM's token, the frame arrives, from the tid in the hello.
  HandConnection good;
  connect_and_send(good, *tcp, lib::Peers::hello_bytes(stranger, *cookie), address, stranger,
                   listener, "hello");
  if (HasFatalFailure()) return;
  ASSERT_EQ(watch(good, listener), Seen::kDelivered)
      << "for a connection with a valid token"
      << (good.down ? " (dropped: " + good.down_why.to_string() + ")" : "");
  EXPECT_EQ(good.delivered, "5 bytes from " + lib::tid_name(stranger));
  Message more;
  more << std::int32_t{1};
  session().send(listener, kTagData, more);
  EXPECT_EQ(must_recv(listener, kTagAck).unpack<std::int32_t>(), 1);

  // The same tid with another VM's token, then bytes that are no hello: each
  // connection must be dropped. We go on only once it is, so that a frame the
  // listener delivered would have reached it before our end of the round.
  HandConnection wrong_token, garbage;
  connect_and_send(wrong_token, *tcp, lib::Peers::hello_bytes(stranger, "another VM's cookie"),
                   address, stranger, listener, "wrong token");
  if (HasFatalFailure()) return;
  EXPECT_EQ(watch(wrong_token, listener), Seen::kDropped)
      << "for a connection whose hello has another VM's token: " << wrong_token.delivered;
  EXPECT_TRUE(wrong_token.sent) << "the frame never left; the check proves nothing";
  connect_and_send(garbage, *tcp, "GET / HTTP/1.1\r\n\r\n", address, stranger, listener,
                   "garbage hello");
  if (HasFatalFailure()) return;
  EXPECT_EQ(watch(garbage, listener), Seen::kDropped)
      << "for a connection whose hello is garbage: " << garbage.delivered;
  EXPECT_TRUE(garbage.sent) << "the frame never left; the check proves nothing";
  // Proved as `stranger`, but the frame names this test's session as its sender.
  HandConnection spoofed;
  connect_and_send(spoofed, *tcp, lib::Peers::hello_bytes(stranger, *cookie), address,
                   session().tid(), listener, "spoofed");
  if (HasFatalFailure()) return;
  EXPECT_EQ(watch(spoofed, listener), Seen::kDropped)
      << "for a frame whose sender is not the connection's task: " << spoofed.delivered;
  EXPECT_TRUE(spoofed.sent) << "the frame never left; the check proves nothing";

  Message last;
  last << std::int32_t{0};
  session().send(listener, kTagData, last);
  EXPECT_EQ(must_recv(listener, kTagAck).unpack<std::int32_t>(), 0)
      << "messages the listener got over connections without a valid token";
  expect_clean_exits(wait_exits(std::array{listener}));

  // Every line the listener wrote came before its exit (the daemon drains its pipes).
  const std::string got_line = "[out] got 5 bytes from " + lib::tid_name(stranger);
  EXPECT_EQ(count_containing(lines_, got_line), 1u) << joined(lines_);
  EXPECT_EQ(count_containing(lines_, "got "), 1u) << joined(lines_);
  EXPECT_EQ(count_containing(lines_, "[out] nothing"), 1u) << joined(lines_);
  EXPECT_EQ(count_containing(lines_, kWarning), 1u)
      << "the warning must come once for the endpoint:\n"
      << joined(lines_);
  EXPECT_EQ(count_containing(lines_, "came over the connection of " + lib::tid_name(stranger)), 1u)
      << joined(lines_);
}

}  // namespace
}  // namespace cohort::mptest
