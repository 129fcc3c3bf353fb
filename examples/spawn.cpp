// spawn — a task that starts other tasks and hears back from them.
//
//   cohort start && build/bin/spawn 4      (by hand, in a started VM)
//   cohort run -n 1 build/bin/spawn 4      (as a one-task job)
//
// The parent spawns N workers (a new job of N tasks) running this same
// program with --worker, asks to be told when each one exits, and waits for
// a report from every worker and then for every exit. Each worker computes a
// small result (its rank squared), sends it to its parent and exits.
// Lines the workers print reach the parent, which prints them as
// "[t<tid>] line" (SpawnOptions::on_output can do something else with them).
#include <cohort/cohort.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr int kTagReport = 1;
constexpr int kTagExit = 2;

// The daemon starts programs by path; /proc/self/exe is ours, wherever we were
// started from.
std::string self_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("spawn");
}

int worker(cohort::Session& s) {
  std::printf("worker rank %d of %d starting (parent t%x)\n", s.rank(), s.job_size(),
              static_cast<unsigned>(s.parent()));
  std::fflush(stdout);
  cohort::Message m;
  m << std::int32_t{s.rank()} << std::int64_t{std::int64_t{s.rank()} * s.rank()} << s.host_name();
  s.send(s.parent(), kTagReport, m);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  cohort::Session s;
  if (argc > 1 && std::string(argv[1]) == "--worker") return worker(s);

  int n = argc > 1 ? std::stoi(argv[1]) : 3;
  cohort::SpawnOptions opts;
  opts.exit_notify_tag = kTagExit;  // one exit notification per worker, never missed
  std::vector<cohort::SpawnOutcome> started = s.spawn(self_path(), {"--worker"}, n, opts);
  for (const cohort::SpawnOutcome& o : started)
    if (!o.ok()) {
      std::fprintf(stderr, "spawn: %s\n", o.message.c_str());
      return 1;
    }
  std::printf("parent t%x spawned %d workers\n", static_cast<unsigned>(s.tid()), n);

  std::int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    cohort::Message m = s.recv(cohort::kAnyTid, kTagReport);
    auto rank = m.unpack<std::int32_t>();
    auto square = m.unpack<std::int64_t>();
    std::string host = m.unpack_string();
    std::printf("worker %d (t%x on %s) reports %lld\n", rank, static_cast<unsigned>(m.source()),
                host.c_str(), static_cast<long long>(square));
    sum += square;
  }
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    cohort::Message m = s.recv(cohort::kAnyTid, kTagExit);
    cohort::Notification note = cohort::Session::decode_notification(m);
    if (note.exit_code != 0) ++failed;
  }
  // 0^2 + 1^2 + ... + (n-1)^2 = (n-1) n (2n-1) / 6
  std::int64_t expect = std::int64_t{n - 1} * n * (2 * n - 1) / 6;
  std::printf("all %d workers exited (%d failed); sum of squares %lld (expected %lld)\n", n, failed,
              static_cast<long long>(sum), static_cast<long long>(expect));
  return failed == 0 && sum == expect ? 0 : 1;
} catch (const cohort::Error& e) {
  std::fprintf(stderr, "spawn: %s\n", e.what());
  return 1;
}
