// lib/src/matcher.hpp — posted receives and unexpected messages.
//
// The Matcher pairs arriving messages with receives, MPI style:
//  * A message matches a receive when the contexts are equal and the receive's
//    source and tag are equal to the message's or are wildcards (kAnyTid, kAnyTag).
//  * An arriving message goes to the FIRST matching posted receive, in the order
//    the receives were posted; if none matches it joins the unexpected queue.
//  * A new receive takes the OLDEST matching unexpected message (arrival order),
//    and is posted only if there is none.
// Since the transport reports frames from one sender in order, and both queues
// keep arrival/post order, messages between one sender and one receiver on one
// context never overtake each other.
//
// The Matcher only decides who gets what; it never touches a transport. The
// delivery helpers below copy bytes into a receive's destination (a user buffer
// or a Message); the progress engine uses them and calls receive_payload() for
// payloads that arrive later (kFrameAnnounced) into the span payload_target() gives.
//
// Memory: RecvOps belong to their caller (on the stack for a blocking receive,
// in a Request otherwise) and are linked in place. Unexpected messages come
// from a pool whose nodes and buffers are reused, so that a steady stream of
// small messages allocates nothing. Single-threaded, like the Session.
#pragma once

#include <cohort/message.hpp>
#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.hpp"

namespace cohort::lib {

// ---- an intrusive doubly linked list ----------------------------------------

struct ListHook {
  ListHook* prev = nullptr;
  ListHook* next = nullptr;
  bool linked() const noexcept { return next != nullptr; }
};

/// A list of T (derived from ListHook) that never allocates. Not copyable.
template <class T>
class IntrusiveList {
 public:
  IntrusiveList() noexcept { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t size() const noexcept { return size_; }
  void push_back(T* n) noexcept {
    ListHook* h = n;
    h->prev = head_.prev;
    h->next = &head_;
    head_.prev->next = h;
    head_.prev = h;
    ++size_;
  }
  void erase(T* n) noexcept {
    ListHook* h = n;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = nullptr;
    --size_;
  }
  T* front() noexcept { return empty() ? nullptr : static_cast<T*>(head_.next); }
  /// The first element for which pred(T&) is true, or nullptr.
  template <class Pred>
  T* find(Pred pred) const {
    for (ListHook* h = head_.next; h != &head_; h = h->next)
      if (pred(*static_cast<T*>(h))) return static_cast<T*>(h);
    return nullptr;
  }

 private:
  ListHook head_;
  std::size_t size_ = 0;
};

// ---- what is matched ----------------------------------------------------------

/// The envelope of a message: who sent it, its tag and context, how it is encoded.
struct Envelope {
  Tid source = kNoTid;
  std::int32_t tag = 0;
  std::uint32_t context = 0;
  std::uint8_t flags = 0;  // wire_header.hpp: kFlagRaw, kFlagBigEndian
  std::size_t size = 0;    // payload bytes
};

inline bool matches(Tid want_source, int want_tag, std::uint32_t want_context,
                    const Envelope& e) noexcept {
  return e.context == want_context && (want_source == kAnyTid || want_source == e.source) &&
         (want_tag == kAnyTag || want_tag == e.tag);
}

struct UnexpectedMsg;

/// A receive: what it matches, where the payload goes, and how it ended.
struct RecvOp : ListHook {
  enum class State : std::uint8_t { kIdle, kPosted, kReceiving, kDone };

  // What to match.
  Tid source = kAnyTid;
  int tag = kAnyTag;
  std::uint32_t context = 0;
  // Where the payload goes: `buffer` when has_buffer, else `message` (resized to fit).
  bool has_buffer = false;
  std::span<std::byte> buffer;
  Message* message = nullptr;

  State state = State::kIdle;
  Envelope env;                    // of the message received (valid once matched)
  Status status;                   // kTruncated (buffer too small; message consumed), kPeerLost...
  UnexpectedMsg* from = nullptr;   // an unexpected message still arriving, claimed by us
  std::vector<std::byte> scratch;  // a too-large announced payload lands here, then is dropped

  bool done() const noexcept { return state == State::kDone; }
};

/// A message that arrived before any receive wanted it.
struct UnexpectedMsg : ListHook {
  Envelope env;
  std::vector<std::byte> data;   // the payload (its capacity is reused)
  bool complete = false;         // false while receive_payload() is still filling `data`
  Status status;                 // the payload could not be received (peer lost)
  RecvOp* claimed_by = nullptr;  // a receive that took it while it was arriving
};

class Matcher {
 public:
  Matcher() = default;
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  // ---- receives ----
  /// Append `op` to the posted receives (state kPosted).
  void post(RecvOp& op) noexcept {
    op.state = RecvOp::State::kPosted;
    posted_.push_back(&op);
  }
  /// Take `op` back if it is still posted; true if it was.
  bool cancel(RecvOp& op) noexcept {
    if (op.state != RecvOp::State::kPosted || !op.linked()) return false;
    posted_.erase(&op);
    op.state = RecvOp::State::kIdle;
    return true;
  }
  /// The first posted receive (post order) that matches `e`, unlinked; nullptr if none.
  RecvOp* match_posted(const Envelope& e) noexcept {
    RecvOp* op =
        posted_.find([&](const RecvOp& r) { return matches(r.source, r.tag, r.context, e); });
    if (op) posted_.erase(op);
    return op;
  }

  // ---- unexpected messages ----
  /// The oldest unexpected message that matches and that no receive has claimed,
  /// left in the queue. A message still arriving (complete == false) stays queued
  /// when a receive claims it (claimed_by), so that the claim can be undone.
  UnexpectedMsg* find_unexpected(Tid source, int tag, std::uint32_t context) const noexcept {
    if (unexpected_.empty()) return nullptr;
    return unexpected_.find([&](const UnexpectedMsg& m) {
      return m.claimed_by == nullptr && matches(source, tag, context, m.env);
    });
  }
  /// A pooled node for a new arrival, appended to the queue.
  UnexpectedMsg* add_unexpected(const Envelope& e);
  /// Take `m` out of the queue; the caller owns it until release().
  void unlink(UnexpectedMsg* m) noexcept {
    if (m->linked()) unexpected_.erase(m);
  }
  /// Give a node back to the pool (unlinking it first if needed).
  void release(UnexpectedMsg* m) noexcept;

  std::size_t posted_count() const noexcept { return posted_.size(); }
  std::size_t unexpected_count() const noexcept { return unexpected_.size(); }

 private:
  IntrusiveList<RecvOp> posted_;
  IntrusiveList<UnexpectedMsg> unexpected_;
  IntrusiveList<UnexpectedMsg> free_;
  std::vector<std::unique_ptr<UnexpectedMsg>> nodes_;  // owns every node ever made
};

// ---- delivery into a receive ---------------------------------------------------

/// A whole payload that is here now (eager frame, local message): copy it into
/// `op`'s destination and complete `op`.
void deliver_bytes(RecvOp& op, const Envelope& e, std::span<const std::byte> payload);
/// A complete unexpected message: hand its payload to `op` (a Message takes the
/// buffer without a copy) and complete `op`. The caller then releases `m`.
void deliver_unexpected(RecvOp& op, UnexpectedMsg& m);
/// A payload that will arrive later: where to receive it (exactly e.size bytes).
/// Sets op.state = kReceiving; finish_receive() completes it.
std::span<std::byte> payload_target(RecvOp& op, const Envelope& e);
void finish_receive(RecvOp& op, Status status);

}  // namespace cohort::lib
