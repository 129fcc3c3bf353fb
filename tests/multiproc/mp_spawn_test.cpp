// Spawning: a task spawns children that know it as their parent; a spawn of a
// program that does not exist (or cannot run) fails per instance, naming it.
#include <sys/stat.h>

#include <fstream>

#include "tests/multiproc/mp_fixture.hpp"

namespace cohort::mptest {
namespace {

class MpSpawn : public MultiprocTest {};

void expect_failed_naming(const std::vector<SpawnOutcome>& out, std::size_t count,
                          const std::string& name) {
  ASSERT_EQ(out.size(), count) << "one outcome per requested instance";
  for (const SpawnOutcome& o : out) {
    EXPECT_FALSE(o.ok()) << "spawn of " << name << " succeeded";
    EXPECT_EQ(o.tid, kNoTid);
    EXPECT_TRUE(o.error == Errc::kBadProgram || o.error == Errc::kNotFound)
        << errc_name(o.error) << ": " << o.message;
    EXPECT_NE(o.message.find(name), std::string::npos)
        << "the message does not name the program: " << o.message;
  }
}

TEST_F(MpSpawn, TaskSpawnsChildrenThatReportToIt) {
  constexpr int kChildren = 3;
  const std::string missing = dir() + "/no-such-dir/mp_task_missing";
  Session& s = session();
  std::vector<Tid> sp =
      spawn_ok(bin("mp_task_spawner"), {bin("mp_task_child"), missing, std::to_string(kChildren)}, 1);

  Message r = must_recv(sp[0], kTagReport);
  EXPECT_EQ(r.unpack_string(), "") << "the spawner's checks of its children";
  std::vector<std::int32_t> kids = r.unpack_vector<std::int32_t>();
  std::vector<std::int32_t> codes = r.unpack_vector<std::int32_t>();
  const auto n_messages = r.unpack<std::int32_t>();
  ASSERT_EQ(kids.size(), static_cast<std::size_t>(kChildren));
  ASSERT_EQ(codes.size(), 2u) << "spawn of 2 instances of a missing program: one outcome each";
  ASSERT_EQ(n_messages, 2);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    auto e = static_cast<Errc>(codes[i]);
    std::string message = r.unpack_string();
    EXPECT_TRUE(e == Errc::kBadProgram || e == Errc::kNotFound) << errc_name(e) << ": " << message;
    EXPECT_NE(message.find(missing), std::string::npos)
        << "the message does not name the program: " << message;
  }

  // The VM agrees: the children are the spawner's, the spawner is ours.
  std::map<Tid, TaskInfo> listed;
  for (const TaskInfo& t : s.tasks()) listed[t.tid] = t;
  ASSERT_TRUE(listed.count(sp[0])) << "the spawner is missing from tasks()";
  EXPECT_EQ(listed[sp[0]].parent, s.tid());
  for (Tid k : kids) {
    ASSERT_TRUE(listed.count(k)) << "child " << k << " is missing from tasks()";
    EXPECT_EQ(listed[k].parent, sp[0]);
    EXPECT_EQ(listed[k].job, listed[kids[0]].job) << "the children were spawned together";
    EXPECT_NE(listed[k].job, listed[sp[0]].job);
  }
  for (std::size_t i = 0; i < kids.size(); ++i) EXPECT_EQ(listed[kids[i]].rank, int(i));

  s.send(sp[0], kTagGo, Message());  // the spawner releases its children and waits for them
  bool unsupported = false;
  expect_clean_exits(wait_exits(sp), &unsupported);
  if (unsupported) GTEST_SKIP() << "the spawner reported it cannot run here";
}

TEST_F(MpSpawn, MissingProgramFailsPerInstanceNamingIt) {
  const std::string path = dir() + "/no-such-dir/mp_task_missing";
  expect_failed_naming(session().spawn(path, {}, 3), 3, path);
}

TEST_F(MpSpawn, ProgramNotInPathFailsNamingIt) {
  const std::string name = "mp_task_not_in_any_path_dir";
  expect_failed_naming(session().spawn(name, {}, 2), 2, name);
}

TEST_F(MpSpawn, NonExecutableFileFailsNamingIt) {
  const std::string path = dir() + "/not-executable";
  std::ofstream(path) << "#!/bin/sh\nexit 0\n";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  expect_failed_naming(session().spawn(path, {}, 1), 1, path);
}

}  // namespace
}  // namespace cohort::mptest
