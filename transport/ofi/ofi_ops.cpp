#include "transport/ofi/ofi_ops.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include <algorithm>
#include <cstring>

#include "transport/base/options.hpp"

namespace cohort::transport::ofi {

namespace {

void write_prefix(std::byte* at, const WirePrefix& p) { std::memcpy(at, &p, sizeof p); }

}  // namespace

// ---- pools --------------------------------------------------------------------

Result<SendOp*> OpPools::get_send() {
  if (!free_sends_.empty()) {
    SendOp* op = free_sends_.back();
    free_sends_.pop_back();
    return op;
  }
  auto op = std::make_unique<SendOp>();
  op->stage.reset(new std::byte[SendOp::kStageSize]);
  if (memory_.needed()) {
    COHORT_ASSIGN_OR_RETURN(op->stage_reg,
                            memory_.register_local(op->stage.get(), SendOp::kStageSize));
  }
  op->ctx.resize(1 + kMaxParts);
  op->user.reserve(kMaxPayloadIov);
  op->iov.reserve(2 + kMaxPayloadIov);
  op->desc.reserve(2 + kMaxPayloadIov);
  op->first.reserve(2 + kMaxParts);
  sends_.push_back(std::move(op));
  return sends_.back().get();
}

void OpPools::put(SendOp* op) noexcept {
  op->peer = kNoPeer;
  op->op = 0;
  op->report = op->prepared = op->orphaned = op->copied = op->cleared = false;
  op->user.clear();
  op->regs.clear();  // releases per-operation registrations
  op->big_reg.reset();
  op->iov.clear();
  op->desc.clear();
  op->first.clear();
  op->messages = op->posted = op->completed = 0;
  op->status = Status();
  op->prev = op->next = nullptr;
  free_sends_.push_back(op);
}

RecvOp* OpPools::get_recv() {
  if (!free_recvs_.empty()) {
    RecvOp* op = free_recvs_.back();
    free_recvs_.pop_back();
    return op;
  }
  auto op = std::make_unique<RecvOp>();
  op->ctx.resize(kMaxParts);
  recvs_.push_back(std::move(op));
  return recvs_.back().get();
}

void OpPools::put(RecvOp* op) noexcept {
  op->peer = kNoPeer;
  op->op = 0;
  op->orphaned = false;
  op->dest = nullptr;
  op->parts = op->posted = op->completed = 0;
  op->regs.clear();
  op->status = Status();
  op->prev = op->next = nullptr;
  free_recvs_.push_back(op);
}

// ---- capturing ----------------------------------------------------------------

void capture_frame(SendOp& op, const Frame& frame) {
  op.type = WireType::kEager;  // or kAnnounce: prepare() decides, knowing the peer's limit
  op.header_size = static_cast<std::uint16_t>(frame.header.size());
  op.payload_size = payload_bytes(frame);
  std::byte* at = op.stage.get() + kPrefixSize;
  if (!frame.header.empty()) std::memcpy(at, frame.header.data(), frame.header.size());
  at += frame.header.size();
  op.copied = op.payload_size <= kCopyLimit;
  if (op.copied) {
    for (const iovec& v : frame.payload) {
      if (v.iov_len != 0) std::memcpy(at, v.iov_base, v.iov_len);
      at += v.iov_len;
    }
  } else {
    op.user.assign(frame.payload.begin(), frame.payload.end());
  }
  op.stage_len = static_cast<std::size_t>(at - op.stage.get());
}

// ---- wire form ----------------------------------------------------------------

Status prepare(SendOp& op, Memory& memory, PeerId remote_id, std::size_t remote_eager,
               std::uint32_t seq, std::size_t iov_limit) {
  op.remote_id = remote_id;
  op.seq = seq & kSeqMask;
  op.iov.clear();
  op.desc.clear();
  op.first.assign(1, 0);
  std::byte* stage = op.stage.get();
  void* stage_desc = op.stage_reg.desc();
  auto add = [&](void* base, std::size_t len, void* desc) {
    op.iov.push_back({base, len});
    op.desc.push_back(desc);
  };
  auto end_message = [&] { op.first.push_back(static_cast<std::uint32_t>(op.iov.size())); };
  const std::size_t head = kPrefixSize + op.header_size;

  if (op.payload_size <= remote_eager) {
    op.type = WireType::kEager;
    write_prefix(stage, {WireType::kEager, 0, op.header_size, seq, op.payload_size});
    if (op.copied) {
      add(stage, op.stage_len, stage_desc);
    } else if (1 + op.user.size() <= iov_limit) {
      add(stage, head, stage_desc);
      std::size_t at = op.iov.size();
      for (const iovec& v : op.user) add(v.iov_base, v.iov_len, nullptr);
      COHORT_RETURN_IF_ERROR(memory.register_iov(op.user, op.regs, op.desc.data() + at));
    } else {
      // More iovecs than the provider takes in one message: one copy, then
      // the caller's buffers are ours no longer (the event still comes).
      op.big.resize(head + op.payload_size);
      std::memcpy(op.big.data(), stage, head);
      std::byte* at = op.big.data() + head;
      for (const iovec& v : op.user) {
        if (v.iov_len != 0) std::memcpy(at, v.iov_base, v.iov_len);
        at += v.iov_len;
      }
      if (memory.needed()) {
        COHORT_ASSIGN_OR_RETURN(op.big_reg, memory.register_local(op.big.data(), op.big.size()));
      }
      add(op.big.data(), op.big.size(), op.big_reg.desc());
    }
    end_message();
  } else {
    // Announcement, then the parts: consecutive runs of at most iov_limit pieces.
    std::vector<iovec>& pieces = op.user;
    std::size_t piece_desc_at = 0;
    if (op.copied) pieces.assign(1, {stage + head, op.payload_size});
    std::size_t nparts = (pieces.size() + iov_limit - 1) / iov_limit;
    if (nparts == 0 || nparts > kMaxParts)
      return Status(Errc::kInvalidArgument, "frame of " + std::to_string(pieces.size()) +
                                                " iovecs needs too many parts");
    auto* table = reinterpret_cast<std::uint64_t*>(stage + SendOp::kTableOffset);
    for (std::size_t p = 0; p < nparts; ++p) {
      std::uint64_t sum = 0;
      for (std::size_t i = p * iov_limit; i < std::min(pieces.size(), (p + 1) * iov_limit); ++i)
        sum += pieces[i].iov_len;
      table[p] = sum;
    }
    write_prefix(stage, {WireType::kAnnounce, static_cast<std::uint8_t>(nparts), op.header_size,
                         seq, op.payload_size});
    const std::size_t table_len = nparts * sizeof(std::uint64_t);
    if (!op.copied) {
      // The staging payload area is unused: the table can follow the header.
      std::memmove(stage + head, table, table_len);
      add(stage, head + table_len, stage_desc);
    } else if (iov_limit >= 2) {
      add(stage, head, stage_desc);
      add(table, table_len, stage_desc);
    } else {
      op.big.resize(head + table_len);
      std::memcpy(op.big.data(), stage, head);
      std::memcpy(op.big.data() + head, table, table_len);
      if (memory.needed()) {
        COHORT_ASSIGN_OR_RETURN(op.big_reg, memory.register_local(op.big.data(), op.big.size()));
      }
      add(op.big.data(), op.big.size(), op.big_reg.desc());
    }
    end_message();
    piece_desc_at = op.iov.size();
    for (std::size_t p = 0; p < nparts; ++p) {
      for (std::size_t i = p * iov_limit; i < std::min(pieces.size(), (p + 1) * iov_limit); ++i)
        add(pieces[i].iov_base, pieces[i].iov_len, op.copied ? stage_desc : nullptr);
      end_message();
    }
    if (!op.copied)
      COHORT_RETURN_IF_ERROR(memory.register_iov(pieces, op.regs, op.desc.data() + piece_desc_at));
    op.type = WireType::kAnnounce;
  }
  op.messages = static_cast<std::uint32_t>(op.first.size() - 1);
  op.prepared = true;
  return Status();
}

long post_next(SendOp& op, fid_ep* ep, fi_addr_t to) {
  const std::uint32_t m = op.posted;
  const std::uint64_t tag =
      m == 0 ? bounce_tag(op.remote_id) : payload_tag(op.remote_id, op.seq, m - 1);
  Ctx& c = op.ctx[m];
  c.kind = CtxKind::kSend;
  c.index = static_cast<std::uint8_t>(m);
  c.owner = &op;
  const std::uint32_t at = op.first[m];
  const std::size_t count = op.first[m + 1] - at;
  long ret = fi_tsendv(ep, op.iov.data() + at, op.desc.data() + at, count, to, tag, &c);
  if (ret == 0) ++op.posted;
  return ret;
}

Status prepare_recv(RecvOp& op, Memory& memory, std::span<std::byte> dest,
                    std::span<const std::uint64_t> sizes) {
  op.dest = dest.data();
  op.parts = static_cast<std::uint32_t>(sizes.size());
  std::copy(sizes.begin(), sizes.end(), op.sizes.begin());
  op.desc.fill(nullptr);
  if (memory.needed() && !dest.empty()) {
    COHORT_ASSIGN_OR_RETURN(Registration r, memory.register_local(dest.data(), dest.size()));
    op.desc.fill(r.desc());
    op.regs.push_back(std::move(r));
  }
  return Status();
}

long post_next(RecvOp& op, fid_ep* ep) {
  const std::uint32_t m = op.posted;
  std::uint64_t offset = 0;
  for (std::uint32_t i = 0; i < m; ++i) offset += op.sizes[i];
  Ctx& c = op.ctx[m];
  c.kind = CtxKind::kRecv;
  c.index = static_cast<std::uint8_t>(m);
  c.owner = &op;
  long ret = fi_trecv(ep, op.dest + offset, op.sizes[m], op.desc[m], FI_ADDR_UNSPEC,
                      payload_tag(op.self_id, op.seq, m), 0, &c);
  if (ret == 0) ++op.posted;
  return ret;
}

}  // namespace cohort::transport::ofi
