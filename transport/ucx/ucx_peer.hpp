// transport/ucx/ucx_peer.hpp — what a ucx endpoint knows about one peer.
//
// A Peer is either ours (connect(): we made its ucp_ep and sent the hello) or
// accepted (its hello arrived; we made the reply ucp_ep when we read the hello).
// Its life:
//   kOpen     traffic flows. Start messages from it wait in `inbox` while the
//             caller cannot take them (event span full, a frame announced and
//             not yet received, a payload still arriving).
//   kFailing  a failure or a local disconnect() is known. The ucp_ep is closed
//             with UCP_EP_CLOSE_FLAG_FORCE (after our goodbye left, for a local
//             close), which ends every UCX request on it; once their
//             callbacks have run (`pending` == 0) what already arrived is
//             reported, then kPeerDown (not for a local close).
//   kGone     its PeerId slot is empty (later sends say kPeerLost); the object
//             lives on in the endpoint's retired list until UCX has finished
//             closing the ep, because UCX's error callback holds its address.
//             A failed peer whose ep a sibling still needs (same remote worker,
//             see UcxEndpoint::park()) is `parked`: reported gone, ep still open
//             until the last sibling closes.
#pragma once

#include <ucp/api/ucp.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/status.hpp"
#include "transport/transport.hpp"
#include "transport/ucx/ucx_address.hpp"
#include "transport/ucx/ucx_requests.hpp"

namespace cohort::transport::ucx {

class UcxEndpoint;

struct Peer {
  enum class State : std::uint8_t { kOpen, kFailing, kGone };

  Peer(UcxEndpoint* o, PeerId i) : owner(o), id(i) {}

  UcxEndpoint* owner;  // for UCX's error callback
  PeerId id;
  State state = State::kOpen;

  ucp_ep_h ep = nullptr;
  void* close_request = nullptr;  // the force close, while UCX is still at it
  bool ep_closed = false;
  // The remote worker's address (set with `ep`). Two peers with the same one
  // are siblings: see UcxEndpoint::park() for why their eps close together.
  std::string worker;
  bool parked = false;  // failed, but its ep stays open for a sibling (kGone, retired)

  std::uint64_t tx_sender = 0;  // sender field of our messages to it (see ucx_tags.hpp)
  std::uint64_t rx_sender = 0;  // sender field of its messages to us
  bool accepted = false;        // its hello created it
  bool visible = false;         // the caller knows its PeerId
  bool local_close = false;     // disconnect(): ops end kCanceled, no kPeerDown
  bool watched = false;         // in the Liveness set
  bool bye_acked = false;       // (closing endpoint) it acknowledged our goodbye
  RefuseReason refuse = RefuseReason{0};  // accepted but to be refused at its hello
  Status reason;                // why it is failing
  std::string remote;           // how messages name it (its address for ours)
  Identity identity;            // from its address
  std::chrono::steady_clock::time_point close_by{};  // a local close waits this long for the bye
  std::chrono::steady_clock::time_point abandon_at{};  // ops UCX has not ended by then are given up

  std::uint32_t tx_split_seq = 0;
  std::uint32_t pending = 0;         // user ops and internal receives still inside UCX
  std::uint32_t internal_sends = 0;  // hello, bye, refuse still inside UCX

  Fifo<RxMsg*> inbox;
  bool in_ready = false;

  // A frame reported as kFrameAnnounced whose payload nobody asked for yet.
  bool announced = false;
  std::uint64_t announced_size = 0;
  std::uint32_t announced_seq = 0;
  RxMsg* announced_msg = nullptr;  // set when the payload already sits in this message
};

}  // namespace cohort::transport::ucx
