// mh_task — the task program of the multi-host tests (tests/netns/multihost_test.cpp).
//
//   mh_task ring                  every rank prints its host; a token goes round the
//                                 job 3 times (messages between hosts); rank 0 checks it
//   mh_task late-spawn FILE HOST  watch for new hosts, print "ready", wait for FILE (the
//                                 test adds HOST, then creates it), report the HostAdd
//                                 notification, then spawn `hostname` on HOST and check
//                                 what it prints
//   mh_task watch HOST            spawn `sleep 600` on HOST, watch it and the hosts, print
//                                 "ready"; then report the HostDelete and TaskExit
//                                 notifications and that a send to the lost task fails
//   mh_task pairs                 every rank sends to every other and prints, per peer,
//                                 "pair R->P <same|other> host: TRANSPORT"
// Exit status 0 when everything checked out; messages on stdout for the test to match.
#include <cohort/cohort.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

int ring(cohort::Session& s) {
  const char* bind = std::getenv("COHORT_BIND");
  std::printf("rank %d on %s bound to %s\n", s.rank(), s.host_name().c_str(), bind ? bind : "?");
  std::fflush(stdout);
  const auto& tids = s.job_tids();
  const int n = s.job_size();
  const cohort::Tid next = tids[static_cast<std::size_t>((s.rank() + 1) % n)];
  const cohort::Tid prev = tids[static_cast<std::size_t>((s.rank() + n - 1) % n)];
  std::int64_t token = 0;
  for (int lap = 0; lap < 3; ++lap) {
    if (s.rank() == 0) {
      cohort::Message m;
      m << token + 1;
      s.send(next, 1, m);
      token = s.recv(prev, 1).unpack<std::int64_t>();
    } else {
      cohort::Message m;
      m << s.recv(prev, 1).unpack<std::int64_t>() + 1;
      s.send(next, 1, m);
    }
  }
  if (s.rank() == 0) std::printf("ring %s %lld\n", token == 3 * n ? "ok" : "WRONG", static_cast<long long>(token));
  return s.rank() != 0 || token == 3 * n ? 0 : 1;
}

int late_spawn(cohort::Session& s, const std::string& file, const std::string& host) {
  s.notify(cohort::NotifyKind::kHostAdd, 6);
  std::printf("ready\n");
  std::fflush(stdout);
  // The test creates `file` once `host` has joined; bounded, so a broken test ends.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (::access(file.c_str(), F_OK) != 0) {
    if (std::chrono::steady_clock::now() > deadline) return 3;
    std::this_thread::sleep_for(20ms);
  }
  auto added = s.recv_for(cohort::kAnyTid, 6, 30s);
  if (!added) {
    std::printf("no host add notification within 30 s\n");
    return 1;
  }
  const auto n = cohort::Session::decode_notification(*added);
  std::printf("host add %u\n", n.host);
  std::fflush(stdout);
  std::string out;
  cohort::SpawnOptions o;
  o.host = host;
  o.exit_notify_tag = 5;
  o.on_output = [&](cohort::Tid, cohort::OutputStream, std::string_view line) { out += line; };
  auto r = s.spawn("hostname", {}, 1, o);
  if (r.empty() || !r[0].ok()) {
    std::printf("late spawn failed: %s\n", r.empty() ? "no outcome" : r[0].message.c_str());
    return 1;
  }
  cohort::Message m = s.recv(cohort::kAnyTid, 5);  // its exit: the output came before it
  std::printf("late spawn on %s printed %s (tid host %u)\n", host.c_str(), out.c_str(),
              cohort::tid::host_of(r[0].tid));
  return out == host ? 0 : 1;
}

int watch(cohort::Session& s, const std::string& host) {
  cohort::SpawnOptions o;
  o.host = host;
  o.exit_notify_tag = 7;
  auto r = s.spawn("sleep", {"600"}, 1, o);
  if (r.empty() || !r[0].ok()) {
    std::printf("spawn on %s failed: %s\n", host.c_str(), r.empty() ? "?" : r[0].message.c_str());
    return 1;
  }
  const cohort::Tid t = r[0].tid;
  s.notify(cohort::NotifyKind::kHostDelete, 8);
  std::printf("ready: sleeping task %d on host %u\n", t, cohort::tid::host_of(t));
  std::fflush(stdout);
  bool host_gone = false, task_gone = false;
  while (!host_gone || !task_gone) {
    auto m = s.recv_for(cohort::kAnyTid, cohort::kAnyTag, 30s);
    if (!m) {
      std::printf("no notification within 30 s\n");
      return 1;
    }
    auto n = cohort::Session::decode_notification(*m);
    if (n.kind == cohort::NotifyKind::kHostDelete) {
      std::printf("host delete %u\n", n.host);
      host_gone = n.host == cohort::tid::host_of(t);
    } else if (n.kind == cohort::NotifyKind::kTaskExit && n.tid == t) {
      std::printf("task exit %d code %d signal %d\n", n.tid, n.exit_code, n.signal);
      task_gone = true;
    }
    std::fflush(stdout);
  }
  try {
    cohort::Message m;
    m << 1;
    s.send(t, 1, m);
    std::printf("send to the lost task succeeded\n");
    return 1;
  } catch (const cohort::Error& e) {
    std::printf("send failed: %s\n", e.what());
  }
  std::printf("watch ok\n");
  return 0;
}

int pairs(cohort::Session& s) {
  const auto& tids = s.job_tids();
  cohort::Message hi;
  hi << s.host_name();
  for (cohort::Tid t : tids)
    if (t != s.tid()) s.send(t, 2, hi);
  std::vector<std::string> hosts(tids.size());
  for (std::size_t i = 1; i < tids.size(); ++i) {
    cohort::Message m = s.recv(cohort::kAnyTid, 2);
    for (std::size_t r = 0; r < tids.size(); ++r)
      if (tids[r] == m.source()) hosts[r] = m.unpack_string();
  }
  for (std::size_t r = 0; r < tids.size(); ++r) {
    if (tids[r] == s.tid()) continue;
    std::printf("pair %d->%zu %s host: %s\n", s.rank(), r,
                hosts[r] == s.host_name() ? "same" : "other", s.transport_to(tids[r]).c_str());
  }
  std::fflush(stdout);
  // Nobody leaves while a peer may still send to it.
  for (cohort::Tid t : tids)
    if (t != s.tid()) s.send(t, 3, cohort::Message());
  for (std::size_t i = 1; i < tids.size(); ++i) s.recv(cohort::kAnyTid, 3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  cohort::Session s;
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "ring") return ring(s);
  if (mode == "late-spawn" && argc > 3) return late_spawn(s, argv[2], argv[3]);
  if (mode == "watch" && argc > 2) return watch(s, argv[2]);
  if (mode == "pairs") return pairs(s);
  std::fprintf(stderr, "usage: mh_task ring | late-spawn FILE HOST | watch HOST | pairs\n");
  return 2;
} catch (const cohort::Error& e) {
  std::printf("mh_task: %s\n", e.what());
  return 1;
}
