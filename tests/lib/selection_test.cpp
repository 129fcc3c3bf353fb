// The transport selection rule (lib/src/selection.hpp), on fake transports:
// registry order, reach, the fabric rule, the ofi/ucx tie-break, reasons and
// the error when nothing reaches a peer.
#include "lib/src/selection.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cohort::lib {
namespace {

// Addresses are "<host>/<anything>": a fake transport reaches a peer on the
// same host, or (for cross-host transports) anywhere.
class FakeTransport final : public transport::Transport {
 public:
  FakeTransport(std::string name, bool same_host_only)
      : name_(std::move(name)), same_host_only_(same_host_only) {}
  std::string_view name() const override { return name_; }
  bool reaches(const transport::Address& self, const transport::Address& peer) const override {
    if (!same_host_only_) return true;
    return self.substr(0, self.find('/')) == peer.substr(0, peer.find('/'));
  }
  Result<std::unique_ptr<transport::Endpoint>> open(const transport::EndpointOptions&) override {
    return Status(Errc::kUnsupported, "fake");
  }

 private:
  std::string name_;
  bool same_host_only_;
};

FakeTransport g_shm("shm", true), g_ofi("ofi", false), g_ucx("ucx", false), g_tcp("tcp", false);

/// Endpoints of the named fakes, in the order given (the registry's order).
std::vector<LocalEndpoint> endpoints(const std::vector<FakeTransport*>& ts,
                                     const std::string& host = "h1") {
  std::vector<LocalEndpoint> eps;
  for (FakeTransport* t : ts) {
    LocalEndpoint e;
    e.transport = t;
    e.address = host + "/" + std::string(t->name());
    eps.push_back(std::move(e));
  }
  return eps;
}

std::vector<proto::AddressEntry> offers(const std::vector<std::string>& names,
                                        const std::string& host = "h1") {
  std::vector<proto::AddressEntry> out;
  for (const auto& n : names) out.push_back({n, host + "/" + n});
  return out;
}

const PeerPlace kHere{tid::make(1, 7), 1, 1};
const PeerPlace kThere{tid::make(2, 3), 2, 1};

std::string chosen(const std::vector<LocalEndpoint>& eps, const Result<Choice>& c) {
  return c.is_ok() ? std::string(eps[c->index].transport->name()) : "error: " + c.status().message();
}

TEST(Selection, SameHostPicksShm) {
  auto eps = endpoints({&g_shm, &g_tcp});
  auto c = choose_transport(eps, offers({"shm", "tcp"}), SelectionPolicy{}, kHere);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(chosen(eps, c), "shm");
  EXPECT_EQ(c->reason, "same host");
}

TEST(Selection, AnotherHostIdentityMakesShmNotReach) {
  auto eps = endpoints({&g_shm, &g_tcp}, "h1");
  auto c = choose_transport(eps, offers({"shm", "tcp"}, "h2"), SelectionPolicy{}, kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "tcp");
  EXPECT_EQ(c->reason, "different host");
}

TEST(Selection, PeerWithoutShmAddressGetsTcp) {
  auto eps = endpoints({&g_shm, &g_tcp});
  auto c = choose_transport(eps, offers({"tcp"}), SelectionPolicy{}, kHere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "tcp");
  EXPECT_EQ(c->reason, "peer has no shm address");
}

TEST(Selection, ForcedTcpSaysSo) {
  auto eps = endpoints({&g_tcp});
  auto c = choose_transport(eps, offers({"shm", "tcp"}), SelectionPolicy::parse("tcp"), kHere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "tcp");
  EXPECT_EQ(c->reason, "forced by COHORT_TRANSPORTS=tcp");
}

TEST(Selection, OnlyTransportBuilt) {
  auto eps = endpoints({&g_tcp});
  auto c = choose_transport(eps, offers({"tcp"}), SelectionPolicy{}, kHere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->reason, "the only transport built");
}

TEST(Selection, EmulatedFabricsAreNotChosenByDefault) {
  auto eps = endpoints({&g_shm, &g_ofi, &g_ucx, &g_tcp}, "h1");
  auto c = choose_transport(eps, offers({"shm", "ofi", "ucx", "tcp"}, "h2"), SelectionPolicy{},
                            kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "tcp");
  EXPECT_EQ(c->reason, "different host");  // the missing shm says more than the fabrics
}

TEST(Selection, NativeFabricIsChosen) {
  auto eps = endpoints({&g_shm, &g_ofi, &g_tcp}, "h1");
  eps[1].native_fabric = true;
  auto c = choose_transport(eps, offers({"shm", "ofi", "tcp"}, "h2"), SelectionPolicy{}, kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "ofi");
  EXPECT_EQ(c->reason, "native fabric");
}

TEST(Selection, NamedFabricIsChosenEvenWhenEmulated) {
  auto eps = endpoints({&g_ofi, &g_tcp}, "h1");
  auto c = choose_transport(eps, offers({"ofi", "tcp"}, "h2"), SelectionPolicy::parse("ofi,tcp"),
                            kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "ofi");
  EXPECT_EQ(c->reason, "forced by COHORT_TRANSPORTS=ofi,tcp");
}

TEST(Selection, OfiBeforeUcxUnlessListedOtherwise) {
  auto eps = endpoints({&g_ucx, &g_ofi, &g_tcp}, "h1");  // registry order does not decide
  eps[0].native_fabric = eps[1].native_fabric = true;
  auto peer = offers({"ofi", "ucx", "tcp"}, "h2");
  auto c = choose_transport(eps, peer, SelectionPolicy{}, kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "ofi");
  c = choose_transport(eps, peer, SelectionPolicy::parse(" ucx , ofi"), kThere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "ucx");
}

TEST(Selection, SameHostStillPrefersShmOverNamedFabric) {
  auto eps = endpoints({&g_shm, &g_ofi, &g_tcp});
  auto c = choose_transport(eps, offers({"shm", "ofi", "tcp"}), SelectionPolicy::parse("shm,ofi,tcp"),
                            kHere);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "shm");
}

TEST(Selection, ForcedShmToAnotherHostFailsAtOnceAndSaysWhy) {
  auto eps = endpoints({&g_shm}, "h1");
  auto c = choose_transport(eps, offers({"shm", "tcp"}, "h2"), SelectionPolicy::parse("shm"),
                            kThere);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Errc::kUnsupported);
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("no transport reaches task t200003"), std::string::npos) << m;
  EXPECT_NE(m.find("host 2"), std::string::npos) << m;
  EXPECT_NE(m.find("shm: different host"), std::string::npos) << m;
  EXPECT_NE(m.find("COHORT_TRANSPORTS=shm"), std::string::npos) << m;
}

TEST(Selection, PeerLackingTheForcedTransportFails) {
  auto eps = endpoints({&g_shm});
  auto c = choose_transport(eps, offers({"tcp"}), SelectionPolicy::parse("shm"), kHere);
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("peer has no shm address"), std::string::npos);
  EXPECT_NE(c.status().message().find("it offers [tcp]"), std::string::npos);
}

TEST(Selection, FailedConnectPassesToTheNext) {
  auto eps = endpoints({&g_shm, &g_tcp});
  std::vector<std::string> failed = {"connect failed: boom", ""};
  auto c = choose_transport(eps, offers({"shm", "tcp"}), SelectionPolicy{}, kHere, failed);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(chosen(eps, c), "tcp");
  EXPECT_EQ(c->reason, "connect failed: boom");
}

TEST(Selection, PolicyParsing) {
  auto p = SelectionPolicy::parse(" ucx, ,tcp,ucx ");
  EXPECT_EQ(p.spec, "ucx, ,tcp,ucx");
  ASSERT_EQ(p.named.size(), 2u);
  EXPECT_EQ(p.named[0], "ucx");
  EXPECT_EQ(p.named[1], "tcp");
  EXPECT_TRUE(p.forced());
  EXPECT_FALSE(SelectionPolicy::parse("").forced());
  EXPECT_EQ(p.position("tcp"), 1u);
  EXPECT_EQ(p.position("shm"), 2u);
}

}  // namespace
}  // namespace cohort::lib
