// ofi provider choice (COHORT_OFI_PROVIDER), what each provider's endpoints
// offer, and the memory registration path (COHORT_OFI_REGISTER=1) exercised
// end to end on a provider that does not need it.
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "base/signals.hpp"
#include "tests/transport/conformance_harness.hpp"
#include "transport/ofi/ofi_address.hpp"
#include "transport/ofi/ofi_library.hpp"
#include "transport/ofi/ofi_transport.hpp"

namespace cohort::transport::ofi {
namespace {

using testing::check_payload;
using testing::make_header;
using testing::make_payload;
using testing::pump;
using testing::Side;

/// Sets an environment variable for one scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string provider_of(const Endpoint& ep) {
  auto a = parse_address(ep.address());
  return a.is_ok() ? a->provider : "";
}

TEST(OfiProvider, UnknownProviderIsAClearError) {
  ScopedEnv env("COHORT_OFI_PROVIDER", "no-such-provider");
  auto ep = transport().open({});
  ASSERT_FALSE(ep.is_ok());
  EXPECT_EQ(ep.status().code(), Errc::kInvalidArgument);
  const std::string m = ep.status().message();
  EXPECT_NE(m.find("COHORT_OFI_PROVIDER='no-such-provider'"), std::string::npos) << m;
  EXPECT_NE(m.find("available: "), std::string::npos) << m;
  EXPECT_NE(m.find("tcp;ofi_rxm"), std::string::npos) << "names what this machine has: " << m;
}

TEST(OfiProvider, CoreNameSelectsItsRdmLayering) {
  // Plain tcp has only FI_EP_MSG endpoints; libfabric layers rxm on it for RDM.
  ScopedEnv env("COHORT_OFI_PROVIDER", "tcp");
  auto ep = transport().open({});
  ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
  EXPECT_EQ(provider_of(**ep), "tcp;ofi_rxm");
}

TEST(OfiProvider, DefaultChoiceOpens) {
  ScopedEnv env("COHORT_OFI_PROVIDER", nullptr);
  auto ep = transport().open({});
  ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
  EXPECT_FALSE(provider_of(**ep).empty()) << (*ep)->address();
}

class OfiPerProvider : public ::testing::TestWithParam<std::string> {};

TEST_P(OfiPerProvider, NamedProviderIsUsedAndCapsSayWhatItOffers) {
  ScopedEnv env("COHORT_OFI_PROVIDER", GetParam().c_str());
  auto ep = transport().open({});
  ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
  EXPECT_EQ(provider_of(**ep), GetParam());
  auto fd = (*ep)->wait_fd();
  if ((*ep)->caps().wait_fd) {
    ASSERT_TRUE(fd.is_ok()) << fd.status().to_string();
    EXPECT_GE(*fd, 0);
  } else {
    ASSERT_FALSE(fd.is_ok());
    EXPECT_EQ(fd.status().code(), Errc::kUnsupported);
    EXPECT_NE(fd.status().message().find("FI_WAIT_FD"), std::string::npos);
  }
  // No wait object unless asked for (it costs rxm two system calls a message).
  EXPECT_FALSE((*ep)->caps().wait_fd);
}

TEST_P(OfiPerProvider, AskedForAWaitObjectGetsOneWhereTheProviderHasIt) {
  ScopedEnv env("COHORT_OFI_PROVIDER", GetParam().c_str());
  ScopedEnv wait("COHORT_OFI_WAIT_FD", "1");
  auto ep = transport().open({});
  ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
  // tcp;ofi_rxm has a completion queue wait fd; shm has none.
  if (GetParam() == "tcp;ofi_rxm") {
    ASSERT_TRUE((*ep)->caps().wait_fd);
    auto fd = (*ep)->wait_fd();
    ASSERT_TRUE(fd.is_ok()) << fd.status().to_string();
    EXPECT_GE(*fd, 0);
  } else if (GetParam() == "shm") {
    EXPECT_FALSE((*ep)->caps().wait_fd);
  }
}

// Every buffer registered (fi_mr_reg) as a provider with FI_MR_LOCAL demands:
// staging, bounce buffers, the caller's payloads sent without a copy and the
// destinations of receive_payload(), with iovec gathers and announced parts.
TEST_P(OfiPerProvider, ForcedRegistrationCarriesEverySize) {
  ScopedEnv env("COHORT_OFI_PROVIDER", GetParam().c_str());
  ScopedEnv reg("COHORT_OFI_REGISTER", "1");
  auto ea = transport().open({}), eb = transport().open({});
  ASSERT_TRUE(ea.is_ok() && eb.is_ok()) << ea.status().to_string() << eb.status().to_string();
  Side a(std::move(*ea)), b(std::move(*eb));
  auto p = a.ep().connect(b.ep().address());
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  const std::size_t m = a.ep().caps().max_inline;
  const std::vector<std::size_t> sizes = {0, 10, 4096, 5000, m, m + 1, 3 << 20};
  std::vector<std::vector<std::byte>> keep;
  std::size_t pending = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    keep.push_back(make_header(i, sizes[i]));
    keep.push_back(make_payload(i, sizes[i]));
    auto& pl = keep.back();
    std::size_t pieces = 1 + i % 5;  // up to 5 iovecs: more than rxm/shm take in one message
    std::vector<iovec> iov;
    for (std::size_t k = 0, off = 0; k < pieces; ++k) {
      std::size_t len = k + 1 == pieces ? sizes[i] - off : sizes[i] / pieces;
      iov.push_back({pl.data() + off, len});
      off += len;
    }
    auto r = a.ep().send(*p, Frame{keep[keep.size() - 2], iov}, i);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    pending += *r == Progress::kPending;
  }
  ASSERT_TRUE(pump({&a, &b}, [&] {
    return b.complete_frames() == sizes.size() && a.sends_done.size() == pending;
  }));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(b.frames[i].complete) << i << ": " << b.frames[i].status.to_string();
    EXPECT_EQ(b.frames[i].header, make_header(i, sizes[i]));
    EXPECT_EQ(check_payload(i, b.frames[i].payload), "");
    EXPECT_EQ(b.frames[i].payload.size(), sizes[i]);
  }
  for (auto& [op, st] : a.sends_done) EXPECT_TRUE(st.is_ok()) << op << ": " << st.to_string();
}

INSTANTIATE_TEST_SUITE_P(Providers, OfiPerProvider, ::testing::Values("tcp;ofi_rxm", "shm"),
                         [](const auto& info) {
                           return info.param == "shm" ? std::string("shm") : std::string("tcp_rxm");
                         });

}  // namespace
}  // namespace cohort::transport::ofi

namespace cohort {
namespace {

// libfabric brings PSM in, and PSM's loader catches SIGTERM and crashes unless
// IPATH_NO_BACKTRACE is set (base/signals.hpp). Whatever it took, the reset
// gives back, and a handler the program set itself stays.
TEST(ForeignSignals, HandlersTakenAtLoadAreReset) {
  // Loading libfabric (dlopen, transport/ofi/ofi_library.hpp) loads PSM.
  ASSERT_TRUE(transport::ofi::fabric_library().is_ok());
  for (int sig : {SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGABRT}) {
    struct sigaction sa {};
    ASSERT_EQ(::sigaction(sig, nullptr, &sa), 0);
    Dl_info info{};
    if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN &&
        ::dladdr(reinterpret_cast<void*>(sa.sa_handler), &info) != 0 && info.dli_fname != nullptr)
      EXPECT_EQ(std::string(info.dli_fname).find("libinfinipath"), std::string::npos)
          << "signal " << sig << " is still caught by " << info.dli_fname;
  }
  struct sigaction mine {};
  mine.sa_handler = [](int) {};
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGTERM, &mine, &saved), 0);
  EXPECT_EQ(cohort::reset_foreign_handlers(), 0);
  struct sigaction now {};
  ::sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, mine.sa_handler) << "the program's own handler was reset";
  ::sigaction(SIGTERM, &saved, nullptr);
}

}  // namespace
}  // namespace cohort
