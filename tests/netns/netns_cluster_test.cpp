// The emulated cluster itself: hosts are isolated where real hosts are
// (hostname, IPC, /dev/shm, network), reach each other over the bridge, and
// partitions, link failures and crashes behave as on a real network.
#include "tests/support/netns_cluster.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;

class NetnsClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = NetnsCluster::create(3);
    if (!c.is_ok()) GTEST_SKIP() << "no emulated cluster here: " << c.status().to_string();
    cluster_ = std::move(c).value();
  }
  void TearDown() override {
    cluster_.reset();
    for (pid_t p : children_) ::waitpid(p, nullptr, 0);
  }

  std::string run_out(int host, const std::vector<std::string>& argv) {
    auto r = cluster_->run(host, argv);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return {};
    EXPECT_EQ(r->exit_code, 0) << r->err;
    std::string s = r->out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }

  // Start `netprobe serve` on `host`; its port, read from its log with a deadline.
  int start_server(int host) {
    std::string log = tmp_.path() + "/serve" + std::to_string(servers_++) + ".log";
    auto pid = cluster_->spawn(host, {bin("netprobe"), "serve"}, log);
    EXPECT_TRUE(pid.is_ok()) << pid.status().to_string();
    if (!pid.is_ok()) return -1;
    children_.push_back(*pid);
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream f(log);
      std::string word;
      int port = 0;
      if (f >> word >> port && word == "port") return port;
      std::this_thread::sleep_for(10ms);  // polling a file with a deadline
    }
    ADD_FAILURE() << "netprobe serve on h" << host << " did not report its port";
    return -1;
  }

  int probe(int from, int to, int port, int ms) {
    auto r = cluster_->run(from, {bin("netprobe"), "connect", cluster_->address(to),
                                  std::to_string(port), std::to_string(ms)});
    return r.is_ok() ? r->exit_code : -1;
  }

  std::unique_ptr<NetnsCluster> cluster_;
  TempDir tmp_;
  std::vector<pid_t> children_;
  int servers_ = 0;
};

TEST_F(NetnsClusterTest, HostsHaveTheirOwnHostnameIpcAndShm) {
  EXPECT_EQ(run_out(1, {"hostname"}), "h1");
  EXPECT_EQ(run_out(2, {"hostname"}), "h2");
  EXPECT_NE(run_out(1, {"readlink", "/proc/self/ns/ipc"}), run_out(2, {"readlink", "/proc/self/ns/ipc"}));
  EXPECT_NE(run_out(1, {"readlink", "/proc/self/ns/net"}), run_out(2, {"readlink", "/proc/self/ns/net"}));
  run_out(1, {"sh", "-c", "echo x > /dev/shm/cohort-netns-marker"});
  EXPECT_EQ(run_out(1, {"sh", "-c", "test -e /dev/shm/cohort-netns-marker && echo yes"}), "yes");
  EXPECT_EQ(run_out(2, {"sh", "-c", "test -e /dev/shm/cohort-netns-marker || echo no"}), "no");
  EXPECT_EQ(run_out(1, {"getent", "hosts", "h3"}).substr(0, cluster_->address(3).size()),
            cluster_->address(3));
}

TEST_F(NetnsClusterTest, HostsReachEachOtherAndTheRootNamespaceIsGuarded) {
  int port = start_server(2);
  ASSERT_GT(port, 0);
  EXPECT_EQ(probe(1, 2, port, 5000), 0);
  std::ostringstream routes;
  auto r = run_program({"ip", "route", "show"}, "");
  ASSERT_TRUE(r.is_ok());
  EXPECT_NE(r->out.find("unreachable " + cluster_->address(1).substr(0, cluster_->address(1).rfind('.')) + ".0/24"),
            std::string::npos)
      << r->out;
}

TEST_F(NetnsClusterTest, PartitionCutsOnlyThePairAndHealRestoresIt) {
  Status part = cluster_->partition(1, 2);
  ASSERT_TRUE(part.is_ok()) << part.to_string();
  int p2 = start_server(2);
  int p3 = start_server(3);
  ASSERT_GT(p2, 0);
  ASSERT_GT(p3, 0);
  EXPECT_NE(probe(1, 2, p2, 300), 0);
  EXPECT_EQ(probe(1, 3, p3, 5000), 0);
  ASSERT_TRUE(cluster_->heal().is_ok());
  EXPECT_EQ(probe(1, 2, p2, 5000), 0);
}

TEST_F(NetnsClusterTest, FailedLinkAndKilledHost) {
  int p2 = start_server(2);
  ASSERT_GT(p2, 0);
  ASSERT_TRUE(cluster_->fail_link(2).is_ok());
  EXPECT_NE(probe(1, 2, p2, 300), 0);
  ASSERT_TRUE(cluster_->recover_link(2).is_ok());
  ASSERT_TRUE(cluster_->kill_host(2).is_ok());
  int status = 0;
  ASSERT_EQ(::waitpid(children_.front(), &status, 0), children_.front());
  children_.erase(children_.begin());
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST_F(NetnsClusterTest, HostsComeAndGo) {
  ASSERT_TRUE(cluster_->add_host(4).is_ok());
  EXPECT_EQ(run_out(4, {"hostname"}), "h4");
  EXPECT_EQ(run_out(1, {"getent", "hosts", "h4"}).substr(0, cluster_->address(4).size()),
            cluster_->address(4));
  ASSERT_TRUE(cluster_->remove_host(4).is_ok());
  EXPECT_EQ(cluster_->hosts(), (std::vector<int>{1, 2, 3}));
  auto r = cluster_->run(4, {"true"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_NE(r->exit_code, 0);
}

}  // namespace
}  // namespace cohort::testing
