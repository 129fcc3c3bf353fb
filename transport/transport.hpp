// transport/transport.hpp — how bytes move between two tasks.
//
// A Transport ("tcp", "shm", "ofi", "ucx", "loop") opens Endpoints. An Endpoint
// has an address (opaque bytes the name service hands to peers), connects to
// peers' addresses, sends framed messages and reports everything that happens
// through poll(). This layer knows nothing of tasks, tags, groups or daemons:
// a frame is a small header (up to kMaxHeader bytes, the library's message
// header) plus a payload of any size.
//
// Post, then poll:
//  * send() starts a send. It returns kDone when the frame left completely
//    during the call (the buffers are free again, no event follows), or
//    kPending, in which case the header and payload buffers are BORROWED until
//    poll() reports kSendDone with the same OpId. Frames to one peer leave in
//    the order send() was called; a later frame never overtakes a pending one.
//  * poll() never blocks and never calls back. It fills `out` with events:
//      kFrameArrived   a whole frame: `header` and `payload` are valid until the
//                      next poll() on this endpoint. Payloads up to
//                      caps().max_inline (the eager limit) arrive this way.
//      kFrameAnnounced a frame whose header has arrived but whose payload
//                      (`payload_size` bytes) has not been read. The caller must
//                      call receive_payload(peer, dest, op) with a buffer of
//                      exactly that size — the user's posted receive buffer, so
//                      the payload is written there directly, or a buffer it
//                      allocates. Nothing more is read from that peer until it does.
//      kRecvDone       a receive_payload() that returned kPending finished.
//      kSendDone       a send() that returned kPending finished (or failed: status).
//      kPeerAccepted   a peer connected to us; `payload` holds the hello bytes it
//                      gave in EndpointOptions::hello (valid until the next poll()).
//      kPeerDown       the connection to `peer` is gone; `status` says why. Later
//                      sends to it fail with kPeerLost. Pending sends to it end with
//                      a kSendDone whose status is kPeerLost, before kPeerDown.
//  * Frames from one peer are reported in the order they were sent.
//
// Threading: an Endpoint is used by one thread at a time (caps().thread_safe
// says otherwise). Lifetime: destroying an Endpoint closes every connection;
// buffers borrowed by pending operations are released.
//
// Errors are Status codes from cohort/errc.hpp: kInvalidArgument (bad address,
// unknown peer), kPeerLost, kUnsupported (optional capability missing), kIoError.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.hpp"

namespace cohort::transport {

using PeerId = std::uint32_t;      // small handle, valid for the endpoint's lifetime
using OpId = std::uint64_t;        // the caller's id for an operation, echoed in events
using Address = std::string;       // opaque bytes, printable or not

inline constexpr std::size_t kMaxHeader = 128;
inline constexpr PeerId kNoPeer = ~PeerId{0};

/// What an endpoint can do; fixed after open(), read at set-up, never per message.
struct Caps {
  std::size_t max_inline = 0;      // payloads up to this arrive as kFrameArrived
  std::size_t max_iov = 1;         // payload iovecs per send
  bool wait_fd = false;            // wait_fd() gives an fd that epoll can watch
  bool thread_safe = false;
};

struct EndpointOptions {
  std::string bind_host = "127.0.0.1";  // address to listen on (tcp); empty = all
  std::string hello;                    // bytes sent first on every connection we make
  std::size_t eager_limit = 0;          // 0 = the transport's default max_inline
};

/// A frame to send: `header` (<= kMaxHeader bytes) then the payload iovecs.
struct Frame {
  std::span<const std::byte> header;
  std::span<const iovec> payload;
};

enum class Progress { kDone, kPending };

struct Event {
  enum class Kind : std::uint8_t {
    kSendDone, kRecvDone, kFrameArrived, kFrameAnnounced, kPeerAccepted, kPeerDown
  };
  Kind kind = Kind::kFrameArrived;
  PeerId peer = kNoPeer;
  OpId op = 0;                            // kSendDone, kRecvDone
  Status status;                          // kSendDone/kRecvDone failure, kPeerDown reason
  std::span<const std::byte> header;      // kFrameArrived, kFrameAnnounced
  std::span<const std::byte> payload;     // kFrameArrived, kPeerAccepted (hello)
  std::size_t payload_size = 0;           // kFrameAnnounced
};

class Endpoint {
 public:
  virtual ~Endpoint() = default;

  virtual const Caps& caps() const = 0;
  /// The address a peer passes to connect(); published through the name service.
  virtual Address address() const = 0;

  /// A handle for the peer at `addr`. The connection may be made lazily; a
  /// failure to reach it shows up as kPeerDown (and failed sends), never a hang.
  virtual Result<PeerId> connect(const Address& addr) = 0;
  /// Drop a peer (ours or accepted); pending operations end with kCanceled.
  virtual void disconnect(PeerId peer) = 0;

  virtual Result<Progress> send(PeerId peer, const Frame& frame, OpId op) = 0;
  /// After kFrameAnnounced: read its payload into `dest` (exactly payload_size bytes).
  virtual Result<Progress> receive_payload(PeerId peer, std::span<std::byte> dest, OpId op) = 0;

  /// Non-blocking; returns how many events were written to `out`.
  virtual std::size_t poll(std::span<Event> out) = 0;

  /// An fd that becomes readable when poll() may have something to report.
  virtual Result<int> wait_fd() { return Status(Errc::kUnsupported, "no wait fd"); }

  /// Call right before blocking on wait_fd(); false means poll() has work now:
  /// poll instead of blocking. Transports whose senders wake only a receiver
  /// that announced it may sleep (shm) arm that wake-up here, so that a caller
  /// spinning on poll() is never woken through the kernel. A caller that has
  /// called it once must call it before every block; one that never does still
  /// gets a wait_fd() that is readable whenever poll() has work, at the cost of
  /// a wake-up per frame on such transports.
  virtual bool prepare_wait() { return true; }
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string_view name() const = 0;
  /// Whether an endpoint with address `self` can reach `peer` at all.
  virtual bool reaches(const Address& self, const Address& peer) const = 0;
  virtual Result<std::unique_ptr<Endpoint>> open(const EndpointOptions& options) = 0;
  /// Whether this host has hardware the transport exists for, judged without
  /// loading any library (device files). When false the library does not open
  /// it unless COHORT_TRANSPORTS names it: a fabric library can cost a task
  /// far more to load than it would ever save here (ofi_library.hpp).
  virtual bool native_hardware() const { return true; }
};

}  // namespace cohort::transport
