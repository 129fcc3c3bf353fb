// ucx-only behaviour: addresses, refusals, waiting with prepare_wait(), and a
// peer PROCESS that dies (SIGKILL) or leaves in the middle of a transfer. Every
// test runs over UCX_TLS=tcp and over shared memory (posix,self,cma); the
// variable is set before the first endpoint of the test opens, and the other
// process (ucx_test_peer) inherits it. Deadlines only guard against hangs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/transport/conformance_harness.hpp"
#include "transport/ucx/ucx_address.hpp"
#include "transport/ucx/ucx_transport.hpp"

namespace cohort::transport::ucx {
namespace {

using testing::pump;
using testing::Side;

/// The ucx_test_peer process, with its stdout on a pipe. Killed when destroyed.
class Child {
 public:
  Child(const std::string& mode, const Address& address, std::size_t size = 0) {
    const char* dir = std::getenv("COHORT_BIN_DIR");
    std::string program = std::string(dir != nullptr ? dir : ".") + "/ucx_test_peer";
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      std::string sz = std::to_string(size);
      ::execl(program.c_str(), program.c_str(), mode.c_str(), address.c_str(), sz.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
    ::fcntl(out_, F_SETFL, O_NONBLOCK);
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  pid_t pid() const { return pid_; }
  /// True once the child has printed `line` (reads what is there, never blocks).
  bool said(const std::string& prefix) {
    char buf[256];
    for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) text_.append(buf, n);
    return text_.find(prefix) != std::string::npos;
  }
  /// The rest of the line the child printed after `prefix`; empty until it has.
  std::string value(const std::string& prefix) {
    if (!said(prefix)) return {};
    const std::size_t at = text_.find(prefix) + prefix.size();
    const std::size_t end = text_.find('\n', at);
    return end == std::string::npos ? std::string() : text_.substr(at, end - at);
  }
  void kill_now() {
    ASSERT_EQ(::kill(pid_, SIGKILL), 0);
    ASSERT_EQ(::waitpid(pid_, nullptr, 0), pid_);
    pid_ = -1;
  }
  /// Waits for a child that exits by itself; its exit code.
  int wait_exit() {
    int status = 0;
    EXPECT_EQ(::waitpid(pid_, &status, 0), pid_);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string text_;
};

class UcxTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* old = std::getenv("UCX_TLS");
    if (old != nullptr) saved_ = old;
    had_ = old != nullptr;
    ::setenv("UCX_TLS", GetParam().c_str(), 1);
  }
  void TearDown() override {
    if (had_)
      ::setenv("UCX_TLS", saved_.c_str(), 1);
    else
      ::unsetenv("UCX_TLS");
  }

  std::unique_ptr<Side> open_side(std::string hello = "") {
    EndpointOptions o;
    o.hello = std::move(hello);
    auto ep = transport().open(o);
    EXPECT_TRUE(ep.is_ok()) << ep.status().to_string();
    return ep.is_ok() ? std::make_unique<Side>(std::move(*ep)) : nullptr;
  }

  /// Waits until the child connected and its "ready" frame arrived; its PeerId.
  PeerId await_child(Side& side) {
    EXPECT_TRUE(pump({&side}, [&] { return !side.frames.empty(); }));
    EXPECT_EQ(side.accepted.size(), 1u);
    return side.accepted.empty() ? kNoPeer : side.accepted[0].first;
  }

  std::string saved_;
  bool had_ = false;
};

TEST_P(UcxTest, AddressIsPrintableAndChecked) {
  auto a = open_side();
  const Address addr = a->ep().address();
  ASSERT_EQ(addr.rfind("ucx:", 0), 0u) << addr;
  for (char c : addr) EXPECT_TRUE(c > 0x20 && c < 0x7f) << "unprintable byte in " << addr;
  EXPECT_TRUE(transport().reaches(addr, addr));
  auto parsed = parse_text(addr);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->owner.pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_FALSE(parsed->worker.empty());
}

TEST_P(UcxTest, BadAddressesAreRefusedWithAReason) {
  auto a = open_side();
  const Address good = a->ep().address();
  Address flipped = good;
  flipped[good.size() / 2] = flipped[good.size() / 2] == 'A' ? 'B' : 'A';
  const std::vector<std::pair<Address, std::string>> bad = {
      {"", "does not start with"},
      {"tcp:127.0.0.1:4000", "does not start with"},
      {"ucx:", "too short"},
      {"ucx:not*base64", "not base64url"},
      {good.substr(0, good.size() - 8), "does not match"},
      {flipped, "checksum"},
  };
  for (const auto& [addr, why] : bad) {
    SCOPED_TRACE("address '" + addr.substr(0, 40) + "'");
    EXPECT_FALSE(transport().reaches(good, addr));
    auto p = a->ep().connect(addr);
    ASSERT_FALSE(p.is_ok());
    EXPECT_EQ(p.status().code(), Errc::kInvalidArgument);
    EXPECT_NE(p.status().message().find("ucx address"), std::string::npos) << p.status().message();
    EXPECT_NE(p.status().message().find(why), std::string::npos) << p.status().message();
  }
}

// An address of a live worker with another endpoint's nonce stands for an
// endpoint that has closed (its worker address reused): the acceptor refuses.
TEST_P(UcxTest, StaleAddressIsRefused) {
  auto a = open_side(), b = open_side();
  auto parsed = parse_text(b->ep().address());
  ASSERT_TRUE(parsed.is_ok());
  parsed->nonce ^= 1;
  auto p = a->ep().connect(encode_text(*parsed));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  std::vector<std::byte> h(8, std::byte{1});
  ASSERT_TRUE(a->ep().send(*p, Frame{h, {}}, 1).is_ok());
  ASSERT_TRUE(pump({a.get(), b.get()}, [&] { return a->down.count(*p) == 1; }));
  EXPECT_EQ(a->down[*p].code(), Errc::kPeerLost);
  EXPECT_NE(a->down[*p].message().find("refused"), std::string::npos) << a->down[*p].message();
  EXPECT_TRUE(b->accepted.empty()) << "a refused connection is never reported";
  EXPECT_TRUE(b->frames.empty());
}

// The receiver process is killed while a 64 MiB frame to it is in flight: the
// send fails with kPeerLost and kPeerDown follows.
TEST_P(UcxTest, ReceiverProcessKilledMidTransfer) {
  auto a = open_side();
  Child child("hold", a->ep().address());
  PeerId p = await_child(*a);
  ASSERT_NE(p, kNoPeer);
  std::vector<std::byte> big(64 << 20, std::byte{7}), h(16, std::byte{1});
  iovec v{big.data(), big.size()};
  auto r = a->ep().send(p, Frame{h, {&v, 1}}, 42);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(pump({a.get()}, [&] { return child.said("announced"); }));
  child.kill_now();
  ASSERT_TRUE(pump({a.get()}, [&] {
    return a->down.count(p) == 1 && (*r == Progress::kDone || a->sends_done.count(42) == 1);
  }));
  EXPECT_EQ(a->down[p].code(), Errc::kPeerLost);
  if (*r == Progress::kPending) {
    EXPECT_EQ(a->sends_done[42].code(), Errc::kPeerLost);
  }
  auto later = a->ep().send(p, Frame{h, {}}, 43);
  ASSERT_FALSE(later.is_ok());
  EXPECT_EQ(later.status().code(), Errc::kPeerLost);
}

// The sender process is killed after its 64 MiB frame was announced and while
// we receive it: the receive ends (failed, or complete and intact), never hangs.
TEST_P(UcxTest, SenderProcessKilledMidTransfer) {
  auto a = open_side();
  a->auto_receive = false;
  Child child("send", a->ep().address(), 64 << 20);
  ASSERT_TRUE(pump({a.get()}, [&] { return a->announced_peer.has_value(); }));
  const PeerId p = *a->announced_peer;
  ASSERT_EQ(a->announced_size, std::size_t{64} << 20);
  std::vector<std::byte> dest(a->announced_size);
  auto r = a->ep().receive_payload(p, dest, 9);
  child.kill_now();
  if (r.is_ok() && *r == Progress::kPending) {
    ASSERT_TRUE(pump({a.get()}, [&] { return a->recvs_done.count(9) == 1; }));
    if (!a->recvs_done[9].is_ok()) {
      EXPECT_EQ(a->recvs_done[9].code(), Errc::kPeerLost) << a->recvs_done[9].to_string();
    } else {
      for (std::size_t i = 0; i < dest.size(); i += 4093)
        ASSERT_EQ(dest[i], static_cast<std::byte>((i * 131u + 7u) & 0xff)) << i;
    }
  } else if (!r.is_ok()) {
    EXPECT_EQ(r.status().code(), Errc::kPeerLost);
  }
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.count(p) == 1; }));
  EXPECT_EQ(a->down[p].code(), Errc::kPeerLost);
}

// A peer that sends and then closes its endpoint: every frame arrives, then kPeerDown.
TEST_P(UcxTest, PeerThatLeavesDeliversEverythingFirst) {
  auto a = open_side();
  Child child("clean", a->ep().address());
  ASSERT_TRUE(pump({a.get()}, [&] { return !a->down.empty(); }));
  EXPECT_EQ(child.wait_exit(), 0);
  ASSERT_EQ(a->frames.size(), 4u) << "ready + three frames, before kPeerDown";
  for (std::size_t i = 1; i < 4; ++i) EXPECT_EQ(a->frames[i].payload.size(), 1000u);
  EXPECT_EQ(a->kinds.back(), Event::Kind::kPeerDown);
}

// Both processes connect to each other before either reads the other's hello,
// so UCP pairs the two connecting eps (by creation order), crossing our roles:
// inside UCX the child's frames to our accepted peer ride on the ep of our own
// connecting peer. The child sends a rendezvous-sized frame and leaves at once;
// its goodbye to our connecting peer (on the other ep, over TCP another socket)
// must not cancel the payload still arriving for the accepted one.
TEST_P(UcxTest, GoodbyeOnASiblingDoesNotCancelAPayloadInFlight) {
  constexpr std::size_t kSize = 16 << 20;
  auto a = open_side();
  Child child("cross", a->ep().address(), kSize);
  std::string addr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while ((addr = child.value("address ")).empty()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the child never printed its address";
    ::usleep(1000);
  }
  auto ours = a->ep().connect(addr);  // before polling: our connecting ep is made first
  ASSERT_TRUE(ours.is_ok()) << ours.status().to_string();
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.size() == 2; }));
  EXPECT_EQ(child.wait_exit(), 0);
  ASSERT_EQ(a->frames.size(), 2u) << "ready + the large frame";
  const testing::Received& big = a->frames[1];
  EXPECT_TRUE(big.announced);
  EXPECT_TRUE(big.complete);
  EXPECT_TRUE(big.status.is_ok()) << big.status.to_string();
  ASSERT_EQ(big.payload.size(), kSize);
  std::size_t bad = kSize;
  for (std::size_t i = 0; i < kSize && bad == kSize; ++i)
    if (big.payload[i] != static_cast<std::byte>((i * 131u + 7u) & 0xff)) bad = i;
  EXPECT_EQ(bad, kSize) << "the payload differs at byte " << bad;
}

// A caller that uses prepare_wait() and sleeps on wait_fd() is woken by a frame
// from another process.
TEST_P(UcxTest, PrepareWaitThenSleepWakesOnAFrame) {
  auto a = open_side();
  auto fd = a->ep().wait_fd();
  ASSERT_TRUE(fd.is_ok());
  Child child("echo", a->ep().address());
  PeerId p = await_child(*a);
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::byte> h(8, static_cast<std::byte>(round));
    ASSERT_TRUE(a->ep().send(p, Frame{h, {}}, 100 + round).is_ok());
    const std::size_t want = a->frames.size() + 1;
    while (a->frames.size() < want) {
      while (a->poll_once() != 0) {
      }
      if (a->frames.size() >= want) break;
      if (!a->ep().prepare_wait()) continue;
      pollfd pfd{*fd, POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 60'000), 1) << "armed wait fd never became readable";
    }
    EXPECT_EQ(a->frames.back().header, h);
  }
}

INSTANTIATE_TEST_SUITE_P(Tls, UcxTest, ::testing::Values("tcp", "posix,self,cma"),
                         [](const auto& info) {
                           return info.param == "tcp" ? std::string("tcp") : std::string("shm");
                         });

}  // namespace
}  // namespace cohort::transport::ucx
