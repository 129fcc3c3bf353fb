// transport/ofi/ofi_peer.hpp — what an ofi endpoint knows about one connection.
//
// A connection is one PeerId at each end. Over RDM there is no connection in
// libfabric's sense: a Peer is the fi_addr_t of the other endpoint (one AV
// entry per remote endpoint, shared by every connection to it), the PeerId
// the other side uses for us (it goes into every tag we send), the watch
// connection that starts it and tells us when it is gone, and the state of
// our sends and receives.
//
//   outgoing: kConnecting (watch connecting; the hello waits in it)
//             -> kGreeting (watch connected: small frames go on the watch)
//             -> kOpen (welcome read: everything goes on the fabric)
//   incoming: created by the hello on its watch, kOpen at once
//   either:   -> retired by disconnect(), a bye, or its watch's end of file
//
// Sending: frames wait in `queue` until the provider takes them, in order;
// fully posted ones wait in `sending` for their completions (an announced
// frame's payload is posted from there when its kClear comes). Every frame
// gets the next `tx_seq` as it leaves.
// Receiving: frames are handed out in `rx_next` order. One that comes early
// (or when the event span is full) waits in `parked`, sorted, its bounce
// buffer kept; one that comes while an announced payload has not been asked
// for is copied into `held` and handed out after receive_payload().
//
// Not thread-safe: owned and used by its endpoint.
#pragma once

#include <rdma/fabric.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "transport/ofi/ofi_ops.hpp"
#include "transport/ofi/ofi_receive.hpp"
#include "transport/ofi/ofi_watch.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::ofi {

/// A frame copied aside because an announced payload from its peer waits.
struct HeldFrame {
  WireType type;
  std::vector<std::byte> header;
  std::vector<std::byte> payload;    // kEager
  std::vector<std::uint64_t> parts;  // kAnnounce: part sizes
  std::uint64_t payload_size = 0;
  std::uint32_t seq = 0;
};

/// A message that came before its turn: in a bounce buffer, or a watch record.
struct Parked {
  std::uint32_t seq = 0;
  BouncePool::Slot* slot = nullptr;  // fabric: the buffer, kept until handed out
  std::size_t len = 0;
  std::vector<std::byte> record;     // watch (slot == nullptr)
};

/// An announced frame whose payload the caller has not asked for yet.
struct Announced {
  std::uint32_t seq = 0;
  std::uint64_t size = 0;
  std::vector<std::uint64_t> parts;
};

struct Peer {
  enum class State : std::uint8_t { kConnecting, kGreeting, kOpen };

  PeerId id = kNoPeer;
  bool outgoing = false;
  bool visible = false;  // the caller knows this PeerId (ours, or accepted and reported)
  State state = State::kConnecting;
  std::string remote;    // the other endpoint's address, for messages

  fi_addr_t addr = FI_ADDR_NOTAVAIL;
  PeerId remote_id = kNoPeer;     // the other side's PeerId for us
  std::uint64_t remote_nonce = 0;
  std::size_t remote_eager = 0;   // its caps().max_inline: eager frames fit its buffers

  Watch::ConnId watch = Watch::kNoConn;
  /// Set when the other endpoint lives in this process: false once it closed
  /// (libfabric's shm must never be handed a closed endpoint of its own process).
  std::shared_ptr<const std::atomic<bool>> local_alive;

  std::uint32_t credits = kCredits;  // credited bounce messages we may still send (ofi_tags.hpp)
  std::uint32_t owed = 0;            // credits to give back: its buffers we have re-posted
  bool owing = false;                // endpoint bookkeeping: in the owing list
  std::uint32_t tx_seq = 1;
  OpList<SendOp> queue;
  OpList<SendOp> sending;
  std::uint32_t cleared_unposted = 0;  // ops in `sending` cleared, payload not all posted
  std::vector<std::uint32_t> clears;   // kClear to send (announcement numbers)
  OpList<RecvOp> receiving;

  std::uint32_t rx_next = 1;
  std::vector<Parked> parked;  // sorted by seq
  bool blocked = false;        // an announcement was reported; receive_payload() not yet called
  Announced announced;
  std::deque<HeldFrame> held;

  bool in_ready = false;  // endpoint bookkeeping: in the ready list
  bool eof = false;       // gone (watch closed, send failed, ...); retired by poll()
  bool retire_now = false;  // ... at the next poll, without waiting for stragglers
  unsigned drained_polls = 0;
  Status eof_reason;

  bool open() const noexcept { return state == State::kOpen; }
  bool local_gone() const noexcept {
    return local_alive && !local_alive->load(std::memory_order_acquire);
  }
};

}  // namespace cohort::transport::ofi
