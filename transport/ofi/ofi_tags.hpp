// transport/ofi/ofi_tags.hpp — how frames map onto libfabric tagged messages
// (and onto the watch socket that starts each connection).
//
// A connection starts on its watch, a plain TCP connection (ofi_watch.hpp):
//
//   connector                                    acceptor
//   --- watch: kHello (PeerId, nonce, eager limit, address, hello bytes) -->
//                                   inserts the address in its AV, kPeerAccepted
//   <-- watch: kWelcome (its PeerId for us, nonce, eager limit) ------------
//   --- small frames (kEager) on the watch until the welcome is read -------
//   --- everything after that on the fabric; the acceptor uses the fabric
//       from the hello on ---------------------------------------------------
//
// So the handshake needs no fabric progress at all (with rxm a first fabric
// send cannot complete before both sides have progressed the connection), a
// fabric message never comes from a source the receiver has not been told
// about, and the first frames leave at once, like tcp's.
//
// On the fabric every message is one tagged message of two kinds:
//  * Bounce messages (tag bit kPayloadBit clear) land in the receiver's pool of
//    pre-posted bounce buffers (ofi_receive.hpp). They start with a WirePrefix:
//      kEager     a whole frame: header then payload (payload <= the
//                 receiver's eager limit).
//      kAnnounce  a large frame's header, then a table of part sizes; the
//                 payload follows as `parts` payload messages, once the
//                 receiver has said kClear for it.
//      kClear     clear to send, receiver -> sender, prefix only (seq = the
//                 announcement's number; not itself numbered, handled on
//                 arrival): receive_payload() has posted the receives of
//                 every part. Only then does the sender post the payload, so
//                 a payload message is never unexpected at the receiver
//                 (libfabric 1.17's shm mishandles several unexpected large
//                 messages, ofiwg/libfabric#9143, and an unmatched CMA send
//                 blocks the sender's later messages, #9853), and no provider
//                 has to buffer or track one.
//      kCredit    credits back, prefix only (seq = how many; not numbered,
//                 not itself credited), when many are owed and no frame or
//                 kClear is going that way to carry them (below).
//      (kBye, "this connection is dropped; nothing follows", travels on the
//      watch, numbered after every frame, so it needs no fabric progress and
//      a closing endpoint sends nothing on the fabric.)
//  * Payload messages (kPayloadBit set) carry one part of a large frame's
//    payload. The receiver posts a receive with exactly this tag straight into
//    the caller's buffer (receive_payload()), before the sender posts it
//    (kClear above).
//
// Credits: a sender may have at most kCredits credited bounce messages
// (kEager, kAnnounce, kClear) on a connection that the receiver has not yet
// re-posted the buffers of; it starts with kCredits and gets one back for
// each buffer the receiver re-posts, carried in the `parts` byte of the
// receiver's next kEager or kClear on that connection, or in a kCredit once
// kCreditBatch are owed. The receiver keeps kCredits + kCreditReserve bounce
// buffers per connection (ofi_receive.hpp): a kCredit is sent only after
// kCreditBatch credited messages were consumed, and those needed credits the
// peer got from earlier returns, so at most kCreditReserve of them are ever
// unconsumed. No bounce message is thus ever unexpected at the provider,
// which libfabric 1.17's shm mishandles (small messages from several senders
// vanish when the receiver has no buffer posted for them). A frame with no
// credit left waits in its peer's queue, like one the provider refused.
//
// Tag bits (60 used, so providers that reserve the top 4 bits still work):
//
//   59       kPayloadBit
//   58..27   the RECEIVER's PeerId for the sender
//   26..6    payload: the announcement's sequence number (21 bits; they only
//            need to be unique among one connection's payloads in flight)
//   5..0     payload: the part index
//
// Identity comes from the tag, not from the completion's source address
// (rxm reports FI_ADDR_NOTAVAIL for senders not yet in the AV, shm a wrong
// fi_addr): the receiver indexes its peer table, no lookup, no ambiguity when
// two connections join the same two endpoints (or an endpoint and itself).
//
// Order: each direction of a connection numbers its frames and its bye 1, 2, 3
// ... (WirePrefix::seq), whichever path they take. Even a provider with
// FI_ORDER_SAS (asked for where offered) only matches in order: it may
// complete out of order (rxm completes a 16-128 KiB message, sent in
// segments, after smaller ones behind it); and early frames come by the
// watch. So the receiver hands frames out in sequence order and parks those
// that come early; ordering is ours, not the provider's. Peers must share byte order
// (as rxm itself requires); prefixes are in host order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "transport/transport.hpp"

namespace cohort::transport::ofi {

inline constexpr unsigned kTagBits = 60;
inline constexpr std::uint64_t kPayloadBit = std::uint64_t{1} << 59;
inline constexpr unsigned kPeerShift = 27;
inline constexpr std::uint64_t kPeerMask = 0xffffffffull;
inline constexpr unsigned kSeqShift = 6;
inline constexpr std::uint32_t kSeqMask = (1u << 21) - 1;
inline constexpr std::uint32_t kMaxParts = 64;  // part index has 6 bits

/// Bounce receives match every tag without kPayloadBit.
inline constexpr std::uint64_t kBounceTag = 0;
inline constexpr std::uint64_t kBounceIgnore = kPayloadBit - 1;

inline constexpr std::uint64_t bounce_tag(PeerId receiver_id) {
  return (std::uint64_t{receiver_id} & kPeerMask) << kPeerShift;
}
inline constexpr std::uint64_t payload_tag(PeerId receiver_id, std::uint32_t seq,
                                           std::uint32_t part) {
  return kPayloadBit | bounce_tag(receiver_id) | (std::uint64_t{seq & kSeqMask} << kSeqShift) |
         (part & (kMaxParts - 1));
}
inline constexpr bool is_payload(std::uint64_t tag) { return (tag & kPayloadBit) != 0; }
inline constexpr PeerId tag_peer(std::uint64_t tag) {
  return static_cast<PeerId>((tag >> kPeerShift) & kPeerMask);
}

enum class WireType : std::uint8_t {
  kHello = 1, kWelcome, kEager, kAnnounce, kBye, kClear, kCredit
};

/// Credited bounce messages a sender may have outstanding per connection.
inline constexpr std::uint32_t kCredits = 16;
/// Credits owed that make the receiver send a kCredit.
inline constexpr std::uint32_t kCreditBatch = kCredits / 2;
/// Uncredited kCredit messages a connection may have unconsumed (see above).
inline constexpr std::uint32_t kCreditReserve = 2;
/// Bounce buffers an endpoint keeps for each connection.
inline constexpr std::size_t kBuffersPerConnection = kCredits + kCreditReserve;

/// The first 16 bytes of every bounce message and watch record.
struct WirePrefix {
  WireType type;
  std::uint8_t parts;          // kAnnounce: payload messages that follow;
                               // kEager, kClear: credits returned
  std::uint16_t header_size;   // kEager, kAnnounce
  std::uint32_t seq;           // kEager, kAnnounce, kBye: the frame's number on its connection;
                               // kClear: the announcement's; kCredit: credits returned
  std::uint64_t payload_size;  // kEager, kAnnounce: frame payload; kHello, kWelcome: body bytes
};
static_assert(sizeof(WirePrefix) == 16);
inline constexpr std::size_t kPrefixSize = sizeof(WirePrefix);

/// kHello body, followed by the connector's address text (`address_size`
/// bytes, ofi_address.hpp) and then its EndpointOptions::hello bytes.
struct WireHello {
  std::uint64_t nonce;         // the connector endpoint's nonce (its address says it too)
  std::uint64_t eager_limit;   // the connector's caps().max_inline
  std::uint64_t target_nonce;  // the nonce the connector expects the acceptor to have
  std::uint32_t address_size;
  PeerId peer;                 // the connector's PeerId for this connection
};
static_assert(sizeof(WireHello) == 32);

/// kWelcome body.
struct WireWelcome {
  std::uint64_t nonce;        // the acceptor's nonce
  std::uint64_t eager_limit;  // the acceptor's caps().max_inline
  PeerId peer;                // the acceptor's PeerId for this connection
  std::uint32_t reserved;
};
static_assert(sizeof(WireWelcome) == 24);

/// Reads a trivially copyable T from possibly unaligned bytes.
template <class T>
inline T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Sequence numbers wrap: is `a` before `b`?
inline constexpr bool seq_before(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}

}  // namespace cohort::transport::ofi
