// lib/src/selection.hpp — which transport carries this task's messages to one peer.
//
// A task opens one endpoint per enabled transport (COHORT_TRANSPORTS, else all
// built) and publishes every address. On the first send to a peer, once it
// knows the peer's addresses, Peers asks choose_transport() and connects over
// the answer; the choice holds for the peer's lifetime, so messages from one
// sender to one receiver always travel one path and never overtake each other.
//
// The rule (lib/README.md says the same):
//   Walk this task's endpoints in registry order, most preferred first (shm,
//   ofi, ucx, tcp). Take the first transport T such that
//     1. the peer published an address for T,
//     2. T->reaches(our address, its address) — for shm that means the same
//        host identity (kernel, /dev/shm, network namespace, hostname), and
//     3. if T is a fabric transport (ofi, ucx): its endpoint runs on a native
//        RDMA fabric, or COHORT_TRANSPORTS names T. Over emulated fabrics
//        (libfabric's tcp or shm providers, UCX over tcp or posix) they are
//        slower than our own tcp and shm, so they are used only on request.
//   When both ofi and ucx qualify, the one COHORT_TRANSPORTS lists first wins,
//   else ofi: libfabric is the vendor-neutral layer whose providers drive most
//   fabrics natively (verbs, efa, cxi, opx, psm3), UCX mainly InfiniBand/RoCE.
//   None qualifies: kUnsupported at once, naming the peer, its host, what
//   each transport lacked and COHORT_TRANSPORTS — never a hang.
//
// Every choice carries a short reason for `cohort ps --transports`: "same
// host", "native fabric", "forced by COHORT_TRANSPORTS=tcp", or for a fallback
// the reason the first more preferred transport was passed over ("different
// host", "peer has no shm address").
//
// Pure functions of their arguments (the tests drive them with fake
// transports); nothing here connects or allocates per message.
#pragma once

#include <cohort/tid.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"
#include "proto/messages.hpp"
#include "transport/transport.hpp"

namespace cohort::lib {

/// One open endpoint of one transport.
struct LocalEndpoint {
  transport::Transport* transport = nullptr;
  std::unique_ptr<transport::Endpoint> endpoint;
  transport::Address address;
  bool native_fabric = false;  // see native_fabric()
  bool warned_stranger = false;  // a connection without a valid token was logged
};

/// What COHORT_TRANSPORTS said, as the rule needs it.
struct SelectionPolicy {
  std::string spec;                // verbatim; empty when unset
  std::vector<std::string> named;  // its entries, trimmed, in the order given

  static SelectionPolicy parse(std::string_view spec);
  static SelectionPolicy from_env();
  bool forced() const noexcept { return !named.empty(); }
  bool names(std::string_view transport) const noexcept;
  /// Index of `transport` in `named`; named.size() when absent.
  std::size_t position(std::string_view transport) const noexcept;
};

/// Where the peer is, for reasons and error messages.
struct PeerPlace {
  Tid tid = kNoTid;
  std::uint32_t host = 0;     // the peer's host index (0: unknown)
  std::uint32_t my_host = 0;  // this task's
};

struct Choice {
  std::size_t index = 0;  // into the endpoints given
  std::string reason;
};

/// ofi and ucx: fabric transports, chosen by default only on a native fabric.
bool is_fabric_transport(std::string_view name) noexcept;

/// Whether `e` runs on a native RDMA fabric (verbs, efa, ...) rather than an
/// emulation. TODO(#4): the transport contract has no way to say so yet
/// (transport.hpp's Caps needs a field such as `native_fabric`); until it
/// does this is false, and ofi/ucx are chosen only when COHORT_TRANSPORTS
/// names them.
bool native_fabric(const LocalEndpoint& e) noexcept;

/// The rule above. `failed[i]`, when not empty, says why endpoint i already
/// failed to connect to this peer: it is passed over with that reason.
Result<Choice> choose_transport(std::span<const LocalEndpoint> eps,
                                std::span<const proto::AddressEntry> peer,
                                const SelectionPolicy& policy, const PeerPlace& where,
                                std::span<const std::string> failed = {});

/// The peer's address for `transport`, or nullptr.
const proto::AddressEntry* address_for(std::span<const proto::AddressEntry> peer,
                                       std::string_view transport) noexcept;

}  // namespace cohort::lib
