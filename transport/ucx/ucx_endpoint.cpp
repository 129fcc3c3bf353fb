// The ucx endpoint's life (open, close) and its calls that start work:
// connect, disconnect, send, receive_payload.
#include "transport/ucx/ucx_endpoint.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "base/log.hpp"
#include "transport/base/options.hpp"

namespace cohort::transport::ucx {

namespace {

constexpr const char* kLog = "transport.ucx";

Status watch_fd(int epoll_fd, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0)
    return errno_status(Errc::kIoError, "epoll_ctl(ADD) for the ucx wait fd", errno);
  return Status();
}

}  // namespace

Result<std::unique_ptr<Endpoint>> UcxEndpoint::open(const EndpointOptions& options) {
  COHORT_RETURN_IF_ERROR(check_options(options));
  std::unique_ptr<UcxEndpoint> ep(new UcxEndpoint());
  COHORT_RETURN_IF_ERROR(ep->init(options));
  return std::unique_ptr<Endpoint>(std::move(ep));
}

Status UcxEndpoint::init(const EndpointOptions& options) {
  COHORT_ASSIGN_OR_RETURN(context_, Context::acquire());
  hello_ = options.hello;
  caps_.max_inline = resolve_eager_limit(options, kLog);
  caps_.max_iov = kMaxPayloadIov;
  caps_.wait_fd = true;
  caps_.thread_safe = false;
  random_.seed(std::random_device{}());

  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SINGLE;
  if (ucs_status_t s = ucp_worker_create(context_->handle(), &wp, &worker_); s != UCS_OK) {
    worker_ = nullptr;
    return Status(Errc::kIoError, std::string("ucp_worker_create: ") + ucs_status_string(s));
  }
  ucp_address_t* raw = nullptr;
  std::size_t raw_len = 0;
  if (ucs_status_t s = ucp_worker_get_address(worker_, &raw, &raw_len); s != UCS_OK)
    return Status(Errc::kIoError, std::string("ucp_worker_get_address: ") + ucs_status_string(s));
  self_.worker.assign(reinterpret_cast<const char*>(raw), raw_len);
  ucp_worker_release_address(worker_, raw);
  self_.nonce = random_();
  self_.owner = local_identity();
  address_ = encode_text(self_);
  address_binary_ = encode_binary(self_);
  log_name_ = "ucx endpoint " + abbreviate(address_);

  int efd = -1;
  if (ucs_status_t s = ucp_worker_get_efd(worker_, &efd); s != UCS_OK)
    return Status(Errc::kIoError, std::string("ucp_worker_get_efd: ") + ucs_status_string(s));
  COHORT_RETURN_IF_ERROR(liveness_.open());
  wait_epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!wait_epoll_) return errno_status(Errc::kIoError, "epoll_create1 (ucx wait fd)", errno);
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) return errno_status(Errc::kIoError, "eventfd (ucx wait fd)", errno);
  COHORT_RETURN_IF_ERROR(watch_fd(wait_epoll_.get(), efd));
  COHORT_RETURN_IF_ERROR(watch_fd(wait_epoll_.get(), liveness_.fd()));
  COHORT_RETURN_IF_ERROR(watch_fd(wait_epoll_.get(), wake_fd_.get()));

  for (Slot& s : ring_) {
    s.buf = slot_buffers_.get(kSlotBytes);
    post(s);
  }
  COHORT_LOG_DEBUG(kLog) << log_name_ << " open (worker address " << raw_len << " bytes)";
  return Status();
}

UcxEndpoint::~UcxEndpoint() {
  if (worker_ == nullptr) return;
  closing_ = true;
  // Goodbye to every peer that can still hear it. A peer in another process
  // acknowledges it once it has taken in everything we sent before it, and we
  // wait for that (bounded by kByeGrace) before closing: UCX drops all our
  // connections at once, and a peer could otherwise see one fail while data
  // from us is still in flight on another. A peer in this process cannot answer
  // while we run, so for it only the goodbye's departure counts (and only over
  // shared memory: over TCP, UCX tells it when the connection drops).
  for (auto& p : peers_) {
    if (p && p->state == Peer::State::kOpen && p->ep != nullptr && !send_control(*p, Kind::kBye))
      p->bye_acked = true;
  }
  const bool shm = shm_may_be_used();
  auto settled = [&] {
    for (SendOp* o : done_.sends) {
      if (Peer* p = live(o->peer); p != nullptr && !o->user && p->internal_sends > 0)
        --p->internal_sends;
      send_ops_.put(o);
    }
    done_.sends.clear();
    for (RecvOp* r : done_.recvs) recv_ops_.put(r);
    done_.recvs.clear();
    liveness_.collect(dead_);
    for (PeerId id : dead_)
      if (Peer* p = live(id)) p->bye_acked = true;
    dead_.clear();
    for (auto& p : peers_) {
      if (!p || p->state != Peer::State::kOpen || p->ep == nullptr || p->bye_acked) continue;
      if (p->identity.pid != self_.owner.pid) return false;
      if (shm && p->internal_sends > 0) return false;
    }
    return true;
  };
  const auto bye_deadline = std::chrono::steady_clock::now() + kByeGrace;
  while (!settled() && std::chrono::steady_clock::now() < bye_deadline) {
    ucp_worker_progress(worker_);
    take_goodbyes();
  }
  std::vector<void*> closing;
  // Force-close every ep: UCX ends what still runs on it (the callbacks come in
  // the progress below) and stops touching the caller's buffers.
  // (Parked eps, kept open for a sibling, sit with retired peers.)
  auto force_close = [&](Peer& p) {
    close_ep(p);
    if (p.close_request != nullptr) closing.push_back(std::exchange(p.close_request, nullptr));
  };
  for (auto& p : peers_)
    if (p) force_close(*p);
  for (auto& p : retired_) force_close(*p);
  // Receives still posted (slots, payloads nobody sent) end as canceled.
  for (Slot& s : ring_)
    if (s.request != nullptr) ucp_request_cancel(worker_, s.request);
  for (RecvOp* r : posted_recvs_)
    if (r->request != nullptr) ucp_request_cancel(worker_, r->request);
  auto all_closed = [&] {
    for (void*& r : closing) {
      if (r != nullptr && ucp_request_check_status(r) != UCS_INPROGRESS) {
        ucp_request_free(r);
        r = nullptr;
      }
      if (r != nullptr) return false;
    }
    for (Slot& s : ring_)
      if (s.request != nullptr) return false;
    // Every request ended (its callback ran): UCX has nothing left of ours.
    return send_ops_.in_use() == 0 && recv_ops_.in_use() == 0;
  };
  const auto close_deadline = std::chrono::steady_clock::now() + kByeGrace;
  while (!all_closed() && std::chrono::steady_clock::now() < close_deadline) {
    ucp_worker_progress(worker_);
    for (SendOp* o : done_.sends) send_ops_.put(o);
    done_.sends.clear();
    for (RecvOp* r : done_.recvs) recv_ops_.put(r);
    done_.recvs.clear();
  }
  ucp_worker_destroy(worker_);
  worker_ = nullptr;
  COHORT_LOG_DEBUG(kLog) << log_name_ << " closed";
}

Peer& UcxEndpoint::add_peer() {
  auto id = static_cast<PeerId>(peers_.size());
  peers_.push_back(std::make_unique<Peer>(this, id));
  return *peers_.back();
}

ucs_status_t UcxEndpoint::create_ep(Peer& p, const std::string& worker) {
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(worker.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxEndpoint::on_ep_error;
  params.err_handler.arg = &p;
  ucs_status_t s = ucp_ep_create(worker_, &params, &p.ep);
  if (s != UCS_OK)
    p.ep = nullptr;
  else
    p.worker = worker;
  return s;
}

Result<PeerId> UcxEndpoint::connect(const Address& addr) {
  COHORT_ASSIGN_OR_RETURN(PeerAddress to, parse_text(addr));
  if (peers_.size() >= kNoPeer)
    return Status(Errc::kInternal, log_name_ + " has used every PeerId; open a new endpoint");
  Peer& p = add_peer();
  p.visible = true;
  p.remote = addr;
  p.identity = to.owner;
  p.tx_sender = sender_for_key(random_());
  p.rx_sender = sender_for_peer(p.id);
  if (ucs_status_t s = create_ep(p, to.worker); s != UCS_OK) {
    fail(p, Status(Errc::kPeerLost, "cannot reach ucx peer at " + addr + ": " +
                                        ucs_status_string(s) +
                                        " (no transport in UCX_TLS reaches it, or it is closed)"));
    return p.id;
  }
  watch(p);
  // The hello goes first on the ep, so the acceptor reads it before any frame.
  std::array<std::byte, HelloMeta::kBytes> meta{};
  HelloMeta hm;
  hm.connector_peer = p.id;
  hm.target_nonce = to.nonce;
  hm.address_len = static_cast<std::uint32_t>(address_binary_.size());
  hm.hello_len = static_cast<std::uint32_t>(hello_.size());
  encode_hello_meta(hm, meta.data());
  auto r = send_frame(p, Kind::kHello, Frame{meta, {}}, 0, 0, false, address_binary_ + hello_);
  if (!r.is_ok())
    fail(p, Status(Errc::kPeerLost,
                   "cannot send the hello to ucx peer at " + addr + ": " + r.status().message()));
  COHORT_LOG_DEBUG(kLog) << log_name_ << " peer " << p.id << ": connecting to "
                         << abbreviate(addr);
  return p.id;
}

void UcxEndpoint::disconnect(PeerId peer) {
  Peer* p = live(peer);
  if (p == nullptr || p->state != Peer::State::kOpen) return;
  p->local_close = true;
  if (p->ep != nullptr) send_control(*p, Kind::kBye);
  p->close_by = std::chrono::steady_clock::now() + kByeGrace;
  fail(*p, Status(Errc::kCanceled, "peer " + std::to_string(peer) + " (" + abbreviate(p->remote) +
                                       ") disconnected locally"));
}

bool UcxEndpoint::send_control(Peer& p, Kind kind, std::uint32_t reason) {
  std::array<std::byte, 4> body{};
  put_u32(body.data(), reason);
  const std::size_t len = kind == Kind::kRefuse ? body.size() : 0;
  auto r = send_frame(p, kind, Frame{std::span<const std::byte>(body.data(), len), {}}, 0, 0, false);
  return r.is_ok();
}

SendOp* UcxEndpoint::new_send(Peer& p, OpId op, bool user) {
  SendOp* o = send_ops_.get();
  o->done = &done_;
  o->peer = p.id;
  o->op = op;
  o->user = user;
  o->outstanding = 0;
  o->status = UCS_OK;
  return o;
}

bool UcxEndpoint::track(SendOp* o, ucs_status_ptr_t r, ucs_status_t& err) {
  if (r == nullptr) return true;
  if (UCS_PTR_IS_ERR(r)) {
    err = UCS_PTR_STATUS(r);
    return false;
  }
  ++o->outstanding;
  return true;
}

Result<Progress> UcxEndpoint::send(PeerId peer, const Frame& frame, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr || p->state != Peer::State::kOpen || !p->visible) [[unlikely]]
    return bad_peer(peer, peer < peers_.size(), log_name_);
  if (Status s = check_frame(frame, caps_.max_iov); !s.is_ok()) [[unlikely]]
    return s;
  const std::size_t payload = payload_bytes(frame);
  const std::size_t total = frame.header.size() + payload;
  if (total <= kInlineCopy) {
    // UCX's short path wants one contiguous buffer; copying a few bytes is cheaper
    // than a request. FORCE_IMM_CMPL: UCX sends now or says no, never keeps it.
    std::array<std::byte, kInlineCopy> buf;
    std::memcpy(buf.data(), frame.header.data(), frame.header.size());
    std::size_t at = frame.header.size();
    for (const iovec& v : frame.payload) {
      std::memcpy(buf.data() + at, v.iov_base, v.iov_len);
      at += v.iov_len;
    }
    ucp_request_param_t param{};
    param.op_attr_mask = UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL;
    ucs_status_ptr_t r = ucp_tag_send_nbx(
        p->ep, buf.data(), total, start_tag(Kind::kData, false, frame.header.size(), p->tx_sender),
        &param);
    if (r == nullptr) [[likely]]
      return Progress::kDone;
    if (!UCS_PTR_IS_ERR(r)) {
      // Not expected with FORCE_IMM_CMPL; the stack buffer must outlive it, so wait here.
      while (ucp_request_check_status(r) == UCS_INPROGRESS) ucp_worker_progress(worker_);
      ucs_status_t s = ucp_request_check_status(r);
      ucp_request_free(r);
      if (s == UCS_OK) return Progress::kDone;
      r = UCS_STATUS_PTR(s);
    }
    if (UCS_PTR_STATUS(r) != UCS_ERR_NO_RESOURCE) {
      Status st = peer_status(*p, UCS_PTR_STATUS(r));
      fail(*p, st);
      return st;
    }
    // No room now (or too big for UCX's short path): the general path queues it.
  }
  return send_frame(*p, Kind::kData, frame, payload, op, true);
}

Result<Progress> UcxEndpoint::send_frame(Peer& p, Kind kind, const Frame& frame,
                                         std::size_t payload, OpId op, bool user,
                                         std::string owned) {
  SendOp* o = new_send(p, op, user);
  o->owned = std::move(owned);
  // The payload pieces: the caller's iovecs (borrowed), or the op's own bytes.
  std::size_t n = 0;
  auto add = [&](const void* base, std::size_t len) {
    if (len > 0) o->iov[n++] = ucp_dt_iov_t{const_cast<void*>(base), len};
  };
  const std::size_t hlen = frame.header.size();
  const bool split = hlen + payload + o->owned.size() > kSlotBytes;
  if (!o->owned.empty()) payload = o->owned.size();
  // The header always travels from the op's own copy: the caller's may be on its stack.
  std::memcpy(o->head.data(), frame.header.data(), hlen);
  if (!split) add(o->head.data(), hlen);
  const std::size_t first_payload = n;
  if (!o->owned.empty()) {
    add(o->owned.data(), o->owned.size());
  } else {
    for (const iovec& v : frame.payload) add(v.iov_base, v.iov_len);
  }

  ucp_request_param_t param{};
  param.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  param.cb.send = &on_send_done;
  param.user_data = o;
  // One contiguous piece goes as such (UCX's zero-copy paths want it); more as an iov.
  auto send_pieces = [&](std::size_t from, std::uint64_t tag) {
    const std::size_t count = n - from;
    ucp_request_param_t pp = param;
    if (count == 0) return ucp_tag_send_nbx(p.ep, nullptr, 0, tag, &pp);
    if (count == 1)
      return ucp_tag_send_nbx(p.ep, o->iov[from].buffer, o->iov[from].length, tag, &pp);
    pp.op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
    pp.datatype = ucp_dt_make_iov();
    return ucp_tag_send_nbx(p.ep, &o->iov[from], count, tag, &pp);
  };

  ucs_status_t err = UCS_OK;
  bool ok;
  if (!split) {
    ok = track(o, send_pieces(0, start_tag(kind, false, hlen, p.tx_sender)), err);
  } else {
    const std::uint32_t seq = p.tx_split_seq++ & kSeqMask;
    put_u64(o->head.data() + hlen, payload);
    put_u32(o->head.data() + hlen + 8, seq);
    ucs_status_ptr_t r1 = ucp_tag_send_nbx(p.ep, o->head.data(), hlen + kSplitTrailer,
                                           start_tag(kind, true, hlen, p.tx_sender), &param);
    ok = track(o, r1, err) &&
         track(o, send_pieces(first_payload, payload_tag(seq, p.tx_sender)), err);
  }
  if (!ok) {
    Status st = peer_status(p, err);
    if (o->outstanding == 0) {
      send_ops_.put(o);
    } else {
      // Part of it is inside UCX, reading only the op's own bytes: let it finish quietly.
      o->user = false;
      ++p.internal_sends;
      remember(o);
    }
    fail(p, st);
    return st;
  }
  if (o->outstanding == 0) {
    send_ops_.put(o);
    return Progress::kDone;
  }
  if (user)
    ++p.pending;
  else
    ++p.internal_sends;
  remember(o);
  return Progress::kPending;
}

Result<Progress> UcxEndpoint::receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) {
  Peer* p = live(peer);
  if (p == nullptr || !p->visible) return bad_peer(peer, peer < peers_.size(), log_name_);
  if (!p->announced)
    return Status(Errc::kInvalidArgument, "peer " + std::to_string(peer) + " of " + log_name_ +
                                              " has no announced frame waiting for its payload");
  if (dest.size() != p->announced_size)
    return Status(Errc::kInvalidArgument,
                  "receive_payload needs exactly " + std::to_string(p->announced_size) +
                      " bytes for the announced frame; got " + std::to_string(dest.size()));
  if (p->state != Peer::State::kOpen) return Status(Errc::kPeerLost, p->reason.message());
  p->announced = false;
  if (!p->inbox.empty()) {
    mark_ready(*p);
    wake();  // frames behind the payload are ready to report
  }
  if (RxMsg* m = std::exchange(p->announced_msg, nullptr)) {
    // A small eager limit: the payload came inside the start message.
    std::memcpy(dest.data(), m->start.data.get() + m->tag.header_len, dest.size());
    lease(m);  // the header span handed out with the announcement lives until the next poll
    return Progress::kDone;
  }
  RecvOp* r = recv_ops_.get();
  r->done = &done_;
  r->peer = p->id;
  r->op = op;
  r->user = true;
  r->expected = dest.size();
  if (Status st = post_payload(*p, r, dest.data(), dest.size(), p->announced_seq); !st.is_ok()) {
    recv_ops_.put(r);
    fail(*p, st);
    return st;
  }
  return Progress::kPending;
}

}  // namespace cohort::transport::ucx
