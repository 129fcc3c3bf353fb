// hello — the first cohort program to read.
//
// Run it as a job of N tasks:   cohort run -n 4 build/bin/hello
//
// Every task enrolls in the VM by creating a cohort::Session, which tells it
// its rank in the job (0..N-1), its task id and the host it runs on. Each task
// except rank 0 packs those three facts into a Message and sends it to rank 0;
// rank 0 collects them and prints one line per task in rank order.
#include <cohort/cohort.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr int kTagHello = 1;  // tags tell kinds of messages apart; pick your own

std::string describe(int rank, int size, cohort::Tid tid, const std::string& host) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "hello from rank %d of %d: tid t%x on %s", rank, size,
                static_cast<unsigned>(tid), host.c_str());
  return buf;
}

}  // namespace

int main() try {
  cohort::Session s;  // enroll; the identity comes from the daemon that started us

  if (s.rank() != 0) {
    // Typed packing: the receiver unpacks the same types in the same order.
    cohort::Message m;
    m << std::int32_t{s.rank()} << std::int32_t{s.tid()} << s.host_name();
    s.send(s.job_tids()[0], kTagHello, m);  // job_tids(): the job's tids in rank order
    return 0;
  }

  std::vector<std::string> lines(static_cast<std::size_t>(s.job_size()));
  lines[0] = describe(0, s.job_size(), s.tid(), s.host_name());
  for (int i = 1; i < s.job_size(); ++i) {
    // Messages arrive in any order; take them as they come and sort by rank.
    cohort::Message m = s.recv(cohort::kAnyTid, kTagHello);
    auto rank = m.unpack<std::int32_t>();
    auto tid = m.unpack<std::int32_t>();
    std::string host = m.unpack_string();
    lines.at(static_cast<std::size_t>(rank)) = describe(rank, s.job_size(), tid, host);
  }
  for (const std::string& l : lines) std::printf("%s\n", l.c_str());
  return 0;
} catch (const cohort::Error& e) {
  // Every cohort call reports failure by throwing cohort::Error; its text says what to do.
  std::fprintf(stderr, "hello: %s\n", e.what());
  return 1;
}
