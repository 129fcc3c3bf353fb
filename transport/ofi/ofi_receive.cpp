#include "transport/ofi/ofi_receive.hpp"

#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include <algorithm>

#include "transport/base/options.hpp"

namespace cohort::transport::ofi {

namespace {

constexpr std::size_t kPoolBytes = 4 << 20;
constexpr std::size_t kMinSlots = 4;
constexpr std::size_t kMaxSlots = 64;

Status bad(std::string what) { return Status(Errc::kProtocolError, std::move(what)); }

}  // namespace

std::size_t BouncePool::buffer_size(std::size_t eager_limit) {
  // An eager frame, or an announcement's table of part sizes (hellos come on the watch).
  std::size_t body = std::max(eager_limit, kMaxParts * sizeof(std::uint64_t));
  // Rounded to a cache line so that buffers do not share one.
  return (kPrefixSize + kMaxHeader + body + 63) & ~std::size_t{63};
}

Status BouncePool::init(Memory& memory, std::size_t eager_limit) {
  size_ = buffer_size(eager_limit);
  return add_chunk(memory, std::clamp(kPoolBytes / size_, kMinSlots, kMaxSlots));
}

Status BouncePool::grow_to(Memory& memory, std::size_t total) {
  if (total <= slots_.size()) return Status();
  return add_chunk(memory, total - slots_.size());
}

Status BouncePool::add_chunk(Memory& memory, std::size_t n) {
  Chunk c;
  c.mem.reset(new std::byte[n * size_]);
  if (memory.needed()) {
    COHORT_ASSIGN_OR_RETURN(c.reg, memory.register_local(c.mem.get(), n * size_));
  }
  for (std::size_t i = 0; i < n; ++i) {
    Slot& s = slots_.emplace_back();
    s.buf = c.mem.get() + i * size_;
    s.desc = c.reg.desc();
    s.ctx.kind = CtxKind::kBounce;
    s.ctx.owner = &s;
    to_post_.push_back(&s);
  }
  chunks_.push_back(std::move(c));
  return Status();
}

long BouncePool::post(fid_ep* ep) {
  while (!to_post_.empty()) {
    Slot* s = to_post_.back();
    long ret =
        fi_trecv(ep, s->buf, size_, s->desc, FI_ADDR_UNSPEC, kBounceTag, kBounceIgnore, &s->ctx);
    if (ret != 0) return ret == -FI_EAGAIN ? 0 : ret;
    s->posted = true;
    if (s->from != kNoPeer) {
      reposted_.push_back(s->from);
      s->from = kNoPeer;
    }
    to_post_.pop_back();
  }
  return 0;
}

Result<Decoded> decode(const std::byte* buf, std::size_t len) {
  if (len < kPrefixSize) return bad("message of " + std::to_string(len) + " bytes has no prefix");
  Decoded d;
  d.prefix = load<WirePrefix>(buf);
  const WirePrefix& p = d.prefix;
  const std::byte* body = buf + kPrefixSize;
  const std::size_t body_len = len - kPrefixSize;
  switch (p.type) {
    case WireType::kEager:
    case WireType::kAnnounce: {
      if (p.header_size > kMaxHeader || p.header_size > body_len)
        return bad("header of " + std::to_string(p.header_size) + " bytes");
      d.header = {body, p.header_size};
      const std::size_t rest = body_len - p.header_size;
      if (p.type == WireType::kEager) {
        if (p.payload_size != rest)
          return bad("eager frame says " + std::to_string(p.payload_size) + " payload bytes, has " +
                     std::to_string(rest));
        d.payload = {body + p.header_size, rest};
        return d;
      }
      if (p.parts == 0 || p.parts > kMaxParts || rest != p.parts * sizeof(std::uint64_t))
        return bad("announcement with a bad part table");
      d.parts = p.parts;
      d.part_sizes = body + p.header_size;
      std::uint64_t sum = 0;
      for (std::size_t i = 0; i < d.parts; ++i) sum += d.part_size(i);
      if (sum != p.payload_size) return bad("announcement parts do not add up");
      return d;
    }
    case WireType::kHello: {
      if (body_len < sizeof(WireHello) || p.payload_size != body_len) return bad("short hello");
      d.hello = load<WireHello>(body);
      if (d.hello.peer == kNoPeer) return bad("hello without a PeerId");
      const std::size_t rest = body_len - sizeof(WireHello);
      if (d.hello.address_size == 0 || d.hello.address_size > kMaxAddressText ||
          d.hello.address_size > rest || rest - d.hello.address_size > kMaxHello)
        return bad("hello with a bad address or hello length");
      d.address = {reinterpret_cast<const char*>(body) + sizeof(WireHello), d.hello.address_size};
      d.hello_bytes = {body + sizeof(WireHello) + d.hello.address_size, rest - d.hello.address_size};
      return d;
    }
    case WireType::kWelcome:
      if (body_len != sizeof(WireWelcome) || p.payload_size != body_len)
        return bad("welcome of the wrong size");
      d.welcome = load<WireWelcome>(body);
      return d;
    case WireType::kBye:
      if (body_len != 0) return bad("bye with a body");
      return d;
    case WireType::kClear:
      if (body_len != 0) return bad("clear to send with a body");
      return d;
    case WireType::kCredit:
      if (body_len != 0) return bad("credit return with a body");
      return d;
  }
  return bad("unknown message type " + std::to_string(static_cast<int>(p.type)));
}

}  // namespace cohort::transport::ofi
