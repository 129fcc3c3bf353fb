// lib/src/peers.hpp — what this task knows about the tasks it talks to.
//
// For each tid: where it is (the addresses it published), how we reach it (the
// local endpoint and transport PeerId chosen once, on first send), and whether
// it is still there. Peers are learned lazily:
//  * On the first send to a tid, resolve() asks the daemon (Resolve; the daemon
//    may hold the answer until the peer has published, and it watches the tid
//    for us, sending NotifyEvent kPeerExit when it exits). connect() then picks
//    the transport by the rule of selection.hpp and connects over it.
//  * A peer that connects to us — over any of our endpoints — says its tid in
//    the connection's hello bytes (hello_bytes()); we map (endpoint, PeerId) to
//    it and, so that no second connection is needed, send to that tid over the
//    accepted connection too. Each sender uses one connection to a receiver,
//    so the order of one sender's messages holds whichever endpoint they use.
// Each choice (chosen or accepted) is queued once, with its reason, for the
// daemon (take_reports(); `cohort ps --transports` shows them).
// A peer is dead after kPeerExit or kTaskExit from the daemon, a kPeerDown
// from the transport, or a Resolve that says it does not exist. Sends to it fail
// at once (error()). A blocking receive from it fails only once every
// connection from it is down — its last messages are delivered first — or
// after a grace period if the transport never says so (gone_for_recv()).
// Single-threaded; Peer pointers stay valid for the Peers' lifetime.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.hpp"
#include "lib/src/selection.hpp"
#include "proto/messages.hpp"
#include "transport/transport.hpp"

namespace cohort::lib {

class DaemonLink;

struct Peer {
  enum class State : std::uint8_t { kAlive, kDead };
  Tid tid = kNoTid;
  State state = State::kAlive;
  std::uint8_t ep = 0;                         // index of the local endpoint used to send
  transport::PeerId out = transport::kNoPeer;  // send path; kNoPeer until connected
  std::uint32_t resolve_req = 0;               // non-zero while a Resolve is outstanding
  bool resolved = false;                       // `addresses` came from the daemon
  bool seen = false;                           // it connected to us: it did exist
  bool swept = false;                          // endpoints were swept after it died
  std::uint16_t live = 0;                      // connections with it that are up
  std::uint64_t dead_poll = 0;                 // the engine's poll count when it died
  std::chrono::steady_clock::time_point dead_since{};
  std::uint32_t host = 0;                      // its host index, once resolved
  std::vector<proto::AddressEntry> addresses;
  std::string reason;  // why `ep` carries our messages to it (selection.hpp)
  Status error;        // why it is dead

  bool dead() const noexcept { return state == State::kDead; }
  bool ready() const noexcept { return out != transport::kNoPeer && !dead(); }
};

class Peers {
 public:
  Peers(std::vector<LocalEndpoint>& eps, Tid self, std::uint32_t host, SelectionPolicy policy)
      : eps_(eps), self_(self), host_(host), policy_(std::move(policy)) {}
  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  /// The hello bytes this task sends on every connection it makes: its tid
  /// and the token that proves it knows the VM's cookie.
  static std::string hello_bytes(Tid self, std::string_view cookie);
  /// The tid in a peer's hello bytes, or kNoTid if they are not a cohort
  /// task's of this VM (wrong magic, bad tid, missing or wrong token).
  static Tid tid_from_hello(std::span<const std::byte> hello, std::string_view cookie);

  Peer* find(Tid t) noexcept {
    if (last_ && last_->tid == t) return last_;
    auto it = by_tid_.find(t);
    if (it == by_tid_.end()) return nullptr;
    return last_ = &it->second;
  }
  Peer& get(Tid t);

  /// Ask the daemon about `p` unless known, dead or already asked.
  Status resolve(Peer& p, DaemonLink& link);
  bool any_resolving() const noexcept { return !pending_.empty(); }
  /// Take the daemon's ResolveReplies that have come.
  void collect_resolves(DaemonLink& link, std::uint64_t poll_count);
  /// Fail every outstanding Resolve (the daemon is gone).
  void fail_resolves();
  /// Choose the transport for a resolved peer (selection.hpp) and connect;
  /// kUnsupported at once when none reaches it.
  Status connect(Peer& p);

  void on_accepted(std::uint8_t ep, transport::PeerId id, Tid t);
  /// The task a connection is with — ours to it, or one it made and proved
  /// with its token — or kNoTid for a connection we do not know (one refused
  /// for its hello, or already down). Every frame's sender is checked
  /// against it.
  Tid conn_tid(std::uint8_t ep, transport::PeerId id) noexcept {
    const std::uint64_t k = key(ep, id);
    if (k == last_conn_ && last_conn_tid_ != kNoTid) return last_conn_tid_;
    auto it = by_conn_.find(k);
    if (it == by_conn_.end()) return kNoTid;
    last_conn_ = k;
    return last_conn_tid_ = it->second;
  }
  void on_down(std::uint8_t ep, transport::PeerId id, const Status& why, std::uint64_t poll_count);
  /// The daemon says `t` has exited.
  void on_exit(Tid t, std::uint64_t poll_count);
  /// A send to `p` failed in a way that means the peer is gone.
  void mark_dead(Peer& p, Status why, std::uint64_t poll_count);

  /// Whether any peer has died (until then no receive can wait for a dead one).
  bool any_dead() const noexcept { return dead_count_ != 0; }
  /// For a blocking receive from `t`: nothing more can come from it.
  bool gone_for_recv(Tid t, std::uint64_t poll_count);
  /// The error for a send to (or receive from) a dead peer.
  static Status error(const Peer& p);
  /// The transport carrying messages to `p` ("tcp"), empty if none yet.
  std::string_view transport_name(const Peer& p) const;

  /// Choices not yet told to the daemon (one per peer, in the order made).
  bool has_reports() const noexcept { return !reports_.empty(); }
  std::vector<proto::TransportChoice> take_reports() { return std::move(reports_); }

 private:
  static std::uint64_t key(std::uint8_t ep, transport::PeerId id) noexcept {
    return (std::uint64_t{ep} << 32) | id;
  }

  void report(const Peer& p);

  std::vector<LocalEndpoint>& eps_;
  Tid self_;
  std::uint32_t host_;
  SelectionPolicy policy_;
  std::vector<proto::TransportChoice> reports_;
  std::unordered_map<Tid, Peer> by_tid_;            // node-based: Peer* stay valid
  std::unordered_map<std::uint64_t, Tid> by_conn_;  // (endpoint, PeerId) -> tid
  Peer* last_ = nullptr;
  std::uint64_t last_conn_ = 0;  // conn_tid()'s one-entry cache
  Tid last_conn_tid_ = kNoTid;
  std::size_t dead_count_ = 0;  // peers that ever died
  std::vector<Tid> pending_;  // tids with a Resolve outstanding
};

/// "t40001" for logs and error messages.
std::string tid_name(Tid t);

}  // namespace cohort::lib
