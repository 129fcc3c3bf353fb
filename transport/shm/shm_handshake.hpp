// transport/shm/shm_handshake.hpp — the control socket of an shm endpoint and
// the three messages it carries.
//
// Every endpoint binds a Unix datagram socket in the abstract namespace,
// "\0cohort-shm-<pid>-<n>". Abstract rather than a path under the VM's runtime
// directory because: it needs no directory (tasks started outside a VM, tests),
// it vanishes with its last descriptor (a killed task leaves no file), and its
// namespace is the network namespace, which is part of the host identity
// (shm_address.hpp), so emulated hosts cannot even see each other's sockets.
// Access control does not rest on the name: the receiver of a message checks
// the sender's uid, which the kernel attaches (SO_PASSCRED).
//
//   kConnect  connector -> acceptor: "here is our segment". Carries the
//             segment's memfd, both doorbell eventfds and a pidfd of the
//             connector (SCM_RIGHTS). The hello is in the segment.
//   kAccept   acceptor -> connector: carries a pidfd of the acceptor. The
//             kernel-attached credentials give each side the other's pid as
//             seen in its own pid namespace, for process_vm_readv.
//   kReject   acceptor -> connector: the segment was refused, or the acceptor
//             closed before looking at it.
//
// Datagrams are used only at set-up; the data path never touches the socket.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/fd.hpp"
#include "base/status.hpp"

namespace cohort::transport::shm {

enum class ControlKind : std::uint16_t { kConnect = 1, kAccept = 2, kReject = 3 };

inline constexpr std::size_t kMaxControlFds = 4;

struct ControlMessage {
  ControlKind kind = ControlKind::kConnect;
  std::uint64_t token = 0;  // the connector's name for the pair
  std::array<UniqueFd, kMaxControlFds> fds;
  std::size_t fd_count = 0;
  pid_t pid = 0;  // sender's pid in our pid namespace (0: not visible here)
  uid_t uid = 0;
  std::string from;  // the sender's socket name, where answers go
};

class ControlSocket {
 public:
  /// Binds a fresh abstract name.
  static Result<ControlSocket> open();

  int fd() const noexcept { return fd_.get(); }
  const std::string& name() const noexcept { return name_; }

  /// Sends one message to the socket called `to`. kRetry when its queue is
  /// full (try again later); kPeerLost when nobody is bound there.
  Status send(const std::string& to, ControlKind kind, std::uint64_t token,
              std::span<const int> fds);
  /// The next well-formed message, if any; never blocks. Malformed ones are
  /// dropped (descriptors closed) with one debug line.
  std::optional<ControlMessage> receive();

 private:
  UniqueFd fd_;
  std::string name_;
};

}  // namespace cohort::transport::shm
