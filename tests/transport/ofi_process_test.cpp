// ofi between real processes, once per provider (tcp;ofi_rxm and shm): a
// forked peer exchanges every size, or is SIGKILLed idle or in the middle of
// a 64 MiB transfer in either direction. The survivor must see its operation
// fail and kPeerDown — the pump deadline guards against hangs, it is no timing
// assertion. Pipes carry addresses and "reached this point" bytes; nothing
// waits by sleeping.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/transport/conformance_harness.hpp"
#include "transport/ofi/ofi_address.hpp"
#include "transport/ofi/ofi_transport.hpp"

namespace cohort::transport::ofi {
namespace {

using testing::check_payload;
using testing::make_header;
using testing::make_payload;
using testing::pump;
using testing::Side;

constexpr std::size_t kBig = 64 << 20;

/// A forked peer with a pipe each way; killed (if still running) when destroyed.
class Child {
 public:
  /// Runs body(in, out) in a new process, which exits with its return value.
  explicit Child(const std::function<int(int in, int out)>& body) {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      ::_exit(body(down[0], up[1]));
    }
    ::close(down[0]);
    ::close(up[1]);
    to_ = down[1];
    from_ = up[0];
    ::fcntl(from_, F_SETFL, O_NONBLOCK);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(to_);
    ::close(from_);
  }
  pid_t pid() const { return pid_; }
  void kill() {
    ::kill(pid_, SIGKILL);
    reap();
  }
  int reap() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    reaped_ = true;
    return st;
  }
  void write(const std::string& s) {
    std::uint32_t n = static_cast<std::uint32_t>(s.size());
    (void)!::write(to_, &n, sizeof n);
    (void)!::write(to_, s.data(), s.size());
  }
  /// Polls `sides` until the child has written one length-prefixed string.
  std::string read(const std::vector<Side*>& sides) {
    std::string got;
    std::uint32_t need = 0;
    bool have_len = false;
    EXPECT_TRUE(pump(sides, [&] {
      char buf[4096];
      ssize_t n = ::read(from_, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
      if (!have_len && got.size() >= 4) {
        std::memcpy(&need, got.data(), 4);
        got.erase(0, 4);
        have_len = true;
      }
      return (have_len && got.size() >= need) || n == 0;
    })) << "the child said nothing";
    return got;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  bool reaped_ = false;
};

// In the child: blocking pipe I/O, then a Side of its own.
void child_say(int out, const std::string& s) {
  std::uint32_t n = static_cast<std::uint32_t>(s.size());
  (void)!::write(out, &n, sizeof n);
  (void)!::write(out, s.data(), s.size());
}
std::string child_hear(int in) {
  std::uint32_t n = 0;
  if (::read(in, &n, sizeof n) != sizeof n) return {};
  std::string s(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(in, s.data() + got, n - got);
    if (r <= 0) return {};
    got += static_cast<std::size_t>(r);
  }
  return s;
}
std::unique_ptr<Side> child_side() {
  auto ep = transport().open({});
  if (!ep.is_ok()) ::_exit(3);
  return std::make_unique<Side>(std::move(*ep));
}
[[noreturn]] void poll_forever(Side& s) {
  for (;;) s.poll_once();
}

class OfiProcess : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ::setenv("COHORT_OFI_PROVIDER", GetParam().c_str(), 1); }
  void TearDown() override { ::unsetenv("COHORT_OFI_PROVIDER"); }

  std::unique_ptr<Side> open_side() {
    auto ep = transport().open({});
    EXPECT_TRUE(ep.is_ok()) << ep.status().to_string();
    return ep.is_ok() ? std::make_unique<Side>(std::move(*ep)) : nullptr;
  }
  Result<Progress> send(Side& s, PeerId to, std::uint64_t seq, std::size_t size) {
    headers_.push_back(make_header(seq, size));
    payloads_.push_back(make_payload(seq, size));
    iovec v{payloads_.back().data(), size};
    return s.ep().send(to, Frame{headers_.back(), {&v, 1}}, seq);
  }
  /// For shm: the dead child's 16 MiB region is gone once the parent noticed.
  void expect_region_removed(const std::string& child_address) {
    if (GetParam() != "shm") return;
    auto a = parse_address(child_address);
    ASSERT_TRUE(a.is_ok());
    std::string name(a->name.c_str());
    name.erase(0, name.find("://") + 3);
    struct stat st;
    EXPECT_NE(::stat(("/dev/shm/" + name).c_str(), &st), 0) << "/dev/shm/" << name << " left";
  }

  std::vector<std::vector<std::byte>> headers_, payloads_;
};

TEST_P(OfiProcess, SizesBothWaysBetweenProcesses) {
  Child child([](int in, int out) -> int {
    auto s = child_side();
    child_say(out, s->ep().address());
    // Echo every frame back until the parent disconnects.
    std::vector<std::vector<std::byte>> keep;  // borrowed by sends until they complete
    std::size_t echoed = 0;
    while (s->down.empty()) {
      s->poll_once();
      while (echoed < s->complete_frames()) {
        auto& f = s->frames[echoed++];
        keep.push_back(f.header);
        keep.push_back(f.payload);
        iovec v{keep.back().data(), keep.back().size()};
        auto r = s->ep().send(f.peer, Frame{keep[keep.size() - 2], {&v, 1}}, echoed);
        if (!r.is_ok()) return 4;
      }
    }
    return 0;
  });
  auto a = open_side();
  ASSERT_TRUE(a);
  std::string addr = child.read({a.get()});
  auto p = a->ep().connect(addr);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  const std::size_t m = a->ep().caps().max_inline;
  const std::vector<std::size_t> sizes = {0, 1, m - 1, m, m + 1, 1 << 20, kBig};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE("size " + std::to_string(sizes[i]));
    ASSERT_TRUE(send(*a, *p, i, sizes[i]).is_ok());
    ASSERT_TRUE(pump({a.get()}, [&] { return a->complete_frames() == i + 1; }));
    const auto& f = a->frames[i];
    EXPECT_EQ(f.header, make_header(i, sizes[i]));
    EXPECT_EQ(f.payload.size(), sizes[i]);
    EXPECT_EQ(check_payload(i, f.payload), "");
  }
  a->ep().disconnect(*p);
  int st = child.reap();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
}

TEST_P(OfiProcess, ReceiverKilledMidTransfer) {
  Child child([](int in, int out) -> int {
    auto s = child_side();
    s->auto_receive = false;  // it never takes the payload: the transfer stays in flight
    child_say(out, s->ep().address());
    while (!s->announced_peer) s->poll_once();
    child_say(out, "announced");
    poll_forever(*s);
  });
  auto a = open_side();
  ASSERT_TRUE(a);
  std::string addr = child.read({a.get()});
  auto p = a->ep().connect(addr);
  ASSERT_TRUE(p.is_ok());
  auto r = send(*a, *p, 1, kBig);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(*r, Progress::kPending);
  EXPECT_EQ(child.read({a.get()}), "announced");
  child.kill();
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.count(*p) && a->sends_done.count(1); }));
  EXPECT_EQ(a->sends_done[1].code(), Errc::kPeerLost) << a->sends_done[1].to_string();
  EXPECT_EQ(a->down[*p].code(), Errc::kPeerLost);
  EXPECT_NE(a->down[*p].message().find(addr), std::string::npos) << a->down[*p].message();
  auto later = send(*a, *p, 2, 10);
  ASSERT_FALSE(later.is_ok());
  EXPECT_EQ(later.status().code(), Errc::kPeerLost);
  expect_region_removed(addr);
}

TEST_P(OfiProcess, SenderKilledMidTransfer) {
  Child child([](int in, int out) -> int {
    auto s = child_side();
    auto p = s->ep().connect(child_hear(in));
    if (!p.is_ok()) return 5;
    std::vector<std::byte> big = make_payload(7, kBig), header = make_header(7, kBig);
    iovec v{big.data(), big.size()};
    if (!s->ep().send(*p, Frame{header, {&v, 1}}, 7).is_ok()) return 6;
    child_say(out, s->ep().address());
    poll_forever(*s);
  });
  auto b = open_side();
  ASSERT_TRUE(b);
  child.write(b->ep().address());
  std::string addr = child.read({b.get()});
  // b takes the payload as soon as it is announced; kill the sender meanwhile.
  ASSERT_TRUE(pump({b.get()}, [&] { return !b->frames.empty(); }));
  child.kill();
  ASSERT_TRUE(pump({b.get()}, [&] {
    return b->down.size() == 1 && (b->frames[0].complete || !b->frames[0].status.is_ok());
  }));
  EXPECT_EQ(b->down.begin()->second.code(), Errc::kPeerLost);
  const auto& f = b->frames[0];
  if (f.complete) {
    EXPECT_EQ(check_payload(7, f.payload), "");
  } else {
    EXPECT_EQ(f.status.code(), Errc::kPeerLost) << f.status.to_string();
  }
  expect_region_removed(addr);
}

TEST_P(OfiProcess, IdlePeerKilled) {
  Child child([](int in, int out) -> int {
    auto s = child_side();
    auto p = s->ep().connect(child_hear(in));
    if (!p.is_ok()) return 5;
    std::vector<std::byte> h = make_header(3, 10), pl = make_payload(3, 10);
    iovec v{pl.data(), pl.size()};
    if (!s->ep().send(*p, Frame{h, {&v, 1}}, 3).is_ok()) return 6;
    child_say(out, s->ep().address());
    poll_forever(*s);
  });
  auto b = open_side();
  ASSERT_TRUE(b);
  child.write(b->ep().address());
  std::string addr = child.read({b.get()});
  ASSERT_TRUE(pump({b.get()}, [&] { return b->frames.size() == 1; }));
  PeerId from = b->frames[0].peer;
  // A reply, so that the connection is in use both ways, then the peer dies idle.
  ASSERT_TRUE(send(*b, from, 4, 10).is_ok());
  child.kill();
  ASSERT_TRUE(pump({b.get()}, [&] { return b->down.count(from) == 1; }));
  EXPECT_EQ(b->down[from].code(), Errc::kPeerLost);
  auto later = send(*b, from, 5, 10);
  ASSERT_FALSE(later.is_ok());
  EXPECT_EQ(later.status().code(), Errc::kPeerLost);
  expect_region_removed(addr);
}

INSTANTIATE_TEST_SUITE_P(Providers, OfiProcess, ::testing::Values("tcp;ofi_rxm", "shm"),
                         [](const auto& info) {
                           return info.param == "shm" ? std::string("shm") : std::string("tcp_rxm");
                         });

}  // namespace
}  // namespace cohort::transport::ofi
