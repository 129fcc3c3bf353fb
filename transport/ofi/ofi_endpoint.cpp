// The ofi endpoint's life cycle (open, close), its peer table, poll() and
// retiring peers. One of the four files of OfiEndpoint (ofi_endpoint.hpp):
// ofi_connect.cpp (connections, the watch), ofi_send.cpp (the send path),
// ofi_dispatch.cpp (what arrives).
#include "transport/ofi/ofi_endpoint.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "base/log.hpp"
#include "transport/base/options.hpp"
#include "transport/ofi/ofi_address.hpp"

namespace cohort::transport::ofi {

namespace {

constexpr const char* kLog = "transport.ofi";
// epoll tags below Watch::kTagBase.
constexpr std::uint64_t kWakeTag = 1;
constexpr std::uint64_t kCqTag = 2;
// Polls that find the completion queue empty before a peer whose watch closed
// is retired; many more while a message of it waits for an earlier one (a
// segmented rxm message arrives over many polls).
constexpr unsigned kDrainPolls = 2;
constexpr unsigned kDrainPollsParked = 1024;
// How long closing may wait for posted receives to finish (see drain_for_close()).
constexpr auto kCloseDrain = std::chrono::seconds(2);

std::uint64_t random_nonce() {
  std::random_device rd;
  std::uint64_t n = (std::uint64_t{rd()} << 32) ^ rd();
  return n != 0 ? n : 1;
}

}  // namespace

// ---- life cycle ---------------------------------------------------------------

Result<std::unique_ptr<Endpoint>> OfiEndpoint::open(const EndpointOptions& options) {
  COHORT_RETURN_IF_ERROR(check_options(options));
  std::unique_ptr<OfiEndpoint> ep(new OfiEndpoint());
  COHORT_RETURN_IF_ERROR(ep->init(options));
  return std::unique_ptr<Endpoint>(std::move(ep));
}

Status OfiEndpoint::init(const EndpointOptions& options) {
  hello_ = options.hello;
  COHORT_ASSIGN_OR_RETURN(fabric_, Fabric::open(options.bind_host));
  caps_.max_inline = resolve_eager_limit(options, kLog);
  caps_.max_iov = kMaxPayloadIov;
  caps_.wait_fd = fabric_->wait_fd() >= 0;
  caps_.thread_safe = false;
  iov_limit_ = std::min<std::size_t>(fabric_->iov_limit(), kMaxPayloadIov);
  trace_sources_ = fabric_->has_source() && log::enabled(log::Level::kTrace, kLog);
  inject_size_ = std::min(fabric_->inject_size(), kInjectMax);
  memory_ = std::make_unique<Memory>(*fabric_);
  pools_ = std::make_unique<OpPools>(*memory_);
  COHORT_RETURN_IF_ERROR(bounce_.init(*memory_, caps_.max_inline));

  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return errno_status(Errc::kIoError, "epoll_create1", errno);
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) return errno_status(Errc::kIoError, "eventfd", errno);
  auto watch_fd = [&](int fd, std::uint64_t tag) -> Status {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
      return errno_status(Errc::kIoError, "epoll_ctl(ADD)", errno);
    return Status();
  };
  COHORT_RETURN_IF_ERROR(watch_fd(wake_fd_.get(), kWakeTag));
  if (caps_.wait_fd) COHORT_RETURN_IF_ERROR(watch_fd(fabric_->wait_fd(), kCqTag));
  COHORT_ASSIGN_OR_RETURN(watch_, Watch::open(options.bind_host, epoll_.get()));

  nonce_ = random_nonce();
  host_ = local_host_id();
  address_ = format_address({fabric_->provider(), fabric_->fabric_name(), host_,
                             static_cast<std::uint32_t>(::getpid()), nonce_, caps_.max_inline,
                             watch_->address(), fabric_->name()});
  if (long ret = bounce_.post(fabric_->ep()); ret != 0)
    return Status(Errc::kIoError, fi_error("fi_trecv (bounce buffers)", ret));
  alive_ = LocalEndpoints::add(fabric_->name());
  COHORT_LOG_DEBUG(kLog) << "open " << address_ << " (" << bounce_.count() << " bounce buffers of "
                         << bounce_.buffer_bytes() << " bytes, inject " << fabric_->inject_size()
                         << ", iov " << fabric_->iov_limit()
                         << (memory_->needed() ? ", registering" : "") << ")";
  return Status();
}

OfiEndpoint::~OfiEndpoint() {
  if (alive_) LocalEndpoints::remove(fabric_->name());
  if (fabric_ && fabric_->ep() && alive_) {
    // shm progress touches the region of a peer with a send of ours still
    // in flight (its segmentation buffers): if that peer is an endpoint of
    // this process that has closed, the region is unmapped and progress
    // would fault. Then the provider must not be progressed at all.
    bool progress_safe = true;
    for (auto& p : peers_) {
      if (!p) continue;
      cancel_receives(*p);
      if (p->local_gone())
        for (SendOp* op = p->sending.front(); op != nullptr; op = op->next)
          if (op->outstanding() != 0) progress_safe = false;
    }
    if (progress_safe)
      drain_for_close();
    else
      COHORT_LOG_DEBUG(kLog) << "ofi: closing without progress: sends to a closed endpoint of "
                                "this process are in flight";
    // Then the byes, numbered after everything we sent; the watches close
    // with the Watch, and their end of file tells those the bye missed.
    for (auto& p : peers_)
      if (p && !p->eof) send_bye(*p);
    watch_->flush_all(std::chrono::steady_clock::now() + kCloseDrain);
  }
  watch_.reset();
  if (fabric_) fabric_->close_endpoint();
  // Members go in reverse order: peers, pools and bounce buffers (their
  // registrations) before the memory, the domain and the fabric.
}

void OfiEndpoint::cancel_receives(Peer& p) {
  for (RecvOp* r = p.receiving.front(); r != nullptr; r = r->next)
    for (std::uint32_t i = r->completed; i < r->posted; ++i)
      (void)fi_cancel(&fabric_->ep()->fid, &r->ctx[i]);
}

void OfiEndpoint::drain_for_close() {
  // Progress, with a bound so that closing never hangs, until
  //  * the frames the caller was told had left (kDone) have left the
  //    provider too: a task that sends its result and exits must not lose it;
  //  * every posted payload receive has completed (cancelled, failed or
  //    done): libfabric 1.17's rxm crashes in fi_close(ep) while one is still
  //    posted on a connection whose peer has just gone.
  // Sends still pending are abandoned, as the contract says.
  const auto deadline = std::chrono::steady_clock::now() + kCloseDrain;
  EventQueue discard;
  for (int round = 0;; ++round) {
    EventSink sink({}, discard);  // no room: arrivals stay parked, events are dropped
    bool drained = false;
    read_completions_for_close(sink, drained);
    discard.clear();
    bool done = recv_parts_posted_ == 0 && unreported_sends_ == 0;
    if ((done && round >= 8) || std::chrono::steady_clock::now() > deadline) break;
  }
  if (recv_parts_posted_ != 0 || unreported_sends_ != 0) {
    COHORT_LOG_WARN(kLog) << "ofi: closing with " << unreported_sends_ << " sends and "
                          << recv_parts_posted_ << " payload receives unfinished";
  }
}

void OfiEndpoint::read_completions_for_close(EventSink& sink, bool& drained) {
  fi_cq_tagged_entry entries[16];
  long n = fi_cq_read(fabric_->cq(), entries, 16);
  if (n == -FI_EAVAIL) return on_error(sink);
  drained = n == -FI_EAGAIN;
  for (long i = 0; i < n; ++i) {
    auto* ctx = static_cast<Ctx*>(entries[i].op_context);
    if (ctx->kind == CtxKind::kBounce) {
      bounce_.done(*static_cast<BouncePool::Slot*>(ctx->owner), false);  // not read any more
      continue;
    }
    on_completion(*ctx, entries[i].tag, entries[i].len, FI_ADDR_NOTAVAIL, sink);
  }
}

Peer& OfiEndpoint::add_peer(bool outgoing) {
  auto id = static_cast<PeerId>(peers_.size());
  peers_.push_back(std::make_unique<Peer>());
  Peer& p = *peers_.back();
  p.id = id;
  p.outgoing = outgoing;
  ++connections_;
  return p;
}

// ---- credits ------------------------------------------------------------------

Status OfiEndpoint::reserve_buffers() {
  // Before the peer can send: the acceptor sends from the hello on, the
  // connector's buffers are there before its hello leaves.
  COHORT_RETURN_IF_ERROR(bounce_.grow_to(*memory_, connections_ * kBuffersPerConnection));
  if (long ret = bounce_.post(fabric_->ep()); ret != 0)
    return Status(Errc::kIoError, fi_error("fi_trecv (bounce buffers)", ret));
  note_reposted();
  return Status();
}

void OfiEndpoint::note_reposted() {
  std::vector<PeerId>& ids = bounce_.reposted();
  for (PeerId id : ids) {
    Peer* p = live(id);
    if (p == nullptr) continue;  // retired: nobody to give it back to
    ++p->owed;
    if (p->owed >= kCreditBatch && !p->owing) {
      p->owing = true;
      owing_.push_back(id);
    }
  }
  ids.clear();
}

void OfiEndpoint::send_credits() {
  std::size_t keep = 0;
  for (PeerId id : owing_) {
    Peer* p = live(id);
    if (p == nullptr) continue;
    // A frame or kClear may have carried them meanwhile.
    if (p->owed < kCreditBatch || p->eof || p->local_gone()) {
      p->owing = false;
      continue;
    }
    if (!p->open()) {  // the other side's PeerId comes with the welcome
      owing_[keep++] = id;
      continue;
    }
    WirePrefix prefix{WireType::kCredit, 0, 0, p->owed, 0};
    long ret = fi_tinject(fabric_->ep(), &prefix, sizeof prefix, p->addr, bounce_tag(p->remote_id));
    if (ret == 0) {
      p->owed = 0;
      p->owing = false;
    } else if (ret == -FI_EAGAIN) {
      owing_[keep++] = id;  // the next poll tries again
    } else {
      p->owing = false;
      mark_gone(*p, peer_status(*p, Errc::kPeerLost, fi_error("fi_tinject (credits)", ret)), true);
    }
  }
  owing_.resize(keep);
}

Status OfiEndpoint::insert_address(Peer& p, const std::string& name) {
  // One AV entry per remote endpoint, however many connections join us.
  auto it = av_.find(name);
  if (it == av_.end()) {
    fi_addr_t addr = FI_ADDR_NOTAVAIL;
    int ret = fi_av_insert(fabric_->av(), name.data(), 1, &addr, 0, nullptr);
    if (ret != 1)
      return Status(Errc::kPeerLost, fi_error("fi_av_insert", ret < 0 ? ret : -FI_EADDRNOTAVAIL));
    it = av_.emplace(name, addr).first;
  }
  p.addr = it->second;
  return Status();
}

Status OfiEndpoint::peer_status(const Peer& p, Errc code, const std::string& why) const {
  return Status(code, "ofi peer " + std::to_string(p.id) + " (" + p.remote + "): " + why);
}

void OfiEndpoint::make_ready(Peer& p) {
  if (p.in_ready) return;
  p.in_ready = true;
  ready_.push_back(p.id);
}

void OfiEndpoint::wake() {
  if (wake_armed_) return;
  std::uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof one) == sizeof one) wake_armed_ = true;
}

void OfiEndpoint::unwake() {
  if (!wake_armed_) return;
  std::uint64_t v;
  (void)::read(wake_fd_.get(), &v, sizeof v);
  wake_armed_ = false;
}

Result<int> OfiEndpoint::wait_fd() {
  if (!caps_.wait_fd)
    return Status(Errc::kUnsupported, "ofi endpoint on " + fabric_->provider() +
                                          " has no completion-queue wait object (FI_WAIT_FD; "
                                          "COHORT_OFI_WAIT_FD=1 asks for one where the provider "
                                          "has it): poll instead");
  return epoll_.get();
}

void OfiEndpoint::mark_gone(Peer& p, Status why, bool at_once) {
  if (!p.eof) {
    p.eof = true;
    p.eof_reason = std::move(why);
    gone_.push_back(p.id);
  }
  if (at_once) p.retire_now = true;
  wake();
}

// ---- poll ---------------------------------------------------------------------

std::size_t OfiEndpoint::poll(std::span<Event> out) {
  retired_.clear();
  handed_held_.clear();
  handed_records_.clear();
  const bool fd_is_honest = caps_.wait_fd && !caller_prepares_wait_;
  // An honest wait fd stays readable until the completion queue is armed again
  // (end of poll): clearing it here and setting it there would cost two
  // system calls a poll.
  if (wake_armed_ && !fd_is_honest) unwake();
  EventSink sink(out, overflow_);
  bounce_.release_handed_out();
  if (long ret = bounce_.post(fabric_->ep()); ret != 0) [[unlikely]] {
    COHORT_LOG_WARN(kLog) << "ofi " << fabric_->provider() << ": "
                          << fi_error("fi_trecv (bounce buffers)", ret);
  }
  note_reposted();
  if (!unposted_recvs_.empty()) post_receives(sink);
  if (!ready_.empty()) {
    ready_work_.swap(ready_);
    for (PeerId id : ready_work_) {
      Peer* p = live(id);
      if (p == nullptr) continue;
      p->in_ready = false;
      advance(*p, sink);
      if ((p = live(id)) != nullptr) drive(*p, sink);
    }
    ready_work_.clear();
  }

  bool drained = false;
  read_completions(sink, drained);
  if (bounce_.waiting()) {
    (void)bounce_.post(fabric_->ep());
    note_reposted();
  }

  // The watch sockets: every poll while one is busy, while hellos wait for
  // room, or when callers may sleep on wait_fd(); otherwise once in 64 idle
  // polls, so that spinning on the fabric costs no system call.
  if (drained) ++idle_polls_;
  if (watch_->busy() != 0 || !watch_backlog_.empty() || fd_is_honest || watch_due_ ||
      (drained && idle_polls_ % 64 == 0)) {
    watch_due_ = false;
    check_watch(sink);
  }

  if (!gone_.empty()) {
    std::size_t keep = 0;
    for (std::size_t i = 0; i < gone_.size(); ++i) {
      Peer* p = live(gone_[i]);
      if (p == nullptr) continue;
      // A parked message means an earlier one is still on its way: give it longer.
      const unsigned need = p->parked.empty() ? kDrainPolls : kDrainPollsParked;
      if (drained && p->drained_polls < need) ++p->drained_polls;
      if (p->retire_now || p->drained_polls >= need)
        retire(*p, p->eof_reason, /*report=*/true, sink);
      else
        gone_[keep++] = gone_[i];
    }
    gone_.resize(keep);
  }

  if (!owing_.empty()) send_credits();
  if (work_left()) {
    wake();
  } else if (fd_is_honest && sink.used() < out.size()) {
    // The caller may block on wait_fd() now: arm the completion queue's
    // wait object (fi_trywait; about 1.2 µs on rxm, which a caller that uses
    // prepare_wait() pays only when it is about to block).
    fid* cq = &fabric_->cq()->fid;
    if (fi_trywait(fabric_->fabric(), &cq, 1) == FI_SUCCESS)
      unwake();
    else
      wake();
  }
  return sink.used();
}

bool OfiEndpoint::work_left() const noexcept {
  return !ready_.empty() || !overflow_.empty() || !unposted_recvs_.empty() || !gone_.empty() ||
         !watch_backlog_.empty() || !owing_.empty();
}

bool OfiEndpoint::prepare_wait() {
  caller_prepares_wait_ = true;
  unwake();  // from here on only work left over sets it
  if (!caps_.wait_fd) {
    // Nothing to sleep on: the caller keeps polling. It also calls this to
    // make us look at everything now (a sweep, before it decides that a
    // peer which just exited sent nothing): the next poll reads the watch.
    watch_due_ = true;
    return false;
  }
  if (work_left() || watch_due_) return false;
  // A watch socket with news: the next poll() must look at it, not in 64 polls.
  int n = ::epoll_wait(epoll_.get(), epoll_events_.data(), static_cast<int>(epoll_events_.size()), 0);
  for (int i = 0; i < n; ++i)
    if (epoll_events_[i].data.u64 >= Watch::kTagBase - 1) watch_due_ = true;
  if (watch_due_) return false;
  fid* cq = &fabric_->cq()->fid;
  return fi_trywait(fabric_->fabric(), &cq, 1) == FI_SUCCESS;
}

// ---- retiring peers -----------------------------------------------------------

void OfiEndpoint::fail_ops(Peer& p, const Status& status, EventSink& sink) {
  while (SendOp* op = p.queue.pop_front()) {
    if (op->report) sink.emit(send_done(p.id, op->op, status));
    if (op->outstanding() == 0) {
      pools_->put(op);
    } else {
      op->orphaned = true;  // the provider still has messages of it
    }
  }
  while (SendOp* op = p.sending.pop_front()) {
    if (op->report)
      sink.emit(send_done(p.id, op->op, status));
    else
      --unreported_sends_;  // the caller was told kDone; the peer will not take it now
    if (op->outstanding() == 0) {
      pools_->put(op);  // an announcement that completed and waited for its kClear
    } else {
      op->orphaned = true;
    }
  }
  p.cleared_unposted = 0;
  p.clears.clear();
  while (RecvOp* r = p.receiving.pop_front()) {
    sink.emit(recv_done(p.id, r->op, status));
    r->orphaned = true;
    // Posted parts come back as FI_ECANCELED (or complete first); then the op is free.
    for (std::uint32_t i = r->completed; i < r->posted; ++i)
      (void)fi_cancel(&fabric_->ep()->fid, &r->ctx[i]);
    if (r->completed == r->posted) {
      std::erase(unposted_recvs_, r);
      pools_->put(r);
    }
  }
  p.blocked = false;
  p.held.clear();
  for (Parked& m : p.parked)
    if (m.slot != nullptr) bounce_.done(*m.slot, false);
  p.parked.clear();
}

void OfiEndpoint::retire(Peer& p, const Status& why, bool report, EventSink& sink) {
  Errc code = why.code() == Errc::kOk ? Errc::kCanceled : Errc::kPeerLost;
  fail_ops(p, Status(code, why.message()), sink);
  if (report && p.visible) sink.emit(peer_down(p.id, why));
  COHORT_LOG_DEBUG(kLog) << "ofi " << std::hex << nonce_ << std::dec << " peer " << p.id << " retired"
                         << (why.is_ok() ? "" : ": " + why.message());
  if (p.watch != Watch::kNoConn) {
    watch_->close(p.watch);
    watch_owner_[p.watch] = kNoPeer;
  }
  // A dead shm peer left its region behind: the survivors clean up.
  if (report && why.code() == Errc::kPeerLost && host_local_provider(fabric_->provider()))
    (void)remove_dead_region(p.remote, host_);
  --connections_;
  retired_.push_back(std::move(peers_[p.id]));  // freed at the next poll
}

}  // namespace cohort::transport::ofi
