// launcher/job.hpp — one parallel job run by the `cohort` command: spawn N
// tasks, pass their output on, wait for every exit, stop early on a signal.
//
// `cohort run` and `cohort bench` both drive a job through this class; they
// differ only in what they do with the output lines and the exits.
//
//   install_stop_handlers();                       // SIGINT/SIGTERM/SIGHUP set a flag
//   Job job(session, [](int rank, OutputStream s, std::string_view line) { ... });
//   Status st = job.start(spec);                   // all N started, or none left running
//   int sig = 0;
//   job.wait(&sig);                                // every exit seen, or sig != 0
//   if (sig) job.terminate(std::chrono::seconds(3));  // TERM, then KILL
//   for (const TaskEnd& e : job.ends()) ...        // in the order the exits arrived
//
// Exits come from task-exit notifications registered with the spawn itself
// (SpawnOptions::exit_notify_tag), so no exit can slip by between spawning and
// asking. Output lines and notifications are delivered inside Session calls on
// this thread; the wait loop wakes at least every 100 ms to look at the flag
// the signal handlers set, because a handler can do nothing else safely.
#pragma once

#include <cohort/cohort.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"

namespace cohort::cli {

/// Route SIGINT, SIGTERM and SIGHUP to a flag (see stop_signal()); ignore SIGPIPE,
/// so that a closed output pipe cannot kill us before the job is cleaned up.
void install_stop_handlers();
/// The first stop signal received, or 0.
int stop_signal();
/// How many stop signals arrived (a second Ctrl-C means "hurry").
int stop_signal_count();

struct JobSpec {
  std::string program;             ///< absolute path, or a name the daemon looks up in PATH
  std::vector<std::string> args;
  int count = 1;
  std::vector<std::string> env;    ///< NAME=VALUE for every task
  std::string cwd;
  std::string host;                ///< empty: anywhere
  MapBy map_by = MapBy::kDefault;  ///< --map-by
  int per_host = 0;                ///< --per-host
  BindTo bind_to = BindTo::kAuto;  ///< where the daemon pins each task
};

struct TaskEnd {
  int rank = 0;
  Tid tid = kNoTid;
  int exit_code = 0;               ///< -1 when killed by a signal
  int signal = 0;
};

/// Called for each line a task prints (without its newline).
using LineSink = std::function<void(int rank, OutputStream stream, std::string_view line)>;

class Job {
 public:
  Job(Session& session, LineSink sink) : session_(session), sink_(std::move(sink)) {}

  /// Spawn spec.count tasks. If any instance fails, the ones that started are
  /// killed and waited for, and the first failure is returned with the
  /// library's code and message (which name the program and the reason).
  Status start(const JobSpec& spec);

  /// Wait for every task to exit. Returns early, with *signal set, when a stop
  /// signal arrives (the tasks are then still running: see terminate). Throws
  /// cohort::Error when the daemon is lost.
  void wait(int* signal);
  /// Wait up to `timeout` for the remaining exits; true when all are in.
  bool wait_for(std::chrono::milliseconds timeout);

  /// Send `sig` to every task that has not exited.
  void kill_all(int sig);
  /// kill_all(SIGTERM), wait `grace`, then SIGKILL and wait for the rest.
  void terminate(std::chrono::milliseconds grace);

  const std::vector<Tid>& tids() const { return tids_; }
  const std::vector<TaskEnd>& ends() const { return ends_; }
  bool all_ended() const { return remaining() == 0; }

 private:
  /// Handle one notification if one comes within `timeout`.
  void pump(std::chrono::milliseconds timeout);
  std::size_t remaining() const;
  void deliver(Tid t, OutputStream s, std::string_view line);

  Session& session_;
  LineSink sink_;
  std::vector<Tid> tids_;          // by rank; kNoTid where the spawn failed
  std::unordered_map<Tid, int> rank_by_tid_;
  std::vector<bool> ended_;        // by rank; true where the spawn failed
  std::vector<TaskEnd> ends_;      // in arrival order
  bool spawned_ = false;
  struct Early {                   // output that arrived before spawn() returned
    Tid tid;
    OutputStream stream;
    std::string line;
  };
  std::vector<Early> early_;
};

}  // namespace cohort::cli
