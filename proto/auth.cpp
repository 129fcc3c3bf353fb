#include "proto/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <cerrno>
#include <string>

#include "base/endian.hpp"

namespace cohort::auth {
namespace {

Mac hmac(std::string_view key, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  // One-shot HMAC over a || b: concatenate into a small stack buffer (inputs
  // here are a context string and 32 bytes, never large).
  std::uint8_t msg[256];
  std::size_t n = 0;
  for (auto part : {a, b})
    for (std::uint8_t byte : part)
      if (n < sizeof msg) msg[n++] = byte;
  Mac out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), msg, n, out.data(), &len);
  return out;
}

std::span<const std::uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace

Result<Challenge> make_challenge() {
  Challenge c{};
  std::size_t got = 0;
  while (got < c.size()) {
    ssize_t n = ::getrandom(c.data() + got, c.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(Errc::kIoError, "getrandom", errno);
    }
    got += static_cast<std::size_t>(n);
  }
  return c;
}

Mac respond(std::string_view cookie, const Challenge& challenge, std::string_view context) {
  return hmac(cookie, bytes(context), challenge);
}

bool verify(std::string_view cookie, const Challenge& challenge, std::string_view context,
            std::span<const std::uint8_t> mac) {
  if (mac.size() != kMacBytes) return false;
  Mac want = respond(cookie, challenge, context);
  return CRYPTO_memcmp(want.data(), mac.data(), kMacBytes) == 0;
}

Mac task_token(std::string_view cookie, Tid tid) {
  std::uint8_t t[4];
  store_le<std::uint32_t>(t, static_cast<std::uint32_t>(tid));
  return hmac(cookie, bytes("cohort/1 task"), t);
}

bool check_task_token(std::string_view cookie, Tid tid, std::span<const std::uint8_t> token) {
  if (token.size() != kMacBytes) return false;
  Mac want = task_token(cookie, tid);
  return CRYPTO_memcmp(want.data(), token.data(), kMacBytes) == 0;
}

}  // namespace cohort::auth
