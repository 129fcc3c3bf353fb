// transport/ucx/ucx_tags.hpp — how ucx frames map onto UCP tag messages.
//
// Every UCP message this transport sends is a tagged message on the sender's
// ucp_ep to the receiver's worker. The 64-bit tag says who sent it (in the
// receiver's terms), what it is and, for the two halves of a split frame, how
// they belong together:
//
//   bit 63        P: 0 = a start message, 1 = the payload half of a split frame
//   P = 0         60..62 kind (Kind below)     59 split flag
//                 51..58 header length (0..kMaxHeader)
//                  0..50 sender
//   P = 1         51..62 split sequence (12 bits, per connection, wraps)
//                  0..50 sender
//   sender        bit 50 set:   a connector key: 50 random bits the connecting
//                               side chose for this connection (it is sent
//                               before the acceptor could assign anything)
//                 bit 50 clear: the receiver's own PeerId for the sender
//
// Why these choices:
//  * Start messages are received through receives the endpoint keeps posted
//    with mask P (UCX's expected path: one copy, into a slot buffer, as fast as
//    a posted MPI receive). Payload halves never match those receives: each is
//    received by an exact-tag receive straight into its destination — the
//    caller's buffer after kFrameAnnounced — so UCX's own rendezvous moves large
//    payloads with zero extra copies.
//  * A frame whose header and payload fit a slot (kSlotBytes) is ONE message,
//    header then payload, the header length in the tag. A larger frame is a
//    start message (header, payload size, sequence) followed on the same ep by
//    the payload message: UCX can only tell a receiver a message's tag and
//    size, never its first bytes, so the header must travel on its own for the
//    receiver to read it before it chooses where the payload goes. UCX orders
//    tag messages on one ep, so the payload is always behind its header.
//  * Senders identify themselves by an id the RECEIVER chose where it could:
//    the connector tells the acceptor, in its hello, which PeerId to put in
//    every message back, so the connector finds the peer by index. Messages
//    from the connector carry a random 50-bit key of the connection, which the
//    acceptor maps to its PeerId with a hash table (and a one-entry cache for
//    the hot path). A clash of two live keys at one acceptor (about n/2^50 per
//    new connection with n accepted peers) is detected at the hello and ends
//    both connections with kPeerDown rather than mixing their frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "transport/transport.hpp"

namespace cohort::transport::ucx {

enum class Kind : std::uint8_t {
  kData = 0,    // a frame: header then payload (or, split, header + size + sequence)
  kHello = 1,   // first message of a connection: HelloMeta, connector address, hello bytes
  kBye = 2,     // the sender closed this connection (disconnect or endpoint destroyed)
  kRefuse = 3,  // the acceptor refuses the connection; body: RefuseReason (u32)
  kByeAck = 4,  // everything before the goodbye was taken in: the closing side may go
};

enum class RefuseReason : std::uint32_t {
  kStaleAddress = 1,  // the address the connector used belongs to a closed endpoint
  kKeyClash = 2,      // another live connection uses the same key
  kBadHello = 3,      // the hello was malformed
};

/// Why a connection was refused, in words for the connector's kPeerDown.
inline std::string refuse_text(std::uint32_t reason) {
  switch (static_cast<RefuseReason>(reason)) {
    case RefuseReason::kStaleAddress:
      return "the address belongs to an endpoint that has closed (resolve it again)";
    case RefuseReason::kKeyClash:
      return "another connection used the same key (connect again)";
    case RefuseReason::kBadHello:
      return "it could not read our hello";
  }
  return "reason " + std::to_string(reason);
}

/// Largest start message: one UCX eager fragment on tcp (8 KiB) and posix (8256 B),
/// less room for UCP's own headers. Every posted receive slot has this size.
inline constexpr std::size_t kSlotBytes = 8 * 1024 - 128;
/// Bytes after the header in a split start message: u64 payload size, u32 sequence.
inline constexpr std::size_t kSplitTrailer = 12;

inline constexpr std::uint64_t kPayloadBit = std::uint64_t{1} << 63;
inline constexpr std::uint64_t kSplitBit = std::uint64_t{1} << 59;
inline constexpr unsigned kKindShift = 60;
inline constexpr unsigned kHeaderLenShift = 51;
inline constexpr unsigned kSeqShift = 51;
inline constexpr std::uint64_t kSeqMask = 0xfff;
inline constexpr std::uint64_t kSenderMask = (std::uint64_t{1} << 51) - 1;
inline constexpr std::uint64_t kKeyFlag = std::uint64_t{1} << 50;
inline constexpr std::uint64_t kKeyBits = kKeyFlag - 1;

/// The posted slot receives: any start message (P clear).
inline constexpr std::uint64_t kStartTag = 0;
inline constexpr std::uint64_t kStartMask = kPayloadBit;
/// Payload receives match every bit.
inline constexpr std::uint64_t kExactMask = ~std::uint64_t{0};

static_assert(kMaxHeader < 256, "the header length has 8 bits in the tag");

constexpr std::uint64_t sender_for_peer(PeerId id) noexcept { return id; }
constexpr std::uint64_t sender_for_key(std::uint64_t key) noexcept {
  return kKeyFlag | (key & kKeyBits);
}
constexpr bool sender_is_key(std::uint64_t sender) noexcept { return (sender & kKeyFlag) != 0; }

constexpr std::uint64_t start_tag(Kind kind, bool split, std::size_t header_len,
                                  std::uint64_t sender) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(kind)} << kKindShift) |
         (split ? kSplitBit : 0) | (std::uint64_t{header_len & 0xff} << kHeaderLenShift) |
         (sender & kSenderMask);
}

constexpr std::uint64_t payload_tag(std::uint32_t seq, std::uint64_t sender) noexcept {
  return kPayloadBit | ((seq & kSeqMask) << kSeqShift) | (sender & kSenderMask);
}

struct StartTag {
  Kind kind;
  bool split;
  std::size_t header_len;
  std::uint64_t sender;
};

constexpr StartTag decode_start(std::uint64_t tag) noexcept {
  return {static_cast<Kind>((tag >> kKindShift) & 0x7), (tag & kSplitBit) != 0,
          static_cast<std::size_t>((tag >> kHeaderLenShift) & 0xff), tag & kSenderMask};
}

/// The fixed part of a hello (its "header"); the payload that follows is the
/// connector's binary address (address_len bytes) then its hello (hello_len).
struct HelloMeta {
  static constexpr std::size_t kBytes = 24;
  static constexpr std::uint8_t kVersion = 1;
  std::uint32_t connector_peer = 0;  // the PeerId the acceptor puts in messages back
  std::uint64_t target_nonce = 0;    // the nonce of the address the connector used
  std::uint32_t address_len = 0;
  std::uint32_t hello_len = 0;
};

/// Little-endian helpers for the message bodies.
inline void put_u32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u64(std::byte* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline std::uint32_t get_u32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
inline std::uint64_t get_u64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

inline void encode_hello_meta(const HelloMeta& m, std::byte* out) noexcept {
  out[0] = std::byte{HelloMeta::kVersion};
  out[1] = out[2] = out[3] = std::byte{0};
  put_u32(out + 4, m.connector_peer);
  put_u64(out + 8, m.target_nonce);
  put_u32(out + 16, m.address_len);
  put_u32(out + 20, m.hello_len);
}

/// False when the version is unknown.
inline bool decode_hello_meta(const std::byte* in, HelloMeta& m) noexcept {
  if (in[0] != std::byte{HelloMeta::kVersion}) return false;
  m.connector_peer = get_u32(in + 4);
  m.target_nonce = get_u64(in + 8);
  m.address_len = get_u32(in + 16);
  m.hello_len = get_u32(in + 20);
  return true;
}

}  // namespace cohort::transport::ucx
