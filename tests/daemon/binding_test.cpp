// Topology reading and binding plans on synthetic topologies (hwloc's
// "pack:2 numa:1 core:2 pu:1" descriptions and an lstopo XML file), and the
// affinity scope that applies a plan, on this machine's own CPUs.
#include "daemon/binding.hpp"

#include <gtest/gtest.h>

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/daemon_harness.hpp"

namespace cohort::daemon {
namespace {

using proto::BindTo;

Topology synthetic_or_skip(const std::string& desc) {
  auto t = Topology::synthetic(desc);
  if (!t.is_ok()) {
    if (!Topology::hwloc_available()) return Topology{};
    ADD_FAILURE() << t.status().to_string();
    return Topology{};
  }
  return std::move(t).value();
}

#define REQUIRE_HWLOC() \
  if (!Topology::hwloc_available()) GTEST_SKIP() << "built without hwloc"

std::vector<std::uint32_t> indexes(const std::vector<Binding>& bs) {
  std::vector<std::uint32_t> out;
  for (const auto& b : bs) out.push_back(b.bound() ? b.index : 999);
  return out;
}

TEST(Topology, SyntheticCounts) {
  REQUIRE_HWLOC();
  Topology t = synthetic_or_skip("pack:2 numa:1 core:2 pu:2");
  EXPECT_EQ(t.summary(), "2 packages, 2 NUMA nodes, 4 cores, 8 PUs");
  ASSERT_EQ(t.core_cpus.size(), 4u);
  EXPECT_EQ(t.core_cpus[0], (std::vector<unsigned>{0, 1}));
  EXPECT_EQ(t.core_cpus[3], (std::vector<unsigned>{6, 7}));
  ASSERT_EQ(t.numa_cpus.size(), 2u);
  EXPECT_EQ(t.numa_cpus[1], (std::vector<unsigned>{4, 5, 6, 7}));
  EXPECT_FALSE(t.this_system);
  EXPECT_NE(t.note.find("not bound"), std::string::npos) << t.note;
}

TEST(Topology, ThisMachineIsKnownAndBindable) {
  REQUIRE_HWLOC();
  if (std::getenv("HWLOC_XMLFILE") || std::getenv("HWLOC_SYNTHETIC")) GTEST_SKIP();
  Topology t = Topology::detect();
  EXPECT_TRUE(t.known()) << t.note;
  EXPECT_TRUE(t.this_system);
  EXPECT_TRUE(t.note.empty()) << t.note;
  EXPECT_GE(t.pus, t.cores);
  EXPECT_GE(t.packages, 1u);
  EXPECT_GE(t.numa_nodes, 1u);
}

TEST(Topology, XmlFileFromLstopo) {
  REQUIRE_HWLOC();
  cohort::testing::TempDir dir;
  const std::string xml = dir.path() + "/t.xml";
  const std::string cmd = "lstopo --input 'pack:2 core:2 pu:1' " + xml + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0 || !std::ifstream(xml)) GTEST_SKIP() << "no lstopo";
  auto t = Topology::from_xml(xml);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->summary(), "2 packages, 1 NUMA node, 4 cores, 4 PUs");
  // And as the daemon reads it: through HWLOC_XMLFILE.
  ::setenv("HWLOC_XMLFILE", xml.c_str(), 1);
  Topology d = Topology::detect();
  ::unsetenv("HWLOC_XMLFILE");
  EXPECT_EQ(d.summary(), "2 packages, 1 NUMA node, 4 cores, 4 PUs");
  EXPECT_FALSE(d.this_system);
  EXPECT_NE(d.note.find("HWLOC_XMLFILE"), std::string::npos) << d.note;
}

TEST(BindPlanner, CoresRoundRobinOverFreeCores) {
  REQUIRE_HWLOC();
  BindPlanner p(synthetic_or_skip("pack:2 numa:1 core:2 pu:1"));
  auto first = p.plan(BindTo::kCore, 2, 0, nullptr);
  EXPECT_EQ(indexes(first), (std::vector<std::uint32_t>{0, 1}));
  EXPECT_EQ(first[1].cpus, (std::vector<unsigned>{1}));
  EXPECT_EQ(first[1].describe(), "core:1");
  p.assign(10, first[0]);
  p.assign(11, first[1]);
  EXPECT_EQ(indexes(p.plan(BindTo::kCore, 2, 2, nullptr)), (std::vector<std::uint32_t>{2, 3}));
  // Plans reserve nothing: the same question, the same answer.
  auto second = p.plan(BindTo::kCore, 2, 2, nullptr);
  p.assign(12, second[0]);
  p.assign(13, second[1]);
  // Every core held: round robin over the least used goes on from where it was.
  EXPECT_EQ(indexes(p.plan(BindTo::kCore, 5, 4, nullptr)),
            (std::vector<std::uint32_t>{0, 1, 2, 3, 0}));
  // A core freed by an exit is the one handed out next.
  p.release(12);
  EXPECT_EQ(p.core_users(2), 0u);
  EXPECT_EQ(indexes(p.plan(BindTo::kCore, 1, 3, nullptr)), (std::vector<std::uint32_t>{2}));
}

TEST(BindPlanner, AutoBindsUntilOversubscribed) {
  REQUIRE_HWLOC();
  BindPlanner p(synthetic_or_skip("pack:2 core:2 pu:1"));
  std::string note;
  EXPECT_EQ(indexes(p.plan(BindTo::kAuto, 4, 0, &note)),
            (std::vector<std::uint32_t>{0, 1, 2, 3}));
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_EQ(indexes(p.plan(BindTo::kAuto, 3, 2, &note)),
            (std::vector<std::uint32_t>{999, 999, 999}));
  EXPECT_NE(note.find("oversubscribed (5 tasks on 4 cores)"), std::string::npos) << note;
  // Asked for explicitly, cores are shared rather than refused.
  EXPECT_EQ(indexes(p.plan(BindTo::kCore, 5, 0, nullptr)),
            (std::vector<std::uint32_t>{0, 1, 2, 3, 0}));
  EXPECT_EQ(indexes(p.plan(BindTo::kNone, 2, 0, nullptr)), (std::vector<std::uint32_t>{999, 999}));
}

TEST(BindPlanner, NumaNodesRoundRobin) {
  REQUIRE_HWLOC();
  BindPlanner p(synthetic_or_skip("pack:2 numa:1 core:2 pu:2"));
  auto plan = p.plan(BindTo::kNuma, 3, 0, nullptr);
  EXPECT_EQ(indexes(plan), (std::vector<std::uint32_t>{0, 1, 0}));
  EXPECT_EQ(plan[1].cpus, (std::vector<unsigned>{4, 5, 6, 7}));
  EXPECT_EQ(plan[1].describe(), "numa:1");
  p.assign(20, plan[0]);
  EXPECT_EQ(p.numa_users(0), 1u);
  EXPECT_EQ(indexes(p.plan(BindTo::kNuma, 1, 1, nullptr)), (std::vector<std::uint32_t>{1}));
}

TEST(BindPlanner, SyntheticPlansAreNeverApplied) {
  REQUIRE_HWLOC();
  BindPlanner p(synthetic_or_skip("pack:2 core:2 pu:1"));
  EXPECT_FALSE(p.can_apply());
  auto plan = plan_spawn(p, BindTo::kCore, 2, 0, "a test");
  EXPECT_EQ(indexes(plan), (std::vector<std::uint32_t>{999, 999}));
}

TEST(BindPlanner, UnknownTopologyBindsNothing) {
  Topology none;
  none.note = "built without hwloc: tasks are not bound";
  BindPlanner p(none);
  std::string note;
  EXPECT_EQ(indexes(p.plan(BindTo::kCore, 2, 0, &note)), (std::vector<std::uint32_t>{999, 999}));
  EXPECT_EQ(note, none.note);
  note.clear();
  EXPECT_EQ(indexes(p.plan(BindTo::kAuto, 2, 0, &note)), (std::vector<std::uint32_t>{999, 999}));
  EXPECT_TRUE(note.empty()) << "auto does not complain";
}

std::vector<unsigned> current_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned> out;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

TEST(AffinityScope, BindsThenRestores) {
  const std::vector<unsigned> before = current_cpus();
  ASSERT_FALSE(before.empty());
  {
    auto scope = AffinityScope::bind(std::vector<unsigned>{before.back()});
    ASSERT_TRUE(scope.is_ok()) << scope.status().to_string();
    EXPECT_EQ(current_cpus(), std::vector<unsigned>{before.back()});
  }
  EXPECT_EQ(current_cpus(), before);
}

TEST(AffinityScope, CpusThatDoNotExistAreAnError) {
  const std::vector<unsigned> before = current_cpus();
  auto scope = AffinityScope::bind(std::vector<unsigned>{4000});
  EXPECT_FALSE(scope.is_ok());
  EXPECT_EQ(current_cpus(), before);
}

}  // namespace
}  // namespace cohort::daemon
