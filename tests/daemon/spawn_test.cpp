// Spawning: program lookup, identity, output forwarding, exit reporting.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "tests/daemon/daemon_fixture.hpp"

namespace cohort::testing {
namespace {

class DaemonSpawn : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (HasFatalFailure()) return;
    auto c = enrolled();
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    client_.emplace(std::move(c).value());
  }
  RawClient& c() { return *client_; }

  Result<proto::SpawnReply> spawn(const proto::Spawn& s) {
    COHORT_RETURN_IF_ERROR(c().send(s));
    COHORT_ASSIGN_OR_RETURN(proto::SpawnReply r, c().expect<proto::SpawnReply>());
    if (r.req != s.req) return Status(Errc::kInternal, "reply to another request");
    return r;
  }
  /// kTaskExit events until one for each of `tids` arrived.
  Result<std::map<Tid, proto::NotifyEvent>> exits(const std::vector<Tid>& tids) {
    std::map<Tid, proto::NotifyEvent> out;
    while (out.size() < tids.size()) {
      COHORT_ASSIGN_OR_RETURN(proto::NotifyEvent ev, c().expect<proto::NotifyEvent>());
      if (ev.kind == proto::NotifyKind::kTaskExit) out[ev.subject] = ev;
    }
    return out;
  }
  /// Output lines of `tid` until its exit event (then in exit_). Frames of
  /// other tasks are remembered for later calls.
  std::vector<proto::Output> output_until_exit(Tid tid) {
    while (!exits_.count(tid)) {
      auto f = c().next();
      if (!f.is_ok()) {
        ADD_FAILURE() << f.status().to_string();
        return {};
      }
      if (f->type == proto::MsgType::kOutput) {
        proto::Output o;
        EXPECT_TRUE(proto::decode(f->body, o).is_ok());
        lines_[o.tid].push_back(o);
      } else if (f->type == proto::MsgType::kNotifyEvent) {
        proto::NotifyEvent ev;
        EXPECT_TRUE(proto::decode(f->body, ev).is_ok());
        if (ev.kind == proto::NotifyKind::kTaskExit) exits_[ev.subject] = ev;
      }
    }
    exit_ = exits_[tid];
    return lines_[tid];
  }

  std::map<Tid, std::vector<proto::Output>> lines_;
  std::map<Tid, proto::NotifyEvent> exits_;
  std::optional<RawClient> client_;
  proto::NotifyEvent exit_;
};

TEST_F(DaemonSpawn, TrueThreeTimesReportsThreeExits) {
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req("/bin/true", {}, 3, 42)));
  EXPECT_EQ(r.status.code, 0) << r.status.message;
  EXPECT_NE(r.job, 0u);
  ASSERT_EQ(r.tasks.size(), 3u);
  std::vector<Tid> tids;
  for (auto& o : r.tasks) {
    EXPECT_EQ(o.status.code, 0) << o.status.message;
    EXPECT_TRUE(tid::valid(o.tid));
    EXPECT_EQ(tid::host_of(o.tid), 1u);
    tids.push_back(o.tid);
  }
  ASSIGN_OR_FAIL(auto ev, exits(tids));
  for (Tid t : tids) {
    EXPECT_EQ(ev[t].tag, 42);
    EXPECT_EQ(ev[t].exit_code, 0);
    EXPECT_EQ(ev[t].signal, 0);
  }
}

TEST_F(DaemonSpawn, MissingProgramFailsEveryInstance) {
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req("no-such-program-xyz", {}, 2)));
  EXPECT_EQ(r.status.code, 0);
  ASSERT_EQ(r.tasks.size(), 2u);
  for (auto& o : r.tasks) {
    EXPECT_EQ(o.tid, kNoTid);
    EXPECT_EQ(o.status.code, static_cast<std::uint16_t>(Errc::kBadProgram));
    EXPECT_NE(o.status.message.find("program 'no-such-program-xyz' not found in PATH ("),
              std::string::npos)
        << o.status.message;
  }
  auto missing = spawn_req("./nope");
  missing.cwd = dir_.path();
  ASSIGN_OR_FAIL(auto r2, spawn(missing));
  ASSERT_EQ(r2.tasks.size(), 1u);
  EXPECT_NE(r2.tasks[0].status.message.find("program './nope': No such file or directory"),
            std::string::npos)
      << r2.tasks[0].status.message;
}

TEST_F(DaemonSpawn, NonExecutableProgramSaysPermissionDenied) {
  // No x bit at all: even root may not execute it.
  std::string path = dir_.path() + "/not-executable";
  std::ofstream(path) << "#!/bin/sh\necho hi\n";
  ::chmod(path.c_str(), 0600);
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req(path)));
  ASSERT_EQ(r.tasks.size(), 1u);
  EXPECT_EQ(r.tasks[0].status.code, static_cast<std::uint16_t>(Errc::kBadProgram));
  EXPECT_NE(r.tasks[0].status.message.find(": Permission denied"), std::string::npos)
      << r.tasks[0].status.message;
}

TEST_F(DaemonSpawn, BadRequestsFailAsAWhole) {
  for (int count : {0, -1, 4097}) {
    ASSIGN_OR_FAIL(auto r, spawn(spawn_req("/bin/true", {}, count)));
    EXPECT_EQ(r.status.code, static_cast<std::uint16_t>(Errc::kInvalidArgument)) << count;
    EXPECT_TRUE(r.tasks.empty());
  }
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req("")));
  EXPECT_EQ(r.status.code, static_cast<std::uint16_t>(Errc::kInvalidArgument));
  auto bad_env = spawn_req("/bin/true");
  bad_env.env = {"NOEQUALS"};
  ASSIGN_OR_FAIL(auto r2, spawn(bad_env));
  EXPECT_EQ(r2.status.code, static_cast<std::uint16_t>(Errc::kInvalidArgument));
  auto elsewhere = spawn_req("/bin/true");
  elsewhere.host = "no-such-host.example";
  ASSIGN_OR_FAIL(auto r3, spawn(elsewhere));
  EXPECT_EQ(r3.status.code, static_cast<std::uint16_t>(Errc::kNoSuchHost));
}

TEST_F(DaemonSpawn, OutputLinesOnTheirStreamsThenExitCode) {
  ASSIGN_OR_FAIL(
      auto r, spawn(spawn_req("sh", {"-c", "echo hi; echo err >&2; printf tail; exit 3"}, 1, 7)));
  ASSERT_EQ(r.tasks.size(), 1u);
  Tid t = r.tasks[0].tid;
  ASSERT_NE(t, kNoTid) << r.tasks[0].status.message;
  auto lines = output_until_exit(t);
  std::vector<std::string> out, err;
  for (auto& o : lines) (o.stream == proto::Stream::kStdout ? out : err).push_back(o.data);
  EXPECT_EQ(out, (std::vector<std::string>{"hi", "tail"}));
  EXPECT_EQ(err, (std::vector<std::string>{"err"}));
  EXPECT_EQ(exit_.exit_code, 3);
  EXPECT_EQ(exit_.signal, 0);
  EXPECT_EQ(exit_.tag, 7);
}

TEST_F(DaemonSpawn, LongLinesAreCut) {
  ASSIGN_OR_FAIL(
      auto r, spawn(spawn_req("sh", {"-c", "head -c 70000 /dev/zero | tr '\\0' x; echo"}, 1, 1)));
  Tid t = r.tasks.at(0).tid;
  ASSERT_NE(t, kNoTid);
  auto lines = output_until_exit(t);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].data, std::string(65536, 'x'));
  EXPECT_EQ(lines[1].data, std::string(70000 - 65536, 'x'));
}

TEST_F(DaemonSpawn, TasksKnowWhoTheyAre) {
  auto s = spawn_req("sh",
                     {"-c",
                      "echo $COHORT_TID $COHORT_PARENT $COHORT_JOB $COHORT_RANK "
                      "$COHORT_JOB_SIZE $COHORT_DIR $FOO $(pwd)"},
                     2, 1);
  s.env = {"FOO=bar", "COHORT_TID=forged"};
  s.cwd = "/";
  ASSIGN_OR_FAIL(auto r, spawn(s));
  ASSERT_EQ(r.tasks.size(), 2u);
  for (int rank = 0; rank < 2; ++rank) {
    Tid t = r.tasks[static_cast<std::size_t>(rank)].tid;
    auto lines = output_until_exit(t);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].data, std::to_string(t) + " " + std::to_string(me_) + " " +
                                 std::to_string(r.job) + " " + std::to_string(rank) + " 2 " +
                                 dir_.path() + " bar /");
  }
}

TEST_F(DaemonSpawn, RelativeProgramIsFoundInCwd) {
  std::string path = dir_.path() + "/hello.sh";
  std::ofstream(path) << "#!/bin/sh\necho hello from $0\n";
  ::chmod(path.c_str(), 0700);
  auto s = spawn_req("./hello.sh", {}, 1, 1);
  s.cwd = dir_.path();
  ASSIGN_OR_FAIL(auto r, spawn(s));
  Tid t = r.tasks.at(0).tid;
  ASSERT_NE(t, kNoTid) << r.tasks[0].status.message;
  auto lines = output_until_exit(t);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].data, "hello from ./hello.sh");
  // A PATH in the request's environment is where a bare name is looked up.
  auto p = spawn_req("hello.sh", {}, 1, 1);
  p.env = {"PATH=" + dir_.path()};
  ASSIGN_OR_FAIL(auto r2, spawn(p));
  ASSERT_NE(r2.tasks.at(0).tid, kNoTid) << r2.tasks[0].status.message;
}

TEST_F(DaemonSpawn, OutputGoesToTheLogWhenNotForwarded) {
  auto s = spawn_req("sh", {"-c", "echo quiet-line"}, 1, 1);
  s.flags = 0;
  ASSIGN_OR_FAIL(auto r, spawn(s));
  Tid t = r.tasks.at(0).tid;
  auto lines = output_until_exit(t);
  EXPECT_TRUE(lines.empty());
  EXPECT_NE(daemon_->log().find("stdout: quiet-line"), std::string::npos) << daemon_->log();
}

TEST_F(DaemonSpawn, SpawnedTaskEnrollsWithItsTid) {
  auto s = spawn_req(bin("cohort_test_raw_task"), {}, 2, 1);
  ASSIGN_OR_FAIL(auto r, spawn(s));
  ASSERT_EQ(r.tasks.size(), 2u);
  for (int rank = 0; rank < 2; ++rank) {
    Tid t = r.tasks[static_cast<std::size_t>(rank)].tid;
    ASSERT_NE(t, kNoTid) << r.tasks[static_cast<std::size_t>(rank)].status.message;
    auto lines = output_until_exit(t);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines[0].data,
              "welcome code=0 tid=" + std::to_string(t) + " parent=" + std::to_string(me_) +
                  " job=" + std::to_string(r.job) + " rank=" + std::to_string(rank) + " size=2");
    EXPECT_EQ(exit_.exit_code, 0);
  }
  // Through a shell that forks it: another pid, but in the task's process group.
  ASSIGN_OR_FAIL(auto r2,
                 spawn(spawn_req("sh", {"-c", bin("cohort_test_raw_task") + "; true"}, 1, 1)));
  auto lines = output_until_exit(r2.tasks.at(0).tid);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].data.rfind("welcome code=0 ", 0), 0u) << lines[0].data;
}

TEST_F(DaemonSpawn, JobTidsInRankOrder) {
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req("/bin/true", {}, 3, 1)));
  proto::JobTids q;
  q.req = 9;
  q.job = r.job;
  ASSERT_TRUE(c().send(q).is_ok());
  ASSIGN_OR_FAIL(auto j, c().expect<proto::JobTidsReply>());
  EXPECT_EQ(j.req, 9u);
  EXPECT_EQ(j.status.code, 0);
  ASSERT_EQ(j.tids.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(j.tids[i], r.tasks[i].tid);
  q.job = 999999;
  ASSERT_TRUE(c().send(q).is_ok());
  ASSIGN_OR_FAIL(auto none, c().expect<proto::JobTidsReply>());
  EXPECT_EQ(none.status.code, static_cast<std::uint16_t>(Errc::kNotFound));
}

TEST_F(DaemonSpawn, ListTasksAndHosts) {
  ASSIGN_OR_FAIL(RawClient tool, enrolled(/*is_tool=*/true));
  ASSIGN_OR_FAIL(auto r, spawn(spawn_req("sleep", {"100"}, 2)));
  proto::ListTasks q;
  q.req = 3;
  ASSERT_TRUE(c().send(q).is_ok());
  ASSIGN_OR_FAIL(auto list, c().expect<proto::TaskList>());
  // This client (hand-started) and the two sleeps; never the tool.
  ASSERT_EQ(list.tasks.size(), 3u);
  EXPECT_EQ(list.tasks[1].tid, r.tasks[0].tid);
  EXPECT_EQ(list.tasks[1].program, "sleep");
  EXPECT_EQ(list.tasks[1].job, r.job);
  EXPECT_GT(list.tasks[1].pid, 0);
  EXPECT_EQ(list.tasks[2].rank, 1);
  proto::ListHosts h;
  h.req = 4;
  ASSERT_TRUE(c().send(h).is_ok());
  ASSIGN_OR_FAIL(auto hosts, c().expect<proto::HostList>());
  ASSERT_EQ(hosts.hosts.size(), 1u);
  EXPECT_EQ(hosts.hosts[0].index, 1u);
  EXPECT_EQ(hosts.hosts[0].ntasks, 3u);
  EXPECT_GE(hosts.hosts[0].ncpus, 1u);
  EXPECT_EQ(hosts.hosts[0].daemon_pid, daemon_->pid());
  EXPECT_EQ(hosts.hosts[0].address, "unix:" + daemon_->socket_path());
  std::string arch = hosts.hosts[0].arch;
  EXPECT_TRUE(arch.ends_with("-le") || arch.ends_with("-be")) << arch;
}

}  // namespace
}  // namespace cohort::testing
