// proto/auth.hpp — proving knowledge of the VM's cookie without sending it.
//
// Every daemon-to-daemon connection runs a mutual challenge-response: each side
// sends 32 random bytes, and answers the other's challenge with
// HMAC-SHA256(cookie, context || challenge). The context names the direction
// ("cohort/1 dial" for the side that connected, "cohort/1 accept" for the
// other), so a response can never be reflected back to its sender. Tags are
// compared in constant time. Tasks talking to each other present a token
// derived the same way from the cookie and the presenting task's tid, so a
// process that does not know the VM's secret cannot inject messages.
//
//   auto c = auth::make_challenge();                       // send *c to the peer
//   auth::Mac m = auth::respond(cookie, peer_challenge, auth::kDialContext);
//   bool ok = auth::verify(cookie, *c, auth::kAcceptContext, peer_mac);
#pragma once

#include <cohort/tid.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/status.hpp"

namespace cohort::auth {

inline constexpr std::size_t kChallengeBytes = 32;
inline constexpr std::size_t kMacBytes = 32;  // SHA-256
using Challenge = std::array<std::uint8_t, kChallengeBytes>;
using Mac = std::array<std::uint8_t, kMacBytes>;

inline constexpr std::string_view kDialContext = "cohort/1 dial";
inline constexpr std::string_view kAcceptContext = "cohort/1 accept";

/// 32 bytes from the kernel's random generator.
Result<Challenge> make_challenge();
/// HMAC-SHA256(cookie, context || challenge).
Mac respond(std::string_view cookie, const Challenge& challenge, std::string_view context);
/// Constant-time check of a peer's answer to our challenge.
bool verify(std::string_view cookie, const Challenge& challenge, std::string_view context,
            std::span<const std::uint8_t> mac);
/// The token task `tid` presents on task-to-task connections.
Mac task_token(std::string_view cookie, Tid tid);
/// Constant-time check that `token` is task_token(cookie, tid).
bool check_task_token(std::string_view cookie, Tid tid, std::span<const std::uint8_t> token);

}  // namespace cohort::auth
