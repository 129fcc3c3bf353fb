// tcp-only behaviour: addresses, and peers that do not speak our protocol.
// A raw blocking socket plays the bad peer; the endpoint must drop it and keep
// serving real peers.
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <regex>

#include <gtest/gtest.h>

#include "base/fd.hpp"
#include "base/log.hpp"
#include "tests/transport/conformance_harness.hpp"
#include "transport/tcp/tcp_address.hpp"
#include "transport/tcp/tcp_transport.hpp"
#include "transport/tcp/tcp_wire.hpp"

namespace cohort::transport::tcp {
namespace {

using testing::make_header;
using testing::make_payload;
using testing::pump;
using testing::Side;

std::unique_ptr<Side> open_side(EndpointOptions o = {}) {
  auto ep = transport().open(o);
  EXPECT_TRUE(ep.is_ok()) << ep.status().to_string();
  return ep.is_ok() ? std::make_unique<Side>(std::move(*ep)) : nullptr;
}

UniqueFd raw_connect(const Address& addr) {
  auto list = parse_address_list(addr);
  EXPECT_TRUE(list.is_ok());
  const SocketAddress& a = list->front();
  UniqueFd fd(::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.get(), a.get(), a.size), 0) << std::strerror(errno);
  return fd;
}

std::vector<std::byte> wire_frame(std::uint8_t flags, std::uint16_t header, std::uint64_t payload,
                                  std::size_t actual_payload) {
  std::vector<std::byte> v(kPrefixSize + header + actual_payload, std::byte{0x41});
  encode_prefix({flags, header, payload}, v.data());
  return v;
}

void write_all_raw(int fd, const std::vector<std::byte>& bytes) {
  ASSERT_TRUE(write_all(fd, bytes.data(), bytes.size()).is_ok());
}

/// True once the server closed the raw socket (EOF or reset).
bool raw_closed(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char c[256];
  ssize_t n = ::recv(fd, c, sizeof c, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN);
}

/// A real peer talks to `server` through the whole test.
struct RealPeer {
  explicit RealPeer(Side& server) : side(open_side()) {
    auto p = side->ep().connect(server.ep().address());
    EXPECT_TRUE(p.is_ok());
    peer = *p;
  }
  void send_one(std::uint64_t seq) {
    headers.push_back(make_header(seq, 100));
    payloads.push_back(make_payload(seq, 100));
    iovec v{payloads.back().data(), 100};
    ASSERT_TRUE(side->ep().send(peer, Frame{headers.back(), {&v, 1}}, seq).is_ok());
  }
  std::unique_ptr<Side> side;
  PeerId peer = kNoPeer;
  std::deque<std::vector<std::byte>> headers, payloads;
};

TEST(TcpEndpoint, AddressIsPrintableLoopback) {
  auto a = open_side();
  EXPECT_TRUE(std::regex_match(a->ep().address(), std::regex(R"(tcp:127\.0\.0\.1:[0-9]+)")))
      << a->ep().address();
  auto fd = a->ep().wait_fd();
  EXPECT_TRUE(fd.is_ok());
}

TEST(TcpEndpoint, WildcardBindPublishesReachableList) {
  EndpointOptions o;
  o.bind_host = "";
  auto server = open_side(o);
  const Address addr = server->ep().address();
  EXPECT_NE(addr.find("tcp:127.0.0.1:"), std::string::npos) << addr;
  auto client = open_side();
  auto p = client->ep().connect(addr);
  ASSERT_TRUE(p.is_ok());
  std::vector<std::byte> h = make_header(1, 0);
  ASSERT_TRUE(client->ep().send(*p, Frame{h, {}}, 1).is_ok());
  ASSERT_TRUE(pump({client.get(), server.get()}, [&] { return server->frames.size() == 1; }));
}

TEST(TcpEndpoint, AddressListFallsBackToTheNextEntry) {
  auto b = open_side();
  Address nobody = testing::dead_address(transport());
  auto a = open_side();
  auto p = a->ep().connect(nobody + "," + b->ep().address());
  ASSERT_TRUE(p.is_ok());
  std::vector<std::byte> h = make_header(1, 0);
  ASSERT_TRUE(a->ep().send(*p, Frame{h, {}}, 1).is_ok());
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return b->frames.size() == 1; }));
  EXPECT_TRUE(a->down.empty());
}

TEST(TcpEndpoint, GarbageBeforeHelloDropsOnlyThatConnection) {
  auto server = open_side();
  RealPeer real(*server);
  real.send_one(1);
  UniqueFd raw = raw_connect(server->ep().address());
  std::string junk = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(write_all(raw.get(), junk.data(), junk.size()).is_ok());
  ASSERT_TRUE(pump({server.get(), real.side.get()}, [&] { return raw_closed(raw.get()); }));
  real.send_one(2);
  ASSERT_TRUE(pump({server.get(), real.side.get()}, [&] { return server->frames.size() == 2; }));
  EXPECT_EQ(server->accepted.size(), 1u) << "the raw peer never became a peer";
  EXPECT_TRUE(server->down.empty());
}

TEST(TcpEndpoint, OversizedHelloIsDropped) {
  auto server = open_side();
  UniqueFd raw = raw_connect(server->ep().address());
  write_all_raw(raw.get(), wire_frame(kFlagHello, 0, 1 << 20, 0));
  ASSERT_TRUE(pump({server.get()}, [&] { return raw_closed(raw.get()); }));
  EXPECT_TRUE(server->accepted.empty());
}

// After a valid hello the raw peer is a peer: nonsense from it is reported as
// kPeerDown with kProtocolError.
void expect_protocol_error_after_hello(const std::vector<std::byte>& bad) {
  // Log lines go to a memory file so that the test can count them.
  UniqueFd log_fd(::memfd_create("transport-log", MFD_CLOEXEC));
  ASSERT_TRUE(log_fd.valid());
  log::set_fd(log_fd.get());
  struct RestoreLog {
    ~RestoreLog() { log::set_fd(2); }
  } restore;
  auto server = open_side();
  RealPeer real(*server);
  UniqueFd raw = raw_connect(server->ep().address());
  write_all_raw(raw.get(), wire_frame(kFlagHello, 0, 3, 3));
  write_all_raw(raw.get(), bad);
  ASSERT_TRUE(pump({server.get(), real.side.get()}, [&] { return server->down.size() == 1; }));
  auto by_hello = [&](const std::string& hello) {
    for (auto& [peer, h] : server->accepted)
      if (h == hello) return peer;
    return kNoPeer;
  };
  PeerId rawp = by_hello("AAA");
  ASSERT_NE(rawp, kNoPeer);
  ASSERT_EQ(server->down.count(rawp), 1u);
  EXPECT_EQ(server->down[rawp].code(), Errc::kProtocolError) << server->down[rawp].to_string();
  ASSERT_TRUE(pump({server.get(), real.side.get()}, [&] { return raw_closed(raw.get()); }));
  real.send_one(5);
  ASSERT_TRUE(pump({server.get(), real.side.get()}, [&] { return server->frames.size() == 1; }));
  EXPECT_EQ(server->frames[0].peer, by_hello(""));
  EXPECT_EQ(server->down.size(), 1u);

  std::string logged(4096, '\0');
  ssize_t n = ::pread(log_fd.get(), logged.data(), logged.size(), 0);
  logged.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  std::size_t drops = 0;
  for (auto at = logged.find("dropped connection"); at != std::string::npos;
       at = logged.find("dropped connection", at + 1))
    ++drops;
  EXPECT_EQ(drops, 1u) << "one line per bad peer:\n" << logged;
  EXPECT_NE(logged.find("transport.tcp"), std::string::npos) << logged;
}

TEST(TcpEndpoint, HugeDeclaredPayloadIsDropped) {
  expect_protocol_error_after_hello(wire_frame(0, 0, std::uint64_t{1} << 62, 0));
}

TEST(TcpEndpoint, OversizedHeaderIsDropped) {
  expect_protocol_error_after_hello(wire_frame(0, kMaxHeader + 1, 0, 0));
}

TEST(TcpEndpoint, SecondHelloIsDropped) {
  expect_protocol_error_after_hello(wire_frame(kFlagHello, 0, 0, 0));
}

TEST(TcpEndpoint, BadMagicIsDropped) {
  auto bad = wire_frame(0, 0, 0, 0);
  bad[0] = std::byte{0x00};
  expect_protocol_error_after_hello(bad);
}

// Frames trickled one byte per poll are assembled; frames sent just before
// the peer closes arrive before its kPeerDown.
TEST(TcpEndpoint, TrickledBytesAndFramesBeforeClose) {
  EndpointOptions o;
  o.eager_limit = 100;
  auto server = open_side(o);
  UniqueFd raw = raw_connect(server->ep().address());
  std::vector<std::byte> stream = wire_frame(kFlagHello, 0, 2, 2);
  const std::size_t sizes[] = {0, 100, 101, 5000, 3};
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    auto h = make_header(i, sizes[i]);
    auto p = make_payload(i, sizes[i]);
    auto f = wire_frame(0, static_cast<std::uint16_t>(h.size()), sizes[i], 0);
    f.resize(kPrefixSize);
    f.insert(f.end(), h.begin(), h.end());
    f.insert(f.end(), p.begin(), p.end());
    stream.insert(stream.end(), f.begin(), f.end());
  }
  std::size_t cut = stream.size() / 2;
  for (std::size_t i = 0; i < cut; ++i) {
    ASSERT_TRUE(write_all(raw.get(), &stream[i], 1).is_ok());
    server->poll_once();
  }
  ASSERT_TRUE(write_all(raw.get(), stream.data() + cut, stream.size() - cut).is_ok());
  raw.reset();
  ASSERT_TRUE(pump({server.get()}, [&] { return server->down.size() == 1; }));
  ASSERT_EQ(server->complete_frames(), std::size(sizes));
  for (std::size_t i = 0; i < std::size(sizes); ++i) {
    EXPECT_EQ(server->frames[i].header, make_header(i, sizes[i]));
    EXPECT_EQ(testing::check_payload(i, server->frames[i].payload), "");
    EXPECT_EQ(server->frames[i].announced, sizes[i] > 100);
  }
  EXPECT_EQ(server->kinds.back(), Event::Kind::kPeerDown);
  EXPECT_EQ(server->down.begin()->second.code(), Errc::kPeerLost);
}

}  // namespace
}  // namespace cohort::transport::tcp
