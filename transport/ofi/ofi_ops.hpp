// transport/ofi/ofi_ops.hpp — the operations an endpoint hands to libfabric.
//
// Every posted message carries a Ctx as its context; a completion's
// op_context points back at it, and through it at its operation:
//  * SendOp: one frame on its way out. It is one bounce message, plus for a
//    large frame one payload message per part, posted once the receiver has
//    cleared it (kClear, ofi_tags.hpp). The header, and payloads up to
//    kCopyLimit, are copied into the op's registered staging area, so the
//    caller's buffers are free at once (send() says kDone for an eager one);
//    larger payloads are sent from the caller's iovecs.
//    It ends when every message it posted has completed.
//  * RecvOp: a receive_payload(): one receive per part, straight into the
//    caller's buffer, each with the exact tag of its part.
// An op whose peer is gone is "orphaned": its event has been reported
// (kPeerLost / kCanceled), and completions that still come only recycle it.
// Ops live in pools that grow when empty and never shrink: no allocation in
// steady state. Contexts stay valid until the endpoint has closed its
// libfabric endpoint, so a late completion never touches freed memory.
//
// Not thread-safe: used by its endpoint's thread.
#pragma once

#include <rdma/fabric.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.hpp"
#include "transport/ofi/ofi_memory.hpp"
#include "transport/ofi/ofi_tags.hpp"
#include "transport/transport.hpp"

namespace cohort::transport::ofi {

/// Payload bytes copied into staging (and so completed at once, kDone).
inline constexpr std::size_t kCopyLimit = 4096;
/// Largest frame sent with fi_tinject, built on the stack.
inline constexpr std::size_t kInjectMax = kPrefixSize + kMaxHeader + kCopyLimit;

enum class CtxKind : std::uint8_t { kBounce, kSend, kRecv };

/// What op_context points at. The fi_context2 comes first: in the FI_CONTEXT
/// modes the provider uses it while the message is posted.
struct Ctx {
  fi_context2 fi;
  CtxKind kind;
  std::uint8_t index;  // message / part number within its op
  void* owner;
};

/// A minimal intrusive FIFO/list of ops (each op is in at most one list).
template <class Op>
class OpList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  Op* front() const noexcept { return head_; }
  void push_front(Op* op) noexcept {
    op->prev = nullptr;
    op->next = head_;
    (head_ ? head_->prev : tail_) = op;
    head_ = op;
  }
  void push_back(Op* op) noexcept {
    op->prev = tail_;
    op->next = nullptr;
    (tail_ ? tail_->next : head_) = op;
    tail_ = op;
  }
  void erase(Op* op) noexcept {
    (op->prev ? op->prev->next : head_) = op->next;
    (op->next ? op->next->prev : tail_) = op->prev;
    op->prev = op->next = nullptr;
  }
  Op* pop_front() noexcept {
    Op* op = head_;
    if (op) erase(op);
    return op;
  }

 private:
  Op* head_ = nullptr;
  Op* tail_ = nullptr;
};

struct SendOp {
  // Staging: prefix, header and small payloads back to back, then the table of
  // part sizes of an announcement. Registered once, with the op.
  static constexpr std::size_t kTableOffset = kPrefixSize + kMaxHeader + kCopyLimit;
  static constexpr std::size_t kStageSize = kTableOffset + kMaxParts * sizeof(std::uint64_t);

  std::unique_ptr<std::byte[]> stage;
  Registration stage_reg;
  std::vector<Ctx> ctx;  // 1 + kMaxParts

  // Per use.
  PeerId peer = kNoPeer;
  OpId op = 0;
  bool report = false;    // the caller gets kSendDone (payload sent from its buffers)
  bool prepared = false;  // wire form built (needs the peer's PeerId and eager limit)
  bool orphaned = false;
  bool cleared = false;   // kAnnounce: the receiver said kClear; the payload may go
  WireType type = WireType::kEager;
  std::uint16_t header_size = 0;
  std::size_t stage_len = 0;       // prefix + header (+ copied payload / control body)
  std::size_t payload_size = 0;
  bool copied = false;             // payload is in staging (or `big`)
  std::vector<iovec> user;         // the caller's payload iovecs when not copied
  std::vector<std::byte> big;      // coalesced payloads beyond staging
  Registration big_reg;
  std::vector<Registration> regs;  // the caller's buffers, per operation

  // Wire form: message m is iov[first[m], first[m + 1]).
  std::vector<iovec> iov;
  std::vector<void*> desc;
  std::vector<std::uint32_t> first;
  std::uint32_t messages = 0, posted = 0, completed = 0;
  std::uint32_t seq = 0;
  PeerId remote_id = kNoPeer;
  Status status;

  SendOp* prev = nullptr;
  SendOp* next = nullptr;

  std::uint32_t outstanding() const noexcept { return posted - completed; }
  /// Messages that may be posted now: an announced payload waits for kClear.
  std::uint32_t postable() const noexcept {
    return type == WireType::kAnnounce && !cleared ? std::min<std::uint32_t>(messages, 1)
                                                   : messages;
  }
  bool finished() const noexcept { return prepared && completed == messages; }
};

struct RecvOp {
  std::vector<Ctx> ctx;  // kMaxParts
  PeerId peer = kNoPeer;
  OpId op = 0;
  bool orphaned = false;
  std::byte* dest = nullptr;
  std::array<std::uint64_t, kMaxParts> sizes{};
  std::uint32_t parts = 0, posted = 0, completed = 0;
  std::uint32_t seq = 0;
  PeerId self_id = kNoPeer;  // our PeerId for the sender: it is in the tags
  std::vector<Registration> regs;
  std::array<void*, kMaxParts> desc{};
  Status status;

  RecvOp* prev = nullptr;
  RecvOp* next = nullptr;

  bool finished() const noexcept { return completed == parts; }
};

/// Pools of ops. get() reuses a free op or makes one (registering its staging
/// area when the provider needs that); put() takes it back, cleared.
class OpPools {
 public:
  explicit OpPools(Memory& memory) : memory_(memory) {}
  Result<SendOp*> get_send();
  void put(SendOp* op) noexcept;
  RecvOp* get_recv();
  void put(RecvOp* op) noexcept;

 private:
  Memory& memory_;
  std::vector<std::unique_ptr<SendOp>> sends_;
  std::vector<SendOp*> free_sends_;
  std::vector<std::unique_ptr<RecvOp>> recvs_;
  std::vector<RecvOp*> free_recvs_;
};

/// Fills `op` with a frame: the header is copied, the payload too when it
/// fits kCopyLimit (then the caller's buffers are free at once).
void capture_frame(SendOp& op, const Frame& frame);
/// Builds the wire form of a captured frame, number `seq` on its connection,
/// for a peer whose PeerId for us is `remote_id` and whose eager limit is
/// `remote_eager`: eager or announced, parts of at most `iov_limit` iovecs,
/// descriptors (registering the caller's buffers when needed).
Status prepare(SendOp& op, Memory& memory, PeerId remote_id, std::size_t remote_eager,
               std::uint32_t seq, std::size_t iov_limit);

/// Posts the op's next message (fi_tsendv); 0, -FI_EAGAIN or another error.
long post_next(SendOp& op, fid_ep* ep, fi_addr_t to);

/// Prepares a receive of `sizes` (one per part) into `dest`.
Status prepare_recv(RecvOp& op, Memory& memory, std::span<std::byte> dest,
                    std::span<const std::uint64_t> sizes);
/// Posts the next part's receive (fi_trecv); 0, -FI_EAGAIN or another error.
long post_next(RecvOp& op, fid_ep* ep);

}  // namespace cohort::transport::ofi
