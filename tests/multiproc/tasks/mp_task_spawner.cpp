// mp_task_spawner CHILD MISSING N: a task that spawns tasks.
//  1. spawns N instances of CHILD (with exit notifications on kTagChildExit),
//     collects their reports and checks rank, job size and parent();
//  2. spawns 2 instances of MISSING, a program that does not exist, and
//     expects two failed outcomes whose messages name it;
//  3. reports to its parent on kTagReport:
//       {string problems ("" if every check passed), int32[] child tids,
//        int32[] missing-program error codes, string[] their messages}
//  4. waits for kTagGo, releases the children, waits for their exits and
//     exits 0 if they all exited 0.
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  if (argc < 4) task_fail(kExitUsage, "usage: mp_task_spawner CHILD MISSING N");
  const std::string child = argv[1];
  const std::string missing = argv[2];
  const int n = std::atoi(argv[3]);
  return run_task([&](cohort::Session& s) {
    std::string problems;
    cohort::SpawnOptions opts;
    opts.exit_notify_tag = kTagChildExit;
    std::vector<cohort::SpawnOutcome> out = s.spawn(child, {}, n, opts);
    std::vector<std::int32_t> kids;
    for (const cohort::SpawnOutcome& o : out) {
      if (!o.ok()) task_fail(kExitBadData, "spawn of " + child + " failed: " + o.message);
      kids.push_back(o.tid);
    }
    task_check(kids.size() == static_cast<std::size_t>(n),
               "spawn returned " + std::to_string(kids.size()) + " outcomes");

    for (int i = 0; i < n; ++i) {
      cohort::Message r = task_recv(s, cohort::kAnyTid, kTagReport);
      auto rank = r.unpack<std::int32_t>();
      auto size = r.unpack<std::int32_t>();
      auto parent = r.unpack<std::int32_t>();
      auto tid = r.unpack<std::int32_t>();
      const std::string who = "child " + std::to_string(r.source());
      if (tid != r.source()) problems += who + " says its tid is " + std::to_string(tid) + "; ";
      if (rank < 0 || rank >= n || kids[rank] != r.source())
        problems += who + " has rank " + std::to_string(rank) + " which spawn gave to another; ";
      if (size != n) problems += who + " has job_size " + std::to_string(size) + "; ";
      if (parent != s.tid())
        problems += who + " has parent " + std::to_string(parent) + ", not the spawner " +
                    std::to_string(s.tid()) + "; ";
    }

    std::vector<cohort::SpawnOutcome> bad = s.spawn(missing, {"x"}, 2);
    std::vector<std::int32_t> codes;
    std::vector<std::string> messages;
    for (const cohort::SpawnOutcome& o : bad) {
      codes.push_back(static_cast<std::int32_t>(o.error));
      messages.push_back(o.message);
    }

    cohort::Message report;
    report << problems << kids << codes << static_cast<std::int32_t>(messages.size());
    for (const std::string& m : messages) report << m;
    s.send(s.parent(), kTagReport, report);

    task_recv(s, s.parent(), kTagGo);
    for (std::int32_t k : kids) s.send(k, kTagGo, cohort::Message());
    int bad_exits = 0;
    for (int i = 0; i < n; ++i) {
      cohort::Message m = task_recv(s, cohort::kAnyTid, kTagChildExit);
      cohort::Notification note = cohort::Session::decode_notification(m);
      if (note.exit_code != 0 || note.signal != 0) {
        std::fprintf(stderr, "child %d: exit code %d signal %d\n", note.tid, note.exit_code,
                     note.signal);
        ++bad_exits;
      }
    }
    return bad_exits == 0 ? 0 : kExitBadData;
  });
}
