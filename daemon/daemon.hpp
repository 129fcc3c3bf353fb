// daemon/daemon.hpp — cohortd's event loop and the objects it owns.
//
// One thread, one epoll set (Poller) holding: the listening Unix socket, a
// signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP, blocked for normal delivery),
// every client connection and every task output pipe. Deadlines (Hello within
// kHelloTimeout, the halt's grace period) become the epoll_wait timeout; the
// loop never sleeps for anything else.
//
// Each iteration handles the ready events, then the expired deadlines, then
// settles: flushes the connections that have output, closes the ones marked
// for closing (a hand-started task exits with its connection, which may send
// more events), and resumes paused output pipes. Nothing a client sends can
// stop the loop: a bad client is one log line and a closed connection.
//
// Halt (a Halt request, SIGTERM or SIGINT): stop listening and remove the
// socket, send kVmHalt to every client, SIGTERM every spawned task's process
// group, SIGKILL what is left after kHaltGrace, and leave the loop once every
// child is reaped; then the socket, cookie and pid file are removed.
// Hand-started tasks are not signalled: they are told (kVmHalt) and lose
// their connection when the daemon exits.
//
// Ownership: Daemon owns everything here; Dispatcher holds a reference back.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "daemon/binding.hpp"
#include "daemon/client_conn.hpp"
#include "daemon/cluster.hpp"
#include "daemon/hosts.hpp"
#include "daemon/name_service.hpp"
#include "daemon/notifier.hpp"
#include "daemon/output_forwarder.hpp"
#include "daemon/poller.hpp"
#include "daemon/runtime_dir.hpp"
#include "daemon/spawner.hpp"
#include "daemon/task_table.hpp"

namespace cohort::daemon {

class Dispatcher;

/// The multi-host part of start-up (main.cpp): the bound TCP listener, the
/// address peers dial, and the join result when this daemon joined a VM.
struct ClusterSetup {
  UniqueFd listener;
  std::string address;
  ClusterOptions options;
};

inline constexpr std::chrono::seconds kHelloTimeout{10};
inline constexpr std::chrono::seconds kHaltGrace{2};
inline constexpr std::chrono::seconds kKillWait{10};
inline constexpr std::size_t kMaxConnections = 16384;
/// A Hello is small; a client that sends more before enrolling is not one of ours.
inline constexpr std::uint64_t kMaxBytesBeforeHello = 64 * 1024;

class Daemon {
 public:
  using Clock = std::chrono::steady_clock;

  /// Set up the loop on a claimed directory. `on_hangup` runs on SIGHUP
  /// (main reopens the log file there).
  static Result<std::unique_ptr<Daemon>> create(RuntimeDir dir, std::string vm_name,
                                                std::function<void()> on_hangup,
                                                ClusterSetup cluster = {});
  ~Daemon();

  /// "cohortd ready host=1 pid=PID socket=PATH"
  std::string ready_line() const;
  /// Serve until halted. Returns the process exit code.
  int run();

  // ---- for the Dispatcher ----
  TaskTable& tasks() noexcept { return tasks_; }
  ConnTable& conns() noexcept { return conns_; }
  Notifier& notifier() noexcept { return notifier_; }
  NameService& names() noexcept { return names_; }
  OutputForwarder& output() noexcept { return output_; }
  const Spawner& spawner() const noexcept { return spawner_; }
  Spawner& spawner() noexcept { return spawner_; }
  BindPlanner& binder() noexcept { return binder_; }
  const Hosts& hosts() const noexcept { return hosts_; }
  Cluster& cluster() noexcept { return cluster_; }
  const std::string& runtime_dir() const noexcept { return dir_.dir(); }
  const std::string& cookie() const noexcept { return dir_.cookie(); }
  const std::string& vm_name() const noexcept { return vm_name_; }
  bool halting() const noexcept { return halting_; }
  void begin_halt(const std::string& why);
  /// Task `t` is gone: its last output, then its record, watchers and names.
  void finish_task(Tid t, ExitRecord rec);

 private:
  Daemon(RuntimeDir dir, std::string vm_name, std::function<void()> on_hangup, std::uint32_t index);
  Status setup(ClusterSetup cluster);
  void raise_fd_limit();

  void on_listener();
  void on_signals();
  void on_conn(ConnId id, std::uint32_t events);
  void reap_children();
  void connection_closed(ClientConn& c);
  void expire_deadlines();
  void settle();
  int next_timeout_ms() const;
  void signal_children(int sig);
  void shutdown();

  RuntimeDir dir_;
  std::string vm_name_;
  std::function<void()> on_hangup_;
  Poller poller_;
  UniqueFd listen_fd_;
  UniqueFd signal_fd_;
  UniqueFd spare_fd_;  // closed to accept-and-drop when out of fds

  TaskTable tasks_;
  ConnTable conns_;
  Hosts hosts_;
  Notifier notifier_;
  NameService names_;
  OutputForwarder output_;
  Spawner spawner_;
  BindPlanner binder_;  // this host's topology and which cores bound tasks hold
  std::unique_ptr<Dispatcher> dispatcher_;
  Cluster cluster_;

  std::deque<std::pair<Clock::time_point, ConnId>> hello_deadlines_;  // in time order
  bool halting_ = false;
  bool killing_ = false;  // SIGKILL already sent
  Clock::time_point halt_deadline_{};
  bool done_ = false;
};

}  // namespace cohort::daemon
