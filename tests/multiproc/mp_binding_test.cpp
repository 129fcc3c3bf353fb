// CPU binding of spawned tasks, checked from inside the tasks with
// sched_getaffinity(): --bind-to core gives each task its own core while
// tasks do not outnumber cores; auto binds the same way and stops binding
// once oversubscribed; none never binds. And the `cohort` command's side:
// `cohort hosts -v` shows the topology (also a synthetic one, read from
// HWLOC_XMLFILE, which is never bound to), `cohort run --bind-to`.
#include <sched.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

struct Placement {
  std::string bind;                // $COHORT_BIND in the task
  std::vector<std::int32_t> cpus;  // its affinity
};

/// The CPUs this process may run on (the daemon's are the same: it is our child).
std::vector<std::int32_t> my_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<std::int32_t> out;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

std::string show(const std::vector<std::int32_t>& cpus) {
  std::string s;
  for (auto c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return "{" + s + "}";
}

class MpBinding : public MultiprocTest {
 protected:
  /// This host as the daemon describes it (cores == 0: no topology, no hwloc).
  HostInfo host() { return session().hosts().at(0); }

  std::vector<Placement> run_affinity(int n, BindTo bind) {
    SpawnOptions o;
    o.bind_to = bind;
    auto tids = spawn_ok(bin("mp_task_affinity"), {}, n, o);
    std::vector<Placement> out;
    for (Tid t : tids) {
      Message m = must_recv(t, kTagReport);
      Placement p;
      p.bind = m.unpack<std::string>();
      p.cpus = m.unpack<std::vector<std::int32_t>>();
      out.push_back(std::move(p));
    }
    for (Tid t : tids) session().send(t, kTagStop, Message());
    expect_clean_exits(wait_exits(tids));
    return out;
  }

  /// Each task on exactly its core's PUs, no two on the same core.
  void expect_one_core_each(const std::vector<Placement>& ps, const HostInfo& h) {
    const std::size_t per_core = h.pus / h.cores;
    std::set<std::string> seen_binds;
    std::set<std::int32_t> seen_cpus;
    for (const Placement& p : ps) {
      EXPECT_TRUE(std::regex_match(p.bind, std::regex("core:[0-9]+"))) << p.bind;
      EXPECT_EQ(p.cpus.size(), per_core) << p.bind << " " << show(p.cpus);
      EXPECT_TRUE(seen_binds.insert(p.bind).second) << "two tasks on " << p.bind;
      for (auto c : p.cpus) EXPECT_TRUE(seen_cpus.insert(c).second) << "CPU " << c << " twice";
    }
  }

  void expect_unbound(const std::vector<Placement>& ps) {
    for (const Placement& p : ps) {
      EXPECT_EQ(p.bind, "none");
      EXPECT_EQ(p.cpus, my_cpus()) << "an unbound task may run where the daemon may";
    }
  }
};

TEST_F(MpBinding, CoreGivesEachTaskItsOwnCore) {
  HostInfo h = host();
  if (h.cores == 0) GTEST_SKIP() << h.topology_note;
  const int n = static_cast<int>(std::min<unsigned>(h.cores, 4));
  auto ps = run_affinity(n, BindTo::kCore);
  expect_one_core_each(ps, h);
  if (h.pus == h.cores) {
    for (const Placement& p : ps) EXPECT_EQ(p.cpus.size(), 1u) << "a single-CPU mask";
  }
}

TEST_F(MpBinding, AutoBindsWhileTasksFitTheCores) {
  HostInfo h = host();
  if (h.cores == 0) GTEST_SKIP() << h.topology_note;
  auto ps = run_affinity(static_cast<int>(std::min<unsigned>(h.cores, 4)), BindTo::kAuto);
  expect_one_core_each(ps, h);
}

TEST_F(MpBinding, AutoDoesNotBindWhenOversubscribed) {
  HostInfo h = host();
  if (h.cores == 0) GTEST_SKIP() << h.topology_note;
  expect_unbound(run_affinity(static_cast<int>(h.cores) + 1, BindTo::kAuto));
}

TEST_F(MpBinding, NoneDoesNotBind) {
  expect_unbound(run_affinity(2, BindTo::kNone));
}

TEST_F(MpBinding, NumaGivesTheNodesCpus) {
  HostInfo h = host();
  if (h.cores == 0) GTEST_SKIP() << h.topology_note;
  auto ps = run_affinity(1, BindTo::kNuma);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].bind, "numa:0");
  if (h.numa_nodes == 1) {
    EXPECT_EQ(ps[0].cpus, my_cpus()) << "one node holds every CPU";
  }
}

// ---- the `cohort` command ----------------------------------------------------------

cohort::testing::ProgramResult cohort_cmd(const std::vector<std::string>& args,
                                          const std::string& dir) {
  std::vector<std::string> argv = {bin("cohort")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = cohort::testing::run_program(argv, dir);
  if (!r.is_ok()) throw std::runtime_error("cohort: " + r.status().to_string());
  return std::move(r).value();
}

TEST_F(MpBinding, HostsVerboseShowsTheTopology) {
  HostInfo h = host();
  if (h.cores == 0) GTEST_SKIP() << h.topology_note;
  auto r = cohort_cmd({"hosts", "-v"}, dir());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TOPOLOGY"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex("[0-9]+ packages?, [0-9]+ NUMA nodes?, [0-9]+ cores?, [0-9]+ PUs?")))
      << r.out;
  auto plain = cohort_cmd({"hosts"}, dir());
  EXPECT_EQ(plain.out.find("TOPOLOGY"), std::string::npos) << plain.out;
}

TEST_F(MpBinding, SyntheticTopologyIsShownAndNeverBound) {
  // A daemon of our own that reads a two-package machine from HWLOC_XMLFILE.
  cohort::testing::TempDir other;
  const std::string xml = other.path() + "/topo.xml";
  const std::string cmd = "lstopo --input 'pack:2 core:2 pu:1' " + xml + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0 || !std::ifstream(xml)) GTEST_SKIP() << "lstopo is not installed";
  ::setenv("HWLOC_XMLFILE", xml.c_str(), 1);
  auto d = cohort::testing::DaemonProcess::start(other.path());
  ::unsetenv("HWLOC_XMLFILE");
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  auto r = cohort_cmd({"hosts", "-v"}, other.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (r.out.find("unknown") != std::string::npos) GTEST_SKIP() << "built without hwloc";
  EXPECT_NE(r.out.find("2 packages, 1 NUMA node, 4 cores, 4 PUs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("HWLOC_XMLFILE"), std::string::npos) << r.out;
  // Asked to bind there, the job runs unbound (with a warning in the daemon's log).
  auto run = cohort_cmd({"run", "--bind-to", "core", "-n", "2", "sh", "-c", "echo bind=$COHORT_BIND"},
                        other.path());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("[0] bind=none"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("[1] bind=none"), std::string::npos) << run.out;
  EXPECT_TRUE((*d)->unexpected_errors().empty());
}

TEST_F(MpBinding, RunBindToCore) {
  HostInfo h = host();
  if (h.cores < 2) GTEST_SKIP() << "needs 2 cores and hwloc";
  auto r = cohort_cmd({"run", "--bind-to", "core", "-n", "2", "sh", "-c", "echo bind=$COHORT_BIND"},
                      dir());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\[0\] bind=core:[0-9]+)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\[1\] bind=core:[0-9]+)"))) << r.out;
  auto bad = cohort_cmd({"run", "--bind-to", "socket", "true"}, dir());
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("--bind-to wants core, numa, none or auto"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace cohort::mptest
