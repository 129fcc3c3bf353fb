#include "transport/ofi/ofi_address.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <charconv>
#include <fstream>
#include <vector>

namespace cohort::transport::ofi {

namespace {

constexpr std::string_view kScheme = "ofi:";
constexpr char kSep = '|';
constexpr std::size_t kFields = 8;

Status bad(std::string_view text, std::string_view why) {
  return Status(Errc::kInvalidArgument,
                "ofi address '" + std::string(text) + "': " + std::string(why) +
                    " (expected ofi:<provider>|<fabric>|<host>|<pid>|<nonce>|<eager>|<watch>|<name>)");
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status(Errc::kInvalidArgument, "odd number of hex digits");
  std::string out(hex.size() / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status(Errc::kInvalidArgument, "not a hex digit");
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string format_address(const OfiAddress& a) {
  char nonce[17];
  std::snprintf(nonce, sizeof nonce, "%016llx", static_cast<unsigned long long>(a.nonce));
  std::string s(kScheme);
  for (std::string_view f : {std::string_view(a.provider), std::string_view(a.fabric),
                             std::string_view(a.host)}) {
    s += f;
    s += kSep;
  }
  s += std::to_string(a.pid);
  s += kSep;
  s += nonce;
  s += kSep;
  s += std::to_string(a.eager);
  s += kSep;
  s += a.watch;
  s += kSep;
  s += to_hex(a.name);
  return s;
}

Result<OfiAddress> parse_address(std::string_view text) {
  if (text.substr(0, kScheme.size()) != kScheme) return bad(text, "does not start with 'ofi:'");
  std::string_view rest = text.substr(kScheme.size());
  std::array<std::string_view, kFields> f;
  std::size_t n = 0;
  while (n < kFields) {
    std::size_t bar = rest.find(kSep);
    f[n++] = rest.substr(0, bar);
    if (bar == std::string_view::npos) break;
    rest.remove_prefix(bar + 1);
    if (n == kFields) return bad(text, "too many fields");
  }
  if (n != kFields) return bad(text, "too few fields");
  OfiAddress a;
  a.provider = f[0];
  a.fabric = f[1];
  a.host = f[2];
  if (a.provider.empty()) return bad(text, "empty provider");
  auto [p, ec] = std::from_chars(f[3].data(), f[3].data() + f[3].size(), a.pid);
  if (ec != std::errc() || p != f[3].data() + f[3].size() || f[3].empty())
    return bad(text, "pid is not a number");
  if (f[4].size() != 16) return bad(text, "nonce is not 16 hex digits");
  auto [q, ec2] = std::from_chars(f[4].data(), f[4].data() + 16, a.nonce, 16);
  if (ec2 != std::errc() || q != f[4].data() + 16) return bad(text, "nonce is not hex");
  auto [e, ec3] = std::from_chars(f[5].data(), f[5].data() + f[5].size(), a.eager);
  if (ec3 != std::errc() || e != f[5].data() + f[5].size() || f[5].empty())
    return bad(text, "eager limit is not a number");
  a.watch = f[6];
  if (a.watch.empty()) return bad(text, "empty watch address");
  auto name = from_hex(f[7]);
  if (!name.is_ok() || name->empty()) return bad(text, "fabric name is not a hex string");
  a.name = std::move(*name);
  return a;
}

bool host_local_provider(std::string_view provider) {
  // The core provider is the first ';'-separated name ("shm", "tcp;ofi_rxm" -> "tcp").
  std::string_view core = provider.substr(0, provider.find(';'));
  return core == "shm" || core == "sm2";
}

bool same_fabric(const OfiAddress& self, const OfiAddress& peer) {
  if (self.provider != peer.provider || self.fabric != peer.fabric) return false;
  return !host_local_provider(self.provider) || self.host == peer.host;
}

std::string local_host_id() {
  // Emulated hosts (network namespaces) share the kernel and so its boot id,
  // but each has its own hostname (and /dev/shm); real hosts differ in both.
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
  std::string boot;
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::getline(in, boot);
  std::string host(name);
  for (char& c : host)
    if (c == '|') c = '_';
  return host + ":" + boot.substr(0, 8);
}

}  // namespace cohort::transport::ofi
