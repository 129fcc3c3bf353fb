// The shm transport between real processes (fork): large payloads through
// CMA, through the forced two-copy fallback and through a CMA that is denied
// at run time (seccomp), peers SIGKILLed mid-transfer, sleeping receivers woken
// by the doorbell, nothing left behind, and hosts that do not reach each other.
//
// Children report by exit code; pipes carry addresses and "go" bytes. pump()'s
// deadline only guards against hangs. No sleeps, no timing thresholds.
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/transport/conformance_harness.hpp"
#include "base/fd.hpp"
#include "transport/shm/shm_address.hpp"
#include "transport/shm/shm_transport.hpp"

namespace cohort::transport::shm {
namespace {

using testing::check_payload;
using testing::make_header;
using testing::make_payload;
using testing::pump;
using testing::Side;

constexpr int kChildOk = 0;

// ---- plumbing ---------------------------------------------------------------

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
}

// Reads up to a newline; empty when the other end closed first.
std::string read_line(int fd) {
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1) {
    if (c == '\n') return s;
    s.push_back(c);
  }
  return {};
}

/// A forked child running `body(in, out)`; its return value is the exit code.
struct Child {
  pid_t pid = -1;
  int in = -1;   // parent reads what the child writes
  int out = -1;  // parent writes what the child reads

  static Child start(const std::function<int(int in, int out)>& body) {
    int down[2], up[2];
    if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) std::abort();
    Child c;
    c.pid = ::fork();
    if (c.pid == 0) {
      ::close(down[1]);
      ::close(up[0]);
      int code = 99;
      try {
        code = body(down[0], up[1]);
      } catch (...) {
      }
      ::_exit(code);
    }
    ::close(down[0]);
    ::close(up[1]);
    c.in = up[0];
    c.out = down[1];
    return c;
  }
  /// The exit code, or 128 + signal.
  int wait() {
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid) return -1;
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  void kill() {
    ::kill(pid, SIGKILL);
    (void)wait();  // reaped: the process is gone for good, its pid may be reused
  }
  ~Child() {
    if (pid > 0) kill();
    if (in >= 0) ::close(in);
    if (out >= 0) ::close(out);
  }
};

/// Sets COHORT_SHM_CMA for endpoints opened until the scope ends.
struct CmaMode {
  explicit CmaMode(const char* v) {
    if (v != nullptr) ::setenv("COHORT_SHM_CMA", v, 1);
  }
  ~CmaMode() { ::unsetenv("COHORT_SHM_CMA"); }
};

std::unique_ptr<Side> open_side(EndpointOptions o = {}) {
  auto ep = shm::transport().open(o);
  if (!ep.is_ok()) return nullptr;
  return std::make_unique<Side>(std::move(*ep));
}

/// Polls one side in a child (no gtest there): until done() or a minute.
bool child_pump(Side& s, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    s.poll_once();
  }
  return true;
}

/// Makes process_vm_readv fail with `err` (or kill the process when err < 0)
/// in the calling process, as a ptrace policy or a seccomp profile would.
bool deny_cma(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               err < 0 ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

/// Mappings and descriptors of shm segments in this process.
int segments_in_this_process() {
  int n = 0;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) n += line.find("memfd:cohort-shm-") != std::string::npos;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    n += !ec && target.string().find("memfd:cohort-shm-") != std::string::npos;
  }
  return n;
}

int cohort_files_in_dev_shm() {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/dev/shm", ec))
    n += e.path().filename().string().rfind("cohort-shm-", 0) == 0;
  return n;
}

struct Frames {
  std::vector<std::vector<std::byte>> header, payload;
  std::vector<iovec> iov;
  /// Sends frame `seq` of `size` bytes (payload in 3 iovecs), buffers kept here.
  Result<Progress> send(Endpoint& ep, PeerId to, std::uint64_t seq, std::size_t size) {
    header.push_back(make_header(seq, size));
    payload.push_back(make_payload(seq, size));
    std::byte* p = payload.back().data();
    iovec v[3] = {{p, size / 3}, {p + size / 3, size / 3}, {p + 2 * (size / 3), size - 2 * (size / 3)}};
    return ep.send(to, Frame{header.back(), {v, 3}}, seq);
  }
};

// ---- large payloads across processes ----------------------------------------

struct CopyCase {
  const char* name;
  const char* sender_mode;    // COHORT_SHM_CMA of the sending parent
  const char* receiver_mode;  // ... of the receiving child
  int receiver_seccomp;       // 0: none; EPERM: CMA denied; -1: CMA kills the receiver
};

class ShmCopy : public ::testing::TestWithParam<CopyCase> {};

// The child receives 1 MiB and 64 MiB (and a small frame between them) and
// checks every byte; the parent's sends complete only when it is done.
TEST_P(ShmCopy, LargePayloadsArriveIntact) {
  const CopyCase& c = GetParam();
  const std::vector<std::size_t> sizes = {1 << 20, 100, 64 << 20};
  Child child = Child::start([&](int in, int out) {
    if (c.receiver_seccomp != 0 && !deny_cma(c.receiver_seccomp)) return 77;
    CmaMode mode(c.receiver_mode);
    auto b = open_side();
    if (!b) return 2;
    write_line(out, b->ep().address());
    if (!child_pump(*b, [&] { return b->complete_frames() == sizes.size(); })) return 3;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (b->frames[i].payload.size() != sizes[i]) return 4;
      if (!check_payload(i, b->frames[i].payload).empty()) return 5;
      if (b->frames[i].header != make_header(i, sizes[i])) return 6;
    }
    // Stay until the parent has seen its sends complete.
    return read_line(in) == "bye" ? kChildOk : 7;
  });
  CmaMode mode(c.sender_mode);
  auto a = open_side();
  ASSERT_TRUE(a);
  std::string addr = read_line(child.in);
  ASSERT_FALSE(addr.empty()) << "child exited early";
  auto p = a->ep().connect(addr);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Frames f;
  std::size_t pending = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto r = f.send(a->ep(), *p, i, sizes[i]);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    pending += *r == Progress::kPending;
  }
  ASSERT_TRUE(pump({a.get()}, [&] { return a->sends_done.size() == pending; }));
  for (auto& [op, st] : a->sends_done) EXPECT_TRUE(st.is_ok()) << op << ": " << st.to_string();
  write_line(child.out, "bye");
  int code = child.wait();
  if (code == 77) GTEST_SKIP() << "cannot install a seccomp filter here";
  EXPECT_EQ(code, kChildOk) << "child: 3 hang, 4-6 wrong bytes, 128+n killed by signal n";
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.size() == 1; }));
  EXPECT_TRUE(a->down.begin()->second.code() == Errc::kPeerLost);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, ShmCopy,
    ::testing::Values(
        // One copy by the receiver alone: the sender never helps.
        CopyCase{"CmaOnly", "only", "only", 0},
        // Forced fallback: the receiver never calls process_vm_readv (it would die).
        CopyCase{"ForcedTwoCopy", nullptr, "0", -1},
        // Both copy at once (the default).
        CopyCase{"CmaAndSenderTogether", nullptr, nullptr, 0},
        // CMA refused at run time (EPERM, as with yama or another user): the
        // receiver hands its chunks back and the sender copies everything.
        CopyCase{"CmaDeniedAtRunTime", "only", nullptr, EPERM}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- peers that die ---------------------------------------------------------

// A child that connects to `parent_addr` and sends one 64 MiB frame, says
// "sent", and then never polls again (it waits to be killed).
int send_and_stall(int in, int out, const std::string& parent_addr) {
  auto a = open_side();
  if (!a) return 2;
  auto p = a->ep().connect(parent_addr);
  if (!p.is_ok()) return 3;
  Frames f;
  if (!f.send(a->ep(), *p, 1, 64 << 20).is_ok()) return 4;
  write_line(out, "sent");
  (void)read_line(in);  // until killed
  return kChildOk;
}

// The receiver has the announcement; the sender is killed before the payload
// is asked for. receive_payload() fails (process_vm_readv: ESRCH), no hang,
// then kPeerDown; nothing of the pair is left in this process.
TEST(ShmPeerDeath, ReadFromAKilledSenderFails) {
  auto b = open_side();
  ASSERT_TRUE(b);
  b->auto_receive = false;
  const std::string addr = b->ep().address();
  Child child = Child::start([&](int in, int out) { return send_and_stall(in, out, addr); });
  ASSERT_EQ(read_line(child.in), "sent");
  ASSERT_TRUE(pump({b.get()}, [&] { return b->announced_peer.has_value(); }));
  child.kill();
  std::vector<std::byte> dest(64 << 20);
  auto r = b->ep().receive_payload(*b->announced_peer, dest, 9);
  if (r.is_ok()) {
    ASSERT_EQ(*r, Progress::kPending) << "a dead sender's payload cannot be complete";
    ASSERT_TRUE(pump({b.get()}, [&] { return b->recvs_done.count(9) == 1; }));
    EXPECT_EQ(b->recvs_done[9].code(), Errc::kPeerLost);
  } else {
    EXPECT_EQ(r.status().code(), Errc::kPeerLost) << r.status().to_string();
  }
  ASSERT_TRUE(pump({b.get()}, [&] { return b->down.size() == 1; }));
  EXPECT_EQ(b->down.begin()->second.code(), Errc::kPeerLost);
  b->poll_once();  // retired peers are freed at the next poll
  EXPECT_EQ(segments_in_this_process(), 0);
  EXPECT_EQ(cohort_files_in_dev_shm(), 0);
}

// The same, killed while the payload moves through the slots (the forced
// two-copy path needs the sender, which stalls): the receive fails.
TEST(ShmPeerDeath, SenderKilledMidTransferFailsTheReceive) {
  CmaMode mode("0");
  auto b = open_side();
  ASSERT_TRUE(b);
  b->auto_receive = false;
  const std::string addr = b->ep().address();
  Child child = Child::start([&](int in, int out) {
    ::unsetenv("COHORT_SHM_CMA");
    return send_and_stall(in, out, addr);
  });
  ASSERT_EQ(read_line(child.in), "sent");
  ASSERT_TRUE(pump({b.get()}, [&] { return b->announced_peer.has_value(); }));
  std::vector<std::byte> dest(64 << 20);
  auto r = b->ep().receive_payload(*b->announced_peer, dest, 9);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(*r, Progress::kPending) << "the stalled sender copies nothing";
  child.kill();
  ASSERT_TRUE(pump({b.get()}, [&] { return b->recvs_done.count(9) == 1 && b->down.size() == 1; }));
  EXPECT_EQ(b->recvs_done[9].code(), Errc::kPeerLost);
  EXPECT_EQ(b->down.begin()->second.code(), Errc::kPeerLost);
  b->poll_once();
  EXPECT_EQ(segments_in_this_process(), 0);
}

// The receiver is killed while our 64 MiB send waits for it: the send ends
// with kPeerLost, then kPeerDown, and later sends fail at once.
TEST(ShmPeerDeath, ReceiverKilledFailsPendingSends) {
  auto a = open_side();
  ASSERT_TRUE(a);
  Child child = Child::start([&](int in, int out) {
    auto b = open_side();
    if (!b) return 2;
    b->auto_receive = false;  // takes the announcement, never the payload
    write_line(out, b->ep().address());
    if (!child_pump(*b, [&] { return b->announced_peer.has_value(); })) return 3;
    write_line(out, "announced");
    (void)read_line(in);  // until killed
    return kChildOk;
  });
  auto p = a->ep().connect(read_line(child.in));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Frames f;
  auto r = f.send(a->ep(), *p, 1, 64 << 20);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(*r, Progress::kPending);
  ASSERT_EQ(read_line(child.in), "announced");
  child.kill();
  ASSERT_TRUE(pump({a.get()}, [&] { return a->down.size() == 1; }));
  ASSERT_EQ(a->sends_done.count(1), 1u);
  EXPECT_EQ(a->sends_done[1].code(), Errc::kPeerLost);
  auto pos_done = std::find(a->kinds.begin(), a->kinds.end(), Event::Kind::kSendDone);
  auto pos_down = std::find(a->kinds.begin(), a->kinds.end(), Event::Kind::kPeerDown);
  EXPECT_LT(pos_done, pos_down) << "kSendDone comes before kPeerDown";
  auto later = f.send(a->ep(), *p, 2, 10);
  ASSERT_FALSE(later.is_ok());
  EXPECT_EQ(later.status().code(), Errc::kPeerLost);
  a->poll_once();
  EXPECT_EQ(segments_in_this_process(), 0);
}

// Both ends close normally: no mapping, descriptor or file of any segment
// survives, here or in /dev/shm.
TEST(ShmCleanup, NothingLeftAfterBothEndsClose) {
  const int before = segments_in_this_process();
  {
    auto a = open_side();
    ASSERT_TRUE(a);
    Child child = Child::start([&](int, int out) {
      auto b = open_side();
      if (!b) return 2;
      write_line(out, b->ep().address());
      if (!child_pump(*b, [&] { return b->frames.size() == 1; })) return 3;
      return segments_in_this_process() == 1 ? kChildOk : 4;  // mapped once, descriptor closed
    });
    auto p = a->ep().connect(read_line(child.in));
    ASSERT_TRUE(p.is_ok());
    Frames f;
    ASSERT_TRUE(f.send(a->ep(), *p, 1, 1000).is_ok());
    EXPECT_EQ(child.wait(), kChildOk);
    ASSERT_TRUE(pump({a.get()}, [&] { return a->down.size() == 1; }));
    a->poll_once();
    EXPECT_EQ(segments_in_this_process(), before);
  }
  EXPECT_EQ(segments_in_this_process(), before);
  EXPECT_EQ(cohort_files_in_dev_shm(), 0);
}

// ---- sleeping and waking ----------------------------------------------------

// A receiver that blocks in epoll on wait_fd() — after prepare_wait(), or
// (without it) after a poll() that returned nothing — is woken by a frame.
void wake_test(bool use_prepare_wait) {
  Child child = Child::start([&](int in, int out) {
    auto b = open_side();
    if (!b) return 2;
    int fd = *b->ep().wait_fd();
    cohort::UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return 3;
    write_line(out, b->ep().address());
    // Each round: get ready to sleep, say so, sleep until a frame wakes us.
    for (std::size_t round = 0; round < 20; ++round) {
      while (b->frames.size() == round) {
        while (b->poll_once() != 0) {
        }
        if (b->frames.size() > round) break;
        if (use_prepare_wait && !b->ep().prepare_wait()) continue;
        write_line(out, "sleeping");
        if (::epoll_wait(ep.get(), &ev, 1, 60'000) != 1) return 4;  // hang guard only
      }
    }
    for (std::size_t i = 0; i < 20; ++i)
      if (!check_payload(i, b->frames[i].payload).empty()) return 5;
    return read_line(in) == "bye" ? kChildOk : 6;
  });
  auto a = open_side();
  ASSERT_TRUE(a);
  auto p = a->ep().connect(read_line(child.in));
  ASSERT_TRUE(p.is_ok());
  Frames f;
  for (std::uint64_t i = 0; i < 20; ++i) {
    // The child said it sleeps (or is about to): a frame must wake it.
    ASSERT_EQ(read_line(child.in), "sleeping") << "round " << i;
    auto r = f.send(a->ep(), *p, i, 100 + i);
    ASSERT_TRUE(r.is_ok());
    a->poll_once();
  }
  write_line(child.out, "bye");
  EXPECT_EQ(child.wait(), kChildOk) << "4: a sleeping receiver was never woken";
}

TEST(ShmWake, SleepingReceiverWakesAfterPrepareWait) {
  wake_test(true);
}

TEST(ShmWake, SleepingReceiverWakesWithoutPrepareWait) {
  wake_test(false);
}

// ---- hosts ------------------------------------------------------------------

// A task in its own network and UTS namespaces (an emulated host) has an
// address that this one does not reach, and connecting to it is refused.
TEST(ShmHosts, SeparateNamespacesDoNotReachEachOther) {
  auto a = open_side();
  ASSERT_TRUE(a);
  Child child = Child::start([&](int in, int out) {
    if (::unshare(CLONE_NEWNET | CLONE_NEWUTS) != 0) return 77;
    const char name[] = "emulated-host-2";
    if (::sethostname(name, sizeof name - 1) != 0) return 77;
    auto b = open_side();
    if (!b) return 2;
    write_line(out, b->ep().address());
    (void)read_line(in);
    return kChildOk;
  });
  std::string other = read_line(child.in);
  if (other.empty()) {
    EXPECT_EQ(child.wait(), 77);
    GTEST_SKIP() << "cannot create namespaces here (needs root or user namespaces)";
  }
  EXPECT_TRUE(shm::transport().reaches(a->ep().address(), a->ep().address()));
  EXPECT_FALSE(shm::transport().reaches(a->ep().address(), other));
  EXPECT_FALSE(a->ep().connect(other).is_ok());
  write_line(child.out, "bye");
  EXPECT_EQ(child.wait(), kChildOk);
}

}  // namespace
}  // namespace cohort::transport::shm
