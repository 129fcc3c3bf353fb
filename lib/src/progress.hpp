// lib/src/progress.hpp — the progress engine: everything a Session does between
// the user's call and the wire.
//
// The Engine owns the local transport endpoints, the link to the daemon, the
// peer table and the matcher. There is no progress thread: the network and the
// daemon socket are read only inside Engine calls, on the caller's thread.
//  * poll_once() polls the endpoints (and, every few calls or when a daemon
//    answer is awaited, the daemon socket) and handles what came: frames go to
//    the matcher (straight into a posted receive's buffer when one matches),
//    completions to their operations, accepted and lost connections to Peers,
//    Output lines to the spawner's callback (or stdout/stderr as "[t<tid>] line"),
//    notifications into the matcher as ordinary messages.
//  * wait(done) calls poll_once() until done() holds, spinning for COHORT_SPIN_US
//    (default 200 µs: waking a sleeping process costs ~25 µs on a VM) with a
//    sched_yield() between polls (so that a peer waiting for this CPU gets it
//    when tasks outnumber cores), then — after every endpoint's prepare_wait()
//    agreed — sleeping in epoll on the endpoints' wait fds and the daemon
//    socket, then spinning again.
//  * Which endpoints a poll_once() polls: endpoints whose idle poll() makes
//    no system call (shm, ucx: measured once at open) are polled every time.
//    When there are several endpoints, the others (tcp, ofi: an epoll_wait
//    or a CQ read each) are polled every time only while they are hot — an
//    event within the last kHotPolls polls, or an operation of ours in flight
//    on them. Cold ones are checked together every kCheckEvery-th poll with
//    one epoll_wait(…, 0) on their wait fds (a ready one becomes hot), swept
//    every kSweepEvery-th poll whatever their fds say, and after every sleep.
//    So idle tcp and ofi endpoints cost a shm ping-pong one system call per
//    32 polls, and a tcp ping-pong polls tcp every time. A lone endpoint is
//    always polled.
//
// Operations (SendOp, RecvOp) belong to the caller and must stay put until done;
// their address is the transport OpId. A pending send borrows the op's header and
// iovec and the caller's payload until kSendDone.
#pragma once

#include <cohort/cohort.hpp>

#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "lib/src/daemon_link.hpp"
#include "lib/src/matcher.hpp"
#include "lib/src/peers.hpp"
#include "lib/src/wire_header.hpp"
#include "transport/transport.hpp"

namespace cohort::lib {

using Clock = std::chrono::steady_clock;

/// A send in flight; stays put (stack or Request) until done.
struct SendOp {
  WireBytes header{};
  iovec iov{};
  bool done = false;
  Status status;
};

using OutputFn = std::function<void(Tid, OutputStream, std::string_view)>;

class Engine final : public EventSink {
 public:
  struct Options {
    std::chrono::microseconds spin{200};
    std::size_t eager_limit = 0;  // 0: the transport's default
    bool yield = true;            // sched_yield() between polls while spinning
  };
  Engine(std::unique_ptr<DaemonLink> link, Tid self, std::uint32_t host, Options options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Tid self() const noexcept { return self_; }
  DaemonLink& link() noexcept { return *link_; }

  /// Open one endpoint per enabled transport and publish the addresses (once).
  Status open_endpoints();
  /// Finish pending sends (bounded), close the endpoints and leave the daemon.
  void close() noexcept;

  /// kVmHalted after the VM said it is halting, kDaemonLost when the daemon is
  /// gone; OK otherwise. Session calls check this first.
  Status usable() const;
  /// usable().is_ok(), without building a Status: the hot path's check.
  bool is_usable() const noexcept { return !closed_ && !halted_ && !link_->lost(); }

  // ---- progress ----
  /// One round: every endpoint that is due (header comment), and the daemon
  /// every kDaemonEvery-th round. True when anything came.
  bool poll_once(bool daemon_too = false) {
    ++polls_;
    // Off the short way: a sweep, a cold check or a daemon read is due (all
    // at multiples of kCheckEvery), or a daemon answer is awaited.
    if (daemon_too || calls_ > 0 || (polls_ & (kCheckEvery - 1)) == 0) [[unlikely]]
      return poll_once_all(daemon_too);
    bool any = false;
    for (std::uint8_t i = 0; i < nslots_; ++i) {
      const PollSlot& slot = slots_[i];
      if (!slot.every_poll && slot.in_flight == 0 && polls_ - slot.last_event > kHotPolls)
        continue;
      any |= poll_endpoint(i);
    }
    return any;
  }
  /// Make progress until done() is true. kTimeout at `deadline`; unless
  /// `interruptible` is false, the error of usable() when the VM goes away.
  template <class Done>
  Status wait(Done done, std::optional<Clock::time_point> deadline = std::nullopt,
              bool interruptible = true);

  // ---- sending ----
  /// Start sending `payload` to `dest`; op.done when it left at once, else kSendDone
  /// finishes it. Resolves and connects the peer first if needed (that may wait).
  Status start_send(SendOp& op, Tid dest, int tag, std::uint32_t context, std::uint8_t flags,
                    std::span<const std::byte> payload);
  /// start_send, then wait for the op.
  Status send(Tid dest, int tag, std::uint32_t context, std::uint8_t flags,
              std::span<const std::byte> payload);
  /// Wait (not interruptibly: the transport borrows the op) until `op` is done.
  Status finish_send(SendOp& op);

  // ---- receiving ----
  /// Take the oldest matching unexpected message or post `op`.
  void start_recv(RecvOp& op);
  /// True (and `op` completed with an error) when op waits for a specific task
  /// that is gone and nothing more can come from it.
  bool recv_source_gone(RecvOp& op) {
    // Nothing can be gone while no peer ever died: the common case, inline.
    if (op.state != RecvOp::State::kPosted || op.source == kAnyTid || !peers_.any_dead())
      return false;
    return recv_source_gone_slow(op);
  }
  /// start_recv, then wait until done or `deadline` (then kTimeout, op abandoned).
  Status recv(RecvOp& op, std::optional<Clock::time_point> deadline = std::nullopt);
  /// Withdraw a receive that is not done: unpost it, or wait for a payload in flight.
  void abandon_recv(RecvOp& op) noexcept;
  /// The oldest matching message that has arrived (after one poll), or nullptr.
  const UnexpectedMsg* probe(Tid source, int tag, std::uint32_t context);

  // ---- daemon requests ----
  /// Send `req` (its req field is set here) and wait for the reply of type Reply.
  template <class Reply, class Req>
  Result<Reply> call(Req& req);

  // ---- peers ----
  /// The peer to send to, resolved and connected (may wait for the daemon).
  Result<Peer*> peer_for_send(Tid dest);
  std::string transport_to(Tid dest);
  /// The endpoints opened (after open_endpoints()), in preference order.
  const std::vector<LocalEndpoint>& endpoints() const noexcept { return eps_; }

  // ---- spawned tasks' output ----
  /// Lines of `tid` go to *fn (nullptr: this process's stdout/stderr).
  void set_output_sink(Tid tid, std::shared_ptr<OutputFn> fn);
  /// While a spawn is in flight, lines from tasks not yet known are held back.
  void begin_spawn() noexcept { ++spawns_in_flight_; }
  void end_spawn();

 private:
  void handle(std::uint8_t ep, transport::Event& ev);
  void on_frame(std::uint8_t ep, transport::Event& ev, bool announced);
  /// A frame whose header is bad or names another sender than its
  /// connection's task: log why, drop the connection.
  [[gnu::cold]] void drop_bad_frame(std::uint8_t ep, transport::Event& ev);
  bool recv_source_gone_slow(RecvOp& op);
  void on_recv_done(RecvOp& op, const Status& st);
  void on_unexpected_done(UnexpectedMsg& m, const Status& st);
  /// A whole payload that is here (eager frame, self-send, notification).
  void deliver(const Envelope& e, std::span<const std::byte> payload);
  bool poll_daemon();
  /// Sleep until an fd is ready or the deadline (at most a second); then poll.
  /// True when something woke us.
  bool block(std::optional<Clock::time_point> deadline);
  /// sched_yield(); false when another task ran meanwhile (the CPU is contended).
  static bool relax(Clock::time_point now) noexcept;
  /// Whether an endpoint has a send or payload receive of ours under way.
  bool transfers_in_flight() const noexcept {
    for (std::uint8_t i = 0; i < nslots_; ++i)
      if (slots_[i].in_flight != 0) return true;
    return false;
  }
  /// wait()'s tight spin before it starts yielding (short: a task that
  /// shares its core waits that long for the CPU it needs), with the clock
  /// read every kTightPolls polls (about a microsecond with shm; one poll of
  /// an idle tcp endpoint is a system call).
  static constexpr std::chrono::microseconds kTightSpin{10};
  static constexpr std::uint32_t kTightPolls = 32;
  void watch(Tid source);
  void write_default_output(const proto::Output& out);
  void on_output(proto::Output& out) override;
  void on_notify(const proto::NotifyEvent& ev) override;

  std::unique_ptr<DaemonLink> link_;
  Tid self_;
  std::uint32_t host_;
  Options options_;
  /// How often each endpoint is polled (see the header comment).
  struct PollSlot {
    transport::Endpoint* ep = nullptr;
    bool every_poll = true;        // cheap to poll, or the only endpoint
    std::uint32_t in_flight = 0;   // our sends and payload receives it has not finished
    std::uint64_t last_event = 0;  // polls_ when it last reported something
  };
  static constexpr std::size_t kMaxEndpoints = 8;
  static constexpr std::uint64_t kCheckEvery = 32;    // powers of two
  static constexpr std::uint64_t kSweepEvery = 1024;
  static constexpr std::uint64_t kHotPolls = 256;
  static constexpr std::uint64_t kDaemonEvery = 256;
  static_assert(kSweepEvery % kCheckEvery == 0 && kDaemonEvery % kCheckEvery == 0,
                "poll_once() takes its short way between multiples of kCheckEvery");
  /// One epoll_wait(…, 0) on the cold endpoints' wait fds; ready ones become hot.
  void check_cold();
  /// Fill slots_ from eps_: measure which endpoints poll without a system call.
  void plan_polling();
  bool poll_endpoint(std::uint8_t i) {
    const std::size_t n = slots_[i].ep->poll(events_);
    return n != 0 && handle_polled(i, n);
  }
  /// Hands the `n` events just polled from endpoint i to handle(), polling
  /// it again while it fills the whole span. True.
  bool handle_polled(std::uint8_t i, std::size_t n);
  /// poll_once() with everything that is due (its polls_ already counted).
  bool poll_once_all(bool daemon_too);
  /// Make every endpoint look at its sockets now (new connections included),
  /// then poll them all: for rare paths that must not miss a late arrival.
  void sweep_endpoints();
  /// Send the transport choices Peers made to the daemon (one frame each, once).
  void report_choices();

  std::vector<LocalEndpoint> eps_;
  std::array<PollSlot, kMaxEndpoints> slots_{};
  std::uint8_t nslots_ = 0;
  UniqueFd cold_epoll_;  // wait fds of the endpoints not polled every time
  Peers peers_;
  Matcher matcher_;
  UniqueFd epoll_;
  bool opened_ = false;
  bool can_sleep_ = true;  // every endpoint has a wait fd
  bool halted_ = false;
  bool closed_ = false;
  std::uint64_t polls_ = 0;
  std::size_t pending_sends_ = 0;
  int calls_ = 0;  // daemon answers a caller is waiting for
  std::array<transport::Event, 32> events_;
  // Output routing.
  std::unordered_map<Tid, std::shared_ptr<OutputFn>> sinks_;
  int spawns_in_flight_ = 0;
  std::vector<proto::Output> held_;
};

// ---- templates ---------------------------------------------------------------------

template <class Done>
Status Engine::wait(Done done, std::optional<Clock::time_point> deadline, bool interruptible) {
  if (done()) return Status();
  // First a tight spin of kTightSpin: polls back to back, the clock read
  // only every kTightPolls polls, and no PAUSE (140 cycles on recent x86:
  // half an shm hop). A message that arrives now is seen within one poll,
  // not after a sched_yield() round trip (0.3-0.5 µs on a VM: more than a
  // whole shm hop).
  const auto tight_end = Clock::now() + kTightSpin;
  for (;;) {
    for (std::uint32_t k = 0; k < kTightPolls; ++k)
      if (poll_once() && done()) return Status();
    if (interruptible && !is_usable()) [[unlikely]]
      return usable();
    const auto now = Clock::now();
    if (deadline && now >= *deadline) return Status(Errc::kTimeout, "timed out");
    if (now >= tight_end) break;
  }
  auto spin_end = Clock::now() + options_.spin;
  bool contended = false;
  for (;;) {
    const bool busy = poll_once();
    if (done()) return Status();
    if (interruptible && !is_usable()) [[unlikely]]
      return usable();
    const auto now = Clock::now();
    if (deadline && now >= *deadline) return Status(Errc::kTimeout, "timed out");
    if (busy) continue;
    // Past the spin time, a transfer of ours that is under way (a payload
    // moving either way) keeps us spinning: progress is ours to make, and
    // a sleeper pays a wake-up per hop of it. Waiting for a message that
    // has not started is what sleeping is for.
    if (now < spin_end || (!contended && transfers_in_flight())) {
      // A yield that gave the CPU away means tasks outnumber cores here: then
      // sleeping is cheaper than spinning (a woken task runs at once, a
      // spinning one waits for its turn), so stop spinning.
      if (options_.yield && !relax(now)) {
        spin_end = now;
        contended = true;
      }
      continue;
    }
    const bool woke = block(deadline);
    if (done()) return Status();
    if (woke) spin_end = Clock::now() + options_.spin;  // after a mere timeout, sleep again
  }
}

template <class Reply, class Req>
Result<Reply> Engine::call(Req& req) {
  if (link_->lost()) return link_->lost_status();
  req.req = link_->next_req();
  const std::uint32_t id = req.req;
  COHORT_RETURN_IF_ERROR(link_->send(req));
  ++calls_;
  Status st = wait([&] { return link_->has_reply(id) || link_->lost(); }, std::nullopt, false);
  --calls_;
  COHORT_RETURN_IF_ERROR(st);
  auto reply = link_->take_reply(id);
  if (!reply) return link_->lost_status();
  return decode_reply<Reply>(*reply);
}

}  // namespace cohort::lib
