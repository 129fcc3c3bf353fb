#include "base/status.hpp"

#include <gtest/gtest.h>

namespace cohort {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return Status(Errc::kInvalidArgument, "value " + std::to_string(v) + " is not positive");
  return v;
}

Status twice(int v, int* out) {
  COHORT_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = 2 * x;
  return Status();
}

TEST(Status, OkAndError) {
  Status ok;
  EXPECT_TRUE(ok.is_ok());
  Status bad(Errc::kNoSuchTask, "tid 0x100001 has exited");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.code(), Errc::kNoSuchTask);
  EXPECT_EQ(bad.to_string(), "no such task: tid 0x100001 has exited");
  bad.with_context("send");
  EXPECT_EQ(bad.message(), "send: tid 0x100001 has exited");
}

TEST(Status, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(twice(4, &out).is_ok());
  EXPECT_EQ(out, 8);
  Status s = twice(-1, &out);
  EXPECT_EQ(s.code(), Errc::kInvalidArgument);
  EXPECT_NE(s.message().find("-1"), std::string::npos);
}

TEST(Errc, NamesMessagesAndErrorCode) {
  EXPECT_EQ(errc_name(Errc::kPeerLost), "PeerLost");
  EXPECT_EQ(errc_message(Errc::kTimeout), "timed out");
  std::error_code ec = Errc::kTruncated;
  EXPECT_EQ(ec.message(), "message truncated");
  EXPECT_EQ(ec.category().name(), std::string("cohort"));
  EXPECT_TRUE(errc_is_transient(Errc::kRetry));
  EXPECT_FALSE(errc_is_transient(Errc::kPeerLost));
}

}  // namespace
}  // namespace cohort
