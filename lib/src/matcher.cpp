#include "lib/src/matcher.hpp"

#include <cstdio>
#include <cstring>
#include <string>

#include "lib/src/wire_header.hpp"

namespace cohort::lib {
namespace {

// Buffers up to this size stay with a pooled node; larger ones are freed on
// release so that one huge message does not pin its memory forever.
constexpr std::size_t kKeepCapacity = 64 * 1024;

Status truncated(const Envelope& e, std::size_t room) {
  char src[16];
  std::snprintf(src, sizeof src, "t%x", static_cast<unsigned>(e.source));
  return Status(Errc::kTruncated, "the message of " + std::to_string(e.size) + " bytes from " +
                                      src + " (tag " + std::to_string(e.tag) +
                                      ") does not fit the " + std::to_string(room) +
                                      "-byte buffer; it was received and discarded");
}

void mark_message(RecvOp& op, const Envelope& e) {
  if (op.message)
    op.message->set_received(e.source, e.tag, (e.flags & kFlagRaw) != 0,
                             (e.flags & kFlagBigEndian) != kNativeOrderFlag);
}

}  // namespace

Matcher::~Matcher() = default;

UnexpectedMsg* Matcher::add_unexpected(const Envelope& e) {
  UnexpectedMsg* m = free_.front();
  if (m) {
    free_.erase(m);
  } else {
    nodes_.push_back(std::make_unique<UnexpectedMsg>());
    m = nodes_.back().get();
  }
  m->env = e;
  m->complete = false;
  m->status = Status();
  m->claimed_by = nullptr;
  unexpected_.push_back(m);
  return m;
}

void Matcher::release(UnexpectedMsg* m) noexcept {
  unlink(m);
  if (m->data.capacity() > kKeepCapacity) {
    std::vector<std::byte>().swap(m->data);
  } else {
    m->data.clear();
  }
  m->claimed_by = nullptr;
  free_.push_back(m);
}

// ---- delivery ---------------------------------------------------------------------

void deliver_bytes(RecvOp& op, const Envelope& e, std::span<const std::byte> payload) {
  op.env = e;
  op.env.size = payload.size();
  if (op.has_buffer) {
    std::size_t n = payload.size();
    if (n > op.buffer.size()) {
      op.status = truncated(op.env, op.buffer.size());
      n = op.buffer.size();
    }
    if (n) std::memcpy(op.buffer.data(), payload.data(), n);
  } else {
    auto& store = op.message->storage();
    store.assign(payload.begin(), payload.end());
    mark_message(op, e);
  }
  op.state = RecvOp::State::kDone;
}

void deliver_unexpected(RecvOp& op, UnexpectedMsg& m) {
  op.from = nullptr;
  if (!m.status.is_ok()) {
    op.env = m.env;
    op.status = m.status;
    op.state = RecvOp::State::kDone;
    return;
  }
  if (op.has_buffer) {
    deliver_bytes(op, m.env, m.data);
    return;
  }
  // A Message takes the node's buffer as is; the node keeps the Message's old one.
  op.env = m.env;
  op.message->storage().swap(m.data);
  mark_message(op, m.env);
  op.state = RecvOp::State::kDone;
}

std::span<std::byte> payload_target(RecvOp& op, const Envelope& e) {
  op.env = e;
  op.state = RecvOp::State::kReceiving;
  if (!op.has_buffer) {
    auto& store = op.message->storage();
    store.resize(e.size);
    return store;
  }
  if (e.size <= op.buffer.size()) return op.buffer.first(e.size);
  op.scratch.resize(e.size);
  return op.scratch;
}

void finish_receive(RecvOp& op, Status status) {
  if (!status.is_ok()) {
    op.status = std::move(status);
  } else if (op.has_buffer && op.env.size > op.buffer.size()) {
    std::memcpy(op.buffer.data(), op.scratch.data(), op.buffer.size());
    std::vector<std::byte>().swap(op.scratch);
    op.status = truncated(op.env, op.buffer.size());
  } else {
    mark_message(op, op.env);
  }
  op.state = RecvOp::State::kDone;
}

}  // namespace cohort::lib
