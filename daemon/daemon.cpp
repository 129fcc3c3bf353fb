#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/ids.hpp"
#include "daemon/leftovers.hpp"

namespace cohort::daemon {

Daemon::Daemon(RuntimeDir dir, std::string vm_name, std::function<void()> on_hangup,
               std::uint32_t index)
    : dir_(std::move(dir)),
      vm_name_(std::move(vm_name)),
      on_hangup_(std::move(on_hangup)),
      tasks_(index),
      conns_(poller_),
      hosts_(index, dir_.socket_path(), ::getpid()),
      notifier_(conns_),
      names_(conns_, tasks_),
      output_(poller_, conns_),
      spawner_(dir_.dir(), vm_name_),
      binder_(Topology::detect()),
      cluster_(*this, poller_) {
  hosts_.set_topology(binder_.topology());
}

Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::create(RuntimeDir dir, std::string vm_name,
                                               std::function<void()> on_hangup,
                                               ClusterSetup cluster) {
  std::uint32_t index = cluster.options.joined ? cluster.options.joined->index : 1;
  std::unique_ptr<Daemon> d(
      new Daemon(std::move(dir), std::move(vm_name), std::move(on_hangup), index));
  COHORT_RETURN_IF_ERROR(d->setup(std::move(cluster)));
  return d;
}

Status Daemon::setup(ClusterSetup cluster) {
  dispatcher_ = std::make_unique<Dispatcher>(*this);
  // A client that vanishes must be an EPIPE on send, never a signal.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
    return errno_status(Errc::kInternal, "sigprocmask", errno);
  signal_fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) return errno_status(Errc::kInternal, "signalfd", errno);

  raise_fd_limit();
  COHORT_RETURN_IF_ERROR(poller_.open());
  COHORT_ASSIGN_OR_RETURN(listen_fd_, dir_.listen());
  COHORT_RETURN_IF_ERROR(poller_.add(listen_fd_.get(), EPOLLIN, make_key(Source::kListener, 0)));
  COHORT_RETURN_IF_ERROR(poller_.add(signal_fd_.get(), EPOLLIN, make_key(Source::kSignal, 0)));
  spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!cluster.listener) {
    // Every daemon listens for the others, even one that is alone so far.
    COHORT_ASSIGN_OR_RETURN(auto bound, Cluster::bind_listener(cluster.options.listen,
                                                               cluster.options.interface));
    cluster.listener = std::move(bound.first);
    cluster.address = std::move(bound.second);
  }
  return cluster_.open(std::move(cluster.listener), std::move(cluster.address),
                       std::move(cluster.options));
}

void Daemon::raise_fd_limit() {
  // Each spawned task costs two pipe fds and usually a connection: a spawn of
  // kMaxSpawnCount tasks needs far more than the common soft limit of 1024.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t want = std::min<rlim_t>(rl.rlim_max, 1u << 16);
  if (want <= rl.rlim_cur) return;
  rl.rlim_cur = want;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    COHORT_LOG_WARN("daemon") << "cannot raise the open file limit: " << std::strerror(errno);
  }
}

std::string Daemon::ready_line() const {
  return "cohortd ready host=" + std::to_string(hosts_.local_index()) +
         " pid=" + std::to_string(::getpid()) + " socket=" + dir_.socket_path();
}

int Daemon::run() {
  COHORT_LOG_INFO("daemon") << "serving VM '" << vm_name_ << "' in " << dir_.dir() << " as host "
                            << hosts_.local_index() << " (" << hosts_.local_name() << ", "
                            << Hosts::arch() << ", " << Hosts::ncpus() << " cpus)";
  std::array<epoll_event, 128> events;
  int rc = 0;
  while (!done_) {
    auto n = poller_.wait(events, next_timeout_ms());
    if (!n.is_ok()) {
      COHORT_LOG_ERROR("daemon") << n.status().to_string() << "; halting";
      rc = 1;
      begin_halt("the event loop failed");
      signal_children(SIGKILL);
      break;
    }
    for (int i = 0; i < *n; ++i) {
      std::uint64_t key = events[static_cast<std::size_t>(i)].data.u64;
      std::uint32_t ev = events[static_cast<std::size_t>(i)].events;
      switch (key_source(key)) {
        case Source::kListener:
          on_listener();
          break;
        case Source::kSignal:
          on_signals();
          break;
        case Source::kConn:
          on_conn(key_id(key), ev);
          break;
        case Source::kPipe:
          output_.on_event(key_id(key));
          break;
        case Source::kTcpListener:
          cluster_.on_listener();
          break;
        case Source::kLink:
          cluster_.on_link(key_id(key), ev);
          break;
      }
    }
    expire_deadlines();
    settle();
  }
  shutdown();
  return rc;
}

void Daemon::on_listener() {
  // Bounded, so that a connection storm cannot starve clients already here.
  for (int i = 0; i < 64 && listen_fd_; ++i) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_) {
        // Out of fds: accept with the spare one and close at once, rather than
        // leave the listener readable forever (a busy loop).
        COHORT_LOG_WARN("daemon.conn") << "out of file descriptors; refusing a connection";
        spare_fd_.reset();
        UniqueFd drop(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        drop.reset();
        spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        return;
      }
      COHORT_LOG_WARN("daemon.conn") << "accept: " << std::strerror(errno);
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      COHORT_LOG_WARN("daemon.conn") << "SO_PEERCRED: " << std::strerror(errno) << "; closing";
      continue;
    }
    if (conns_.size() >= kMaxConnections) {
      COHORT_LOG_WARN("daemon.conn")
          << "refusing pid " << cred.pid << ": already " << kMaxConnections << " connections";
      continue;
    }
    auto c = conns_.add(std::move(fd), cred.pid, cred.uid);
    if (!c.is_ok()) {
      COHORT_LOG_ERROR("daemon.conn") << c.status().to_string();
      continue;
    }
    hello_deadlines_.emplace_back(Clock::now() + kHelloTimeout, (*c)->id());
    COHORT_LOG_DEBUG("daemon.conn") << "accepted " << (*c)->describe();
  }
}

void Daemon::on_signals() {
  signalfd_siginfo si;
  bool child = false;
  while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    switch (static_cast<int>(si.ssi_signo)) {
      case SIGCHLD:
        child = true;
        break;
      case SIGHUP:
        if (on_hangup_) on_hangup_();
        COHORT_LOG_INFO("daemon") << "SIGHUP: log file reopened";
        break;
      default:  // SIGTERM, SIGINT
        if (halting_ && !killing_) {
          COHORT_LOG_INFO("daemon") << "signal " << si.ssi_signo << " again: killing tasks now";
          killing_ = true;
          signal_children(SIGKILL);
          halt_deadline_ = Clock::now() + kKillWait;
        } else {
          begin_halt("signal " + std::to_string(si.ssi_signo) + " from pid " +
                     std::to_string(si.ssi_pid));
        }
    }
  }
  if (child) reap_children();
}

void Daemon::reap_children() {
  // SIGCHLD coalesces: one signal may stand for many exits, so reap until none is left.
  while (true) {
    int st = 0;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    Task* t = tasks_.find_by_pid(pid);
    if (!t) {
      if (cluster_.child_exited(pid, st)) continue;  // a launch agent
      COHORT_LOG_DEBUG("daemon.spawn") << "reaped pid " << pid << ", which is not a task";
      continue;
    }
    ExitRecord rec;
    if (WIFSIGNALED(st)) {
      rec.exit_code = -1;
      rec.signal = WTERMSIG(st);
    } else {
      rec.exit_code = WEXITSTATUS(st);
    }
    finish_task(t->tid, rec);
    // Ours to reap, so gone for good: nothing can still use what it left.
    remove_shm_leftovers(pid);
  }
}

void Daemon::finish_task(Tid t, ExitRecord rec) {
  Task* task = tasks_.find(t);
  if (!task) return;
  if (task->spawned) output_.drain(t);
  COHORT_LOG_DEBUG("daemon.task") << tid_name(t) << " (" << task->program << ") exited: "
                                  << (rec.signal ? "signal " + std::to_string(rec.signal)
                                                 : "code " + std::to_string(rec.exit_code));
  tasks_.mark_exited(t, rec);
  notifier_.task_exited(t, rec);
  names_.task_exited(t);
  binder_.release(t);
  cluster_.task_exited(t, rec);
}

void Daemon::on_conn(ConnId id, std::uint32_t events) {
  ClientConn* c = conns_.find(id);
  if (!c) return;
  if (events & EPOLLOUT) conns_.on_writable(*c);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  bool eof = false;
  Status s = c->read_some(1u << 20, &eof);
  if (!s.is_ok()) {
    conns_.close_later(*c, s.to_string(), true);
    return;
  }
  if (!c->enrolled() && c->received() > kMaxBytesBeforeHello) {
    // Checked before any frame is cut: an unauthenticated client must not make
    // the daemon buffer a 16 MiB frame.
    conns_.close_later(
        *c, "it sent over " + std::to_string(kMaxBytesBeforeHello) + " bytes before Hello", true);
    return;
  }
  // Frames already received are served even when the client has closed
  // behind them (`cohort halt` may send Halt and close at once).
  while (!c->closing()) {
    auto f = c->next_frame();
    if (!f.is_ok()) {
      conns_.close_later(*c, f.status().message(), true);
      return;
    }
    if (!f->has_value()) break;
    dispatcher_->on_frame(*c, **f);
  }
  if (eof && !c->closing())
    conns_.close_later(
        *c, c->has_partial_input() ? "it closed in the middle of a frame" : "it closed", false);
}

void Daemon::connection_closed(ClientConn& c) {
  notifier_.conn_closed(c.id());
  names_.conn_closed(c);
  if (c.tid() == kNoTid) return;
  Task* t = tasks_.find(c.tid());
  if (!t || t->conn != c.id()) return;
  if (t->spawned) {
    t->conn = 0;  // it lives on until reaped, and may enroll again
    return;
  }
  // A hand-started task leaves the VM with its connection. Its exit code is
  // what it said in Bye; without a Bye nobody knows it (-1).
  finish_task(t->tid, ExitRecord{c.bye_code().value_or(-1), 0});
}

void Daemon::expire_deadlines() {
  auto now = Clock::now();
  cluster_.on_tick();
  while (!hello_deadlines_.empty() && hello_deadlines_.front().first <= now) {
    ConnId id = hello_deadlines_.front().second;
    hello_deadlines_.pop_front();
    if (ClientConn* c = conns_.find(id); c && c->state() == ClientConn::State::kAwaitHello)
      conns_.close_later(*c, "no Hello within " + std::to_string(kHelloTimeout.count()) + " s",
                         true);
  }
  if (halting_ && now >= halt_deadline_) {
    if (!killing_) {
      COHORT_LOG_INFO("daemon") << tasks_.child_count() << " task(s) still running after "
                                << kHaltGrace.count() << " s; sending SIGKILL";
      killing_ = true;
      signal_children(SIGKILL);
      halt_deadline_ = now + kKillWait;
    } else {
      COHORT_LOG_WARN("daemon") << tasks_.child_count()
                                << " task(s) did not die after SIGKILL; exiting without them";
      done_ = true;
    }
  }
}

void Daemon::settle() {
  // Flushing can find clients gone; closing them can end hand-started tasks,
  // whose exits send more: repeat until nothing is left to close.
  while (true) {
    conns_.flush_dirty();
    if (!conns_.has_closing()) break;
    for (auto& c : conns_.take_closing()) connection_closed(*c);
  }
  output_.resume_drained();
  cluster_.settle();
  if (halting_ && tasks_.child_count() == 0) done_ = true;
}

int Daemon::next_timeout_ms() const {
  Clock::time_point next = Clock::time_point::max();
  if (!hello_deadlines_.empty()) next = hello_deadlines_.front().first;
  if (halting_) next = std::min(next, halt_deadline_);
  next = std::min(next, cluster_.next_deadline());
  if (next == Clock::time_point::max()) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void Daemon::begin_halt(const std::string& why) {
  if (halting_) return;
  halting_ = true;
  COHORT_LOG_INFO("daemon") << "halting (" << why << "): " << tasks_.child_count()
                            << " spawned task(s) to stop";
  // Stop listening first, so that new clients fail at connect instead of
  // enrolling in a VM that is going away.
  if (listen_fd_) {
    poller_.remove(listen_fd_.get());
    listen_fd_.reset();
  }
  dir_.remove_socket();
  notifier_.vm_halting();
  cluster_.halting();
  signal_children(SIGTERM);
  halt_deadline_ = Clock::now() + kHaltGrace;
}

void Daemon::signal_children(int sig) {
  for (const auto& [tid, t] : tasks_.live()) {
    if (!t.spawned) continue;
    // The task leads its own process group; the group takes its helpers too.
    if (::kill(-t.pid, sig) != 0) ::kill(t.pid, sig);
  }
}

void Daemon::shutdown() {
  // Best effort for the last words (Acks, kVmHalt, exit events); the sockets
  // close when the process exits.
  conns_.flush_dirty();
  cluster_.settle();
  dir_.remove_files();
  COHORT_LOG_INFO("daemon") << "halted";
}

}  // namespace cohort::daemon
