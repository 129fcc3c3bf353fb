// daemon/peer_link.hpp — one TCP connection to another cohortd, and the
// blocking helpers a joining daemon uses before its event loop runs.
//
// A PeerLink is the daemon-to-daemon twin of ClientConn: it cuts incoming
// bytes into proto frames and holds a bounded outgoing queue drained when the
// socket is writable. It is born connecting (we dialled; non-blocking connect
// completes on EPOLLOUT, trying the peer's next address on failure) or
// authenticating (we accepted). Every link authenticates both ways with the
// cookie (proto/auth.hpp, messages PeerAuth/PeerProof) before any other frame
// is accepted; the Cluster drives that exchange and owns the links.
//
// Addresses are "tcp:IP:PORT", or several joined by ',' tried in order.
//
// Single-threaded. The Cluster keeps LinkIds, never pointers, across loop
// iterations.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/status.hpp"
#include "proto/auth.hpp"
#include "proto/frame.hpp"

namespace cohort::daemon {

using LinkId = std::uint64_t;

/// Most bytes queued for one peer daemon before the link is dropped.
inline constexpr std::size_t kMaxPeerQueued = 64u << 20;

class PeerLink {
 public:
  enum class State : std::uint8_t { kConnecting, kAuthenticating, kReady, kClosing };
  using Clock = std::chrono::steady_clock;

  PeerLink(LinkId id, UniqueFd fd, bool dialled, std::string peer_address);

  LinkId id() const noexcept { return id_; }
  int fd() const noexcept { return fd_.get(); }
  bool dialled() const noexcept { return dialled_; }
  State state() const noexcept { return state_; }
  void set_state(State s) noexcept { state_ = s; }
  bool ready() const noexcept { return state_ == State::kReady; }
  const std::string& peer_address() const noexcept { return peer_address_; }

  /// The peer's host index once it said PeerAuth (0: a joining daemon).
  std::uint32_t peer_index = 0;
  bool peer_said_auth = false;
  bool peer_proved = false;
  auth::Challenge challenge{};   // ours, sent in PeerAuth
  Clock::time_point opened = Clock::now();
  /// Remaining addresses to try if this connect fails (dialled links).
  std::vector<std::string> fallbacks;
  /// Frames sent before the link was authenticated; released by release_held().
  std::vector<std::byte> held;
  void release_held() {
    out_.insert(out_.end(), held.begin(), held.end());
    held.clear();
  }

  /// "link 4 to host 3 (tcp:10.0.0.3:4100)" for log lines.
  std::string describe() const;

  Status read_some(bool* eof);
  Result<std::optional<proto::FrameView>> next_frame() { return in_.next(); }

  template <class M>
  bool queue(const M& msg) {
    std::size_t before = out_.size();
    proto::encode(msg, out_);
    if (out_.size() - out_off_ > kMaxPeerQueued) {
      out_.resize(before);
      return false;
    }
    return true;
  }
  bool has_output() const noexcept { return out_.size() > out_off_; }
  /// Write what the socket takes now; kPeerLost when the peer is gone.
  Status flush();
  /// Swap in a new socket (the next address of a failed connect).
  void replace_fd(UniqueFd fd, std::string address);

 private:
  LinkId id_;
  UniqueFd fd_;
  bool dialled_;
  std::string peer_address_;
  State state_;
  proto::FrameBuffer in_;
  std::vector<std::byte> out_;
  std::size_t out_off_ = 0;
};

/// Parse "tcp:IP:PORT" (IPv4) into a sockaddr; kInvalidArgument otherwise.
Result<std::pair<std::string, unsigned>> parse_tcp_address(const std::string& address);
/// Split "a,b,c" into its addresses.
std::vector<std::string> split_addresses(const std::string& list);
/// Start a non-blocking connect to one "tcp:IP:PORT".
Result<UniqueFd> start_connect(const std::string& address);

// ---- blocking helpers, for `cohortd --join` before the loop starts ----------------

/// What the master told a joining daemon.
struct JoinResult {
  UniqueFd fd;                     // the authenticated link to the master
  std::uint32_t index = 0;
  std::uint64_t seq = 0;
  std::uint32_t master = 0;
  std::vector<proto::HostInfo> hosts;
};

/// Dial `master` (an address list), authenticate with `cookie`, send
/// JoinRequest{self} and wait for the JoinReply, all within `timeout`.
/// kAuthFailed when the master rejects our proof (or we reject its).
Result<JoinResult> join_master(const std::string& master, const std::string& cookie,
                               const std::string& vm_name, const proto::HostInfo& self,
                               std::chrono::milliseconds timeout);

}  // namespace cohort::daemon
