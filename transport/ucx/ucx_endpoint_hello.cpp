// The ucx endpoint's side of a connection's start: a hello arrives, the peer
// is created, its hello is checked and answered (accepted or refused).
#include "base/log.hpp"
#include "transport/ucx/ucx_endpoint.hpp"

namespace cohort::transport::ucx {

namespace {
constexpr const char* kLog = "transport.ucx";
}  // namespace

void UcxEndpoint::on_hello_start(RxMsg* m, EventSink& sink) {
  const std::uint64_t key = m->tag.sender;
  if (!sender_is_key(key) || m->tag.header_len != HelloMeta::kBytes) {
    COHORT_LOG_WARN(kLog) << log_name_ << " ignored a malformed hello";
    recycle(m);
    return;
  }
  if (peers_.size() >= kNoPeer) {
    COHORT_LOG_ERROR(kLog) << log_name_ << " has used every PeerId; refusing a connection";
    recycle(m);
    return;
  }
  Peer& p = add_peer();
  p.accepted = true;
  p.rx_sender = key;
  p.remote = "accepted peer " + std::to_string(p.id);
  if (auto it = keys_.find(key); it != keys_.end()) {
    // Two live connections with one key: their frames cannot be told apart from
    // here on. End both rather than mix them.
    if (Peer* other = live(it->second)) {
      if (other->ep != nullptr) send_control(*other, Kind::kBye);
      fail(*other, Status(Errc::kProtocolError,
                          "two connections to " + log_name_ +
                              " used the same key; both were dropped (connect again)"));
    }
    keys_.erase(it);
    cached_key_ = 0;
    p.refuse = RefuseReason::kKeyClash;
  } else {
    keys_.emplace(key, p.id);
  }
  const bool ok = !m->tag.split ? m->length >= HelloMeta::kBytes
                                : m->length == HelloMeta::kBytes + kSplitTrailer &&
                                      prepare_payload(p, m);
  if (!ok) {
    recycle(m);
    drop_quietly(p, "its hello is malformed");
    return;
  }
  enqueue(p, m, sink);
}

void UcxEndpoint::accept_hello(Peer& p, RxMsg* m, EventSink& sink) {
  const std::byte* base = m->start.data.get();
  HelloMeta hm;
  std::span<const std::byte> body =
      m->tag.split ? std::span<const std::byte>(m->payload.data.get(),
                                                m->payload_state == RxMsg::Payload::kDone
                                                    ? m->payload_size
                                                    : 0)
                   : std::span<const std::byte>(base + HelloMeta::kBytes,
                                                m->length - HelloMeta::kBytes);
  bool ok = decode_hello_meta(base, hm) && hm.hello_len <= kMaxHello &&
            std::uint64_t{hm.address_len} + hm.hello_len == body.size();
  Result<PeerAddress> from = ok ? parse_binary(body.first(hm.address_len))
                                : Result<PeerAddress>(Errc::kInvalidArgument, "malformed hello");
  if (!from.is_ok()) {
    recycle(m);
    drop_quietly(p, "its hello is malformed: " + from.status().message());
    return;
  }
  p.identity = from->owner;
  p.remote = "accepted peer " + std::to_string(p.id) + " (pid " +
             std::to_string(from->owner.pid) + ", " + abbreviate(encode_text(*from)) + ")";
  p.tx_sender = sender_for_peer(hm.connector_peer);
  if (hm.target_nonce != self_.nonce && p.refuse == RefuseReason{0})
    p.refuse = RefuseReason::kStaleAddress;
  const ucs_status_t reached = create_ep(p, from->worker);
  if (reached != UCS_OK && p.refuse != RefuseReason{0}) {
    recycle(m);
    drop_quietly(p, std::string("cannot reach it back to refuse it: ") +
                        ucs_status_string(reached));
    return;
  }
  if (p.refuse != RefuseReason{0}) {
    send_control(p, Kind::kRefuse, static_cast<std::uint32_t>(p.refuse));
    recycle(m);
    drop_quietly(p, "refused: " + refuse_text(static_cast<std::uint32_t>(p.refuse)));
    return;
  }
  // A peer we cannot answer (it may already have gone: a process that sent and
  // exited) is still accepted, so that what it sent is reported before kPeerDown.
  if (reached == UCS_OK) {
    watch(p);
  } else {
    fail(p, Status(Errc::kPeerLost, "ucx " + p.remote + " cannot be reached back: " +
                                        ucs_status_string(reached)));
  }
  p.visible = true;
  Event& e = sink.next();
  e = Event{};
  e.kind = Event::Kind::kPeerAccepted;
  e.peer = p.id;
  e.payload = body.subspan(hm.address_len);
  lease(m);
  COHORT_LOG_DEBUG(kLog) << log_name_ << " accepted " << p.remote;
}

}  // namespace cohort::transport::ucx
