// Pieces of the multi-host daemon that need no network: address parsing, the
// interface choice, and the placement-free parts of the daemon messages.
#include <gtest/gtest.h>

#include "daemon/net_iface.hpp"
#include "daemon/peer_link.hpp"
#include "proto/daemon_messages.hpp"
#include "proto/frame.hpp"

namespace cohort::daemon {
namespace {

TEST(PeerAddress, ParsesTcpAddressesAndRejectsTheRest) {
  auto a = parse_tcp_address("tcp:10.1.2.3:4100");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->first, "10.1.2.3");
  EXPECT_EQ(a->second, 4100u);
  EXPECT_FALSE(parse_tcp_address("tcp:10.1.2.3").is_ok());
  EXPECT_FALSE(parse_tcp_address("tcp:10.1.2.3:0").is_ok());
  EXPECT_FALSE(parse_tcp_address("tcp:node1:4100").is_ok());  // numeric only: no DNS in the loop
  EXPECT_EQ(split_addresses("tcp:a:1,tcp:b:2,"), (std::vector<std::string>{"tcp:a:1", "tcp:b:2"}));
}

TEST(NetIface, HostOnlyBridgesAreNeverAdvertised) {
  for (const char* n : {"docker0", "virbr0", "br-1a2b", "lxcbr0", "cni0", "podman1", "vboxnet0"})
    EXPECT_TRUE(is_host_only_interface(n)) << n;
  for (const char* n : {"eth0", "ens3", "ib0", "bond0", "veth12"})
    EXPECT_FALSE(is_host_only_interface(n)) << n;
}

TEST(NetIface, AdvertisesSomethingAndHonoursABoundAddress) {
  auto any = advertised_address("0.0.0.0", 4100, "");
  ASSERT_TRUE(any.is_ok()) << any.status().to_string();
  EXPECT_EQ(any->rfind("tcp:", 0), 0u) << *any;
  auto bound = advertised_address("127.0.0.1", 4100, "");
  ASSERT_TRUE(bound.is_ok());
  EXPECT_EQ(*bound, "tcp:127.0.0.1:4100");
  auto lo = advertised_address("0.0.0.0", 9, "lo");
  ASSERT_TRUE(lo.is_ok()) << lo.status().to_string();
  EXPECT_EQ(*lo, "tcp:127.0.0.1:9");
  EXPECT_EQ(advertised_address("0.0.0.0", 9, "no-such-if0").status().code(), Errc::kNotFound);
}

TEST(DaemonMessages, FrameBufferAcceptsThemAndTheyRoundTrip) {
  proto::HostEvent e;
  e.seq = 7;
  e.kind = proto::HostEventKind::kDelete;
  e.master = 2;
  e.host.index = 3;
  e.host.name = "h3";
  proto::FrameBuffer fb;
  auto bytes = proto::encode(e);
  auto space = fb.prepare(bytes.size());
  std::copy(bytes.begin(), bytes.end(), space.begin());
  fb.commit(bytes.size());
  auto f = fb.next();
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  ASSERT_TRUE(f->has_value());
  EXPECT_EQ((*f)->type, proto::MsgType::kHostEvent);
  proto::HostEvent back;
  ASSERT_TRUE(proto::decode((*f)->body, back).is_ok());
  EXPECT_EQ(back.seq, 7u);
  EXPECT_EQ(back.host.name, "h3");
  EXPECT_EQ(back.kind, proto::HostEventKind::kDelete);
}

}  // namespace
}  // namespace cohort::daemon
