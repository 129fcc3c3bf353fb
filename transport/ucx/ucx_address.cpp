#include "transport/ucx/ucx_address.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "transport/ucx/ucx_tags.hpp"

namespace cohort::transport::ucx {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kChecksumAt = 44;
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::uint32_t fnv1a(std::span<const std::byte> bytes, std::size_t skip_at) {
  std::uint32_t h = 2166136261u;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i >= skip_at && i < skip_at + 4) continue;
    h = (h ^ std::to_integer<std::uint32_t>(bytes[i])) * 16777619u;
  }
  return h;
}

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

std::string base64url(std::span<const std::byte> in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = std::to_integer<std::uint32_t>(in[i]) << 16 |
                      std::to_integer<std::uint32_t>(in[i + 1]) << 8 |
                      std::to_integer<std::uint32_t>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (std::size_t rest = in.size() - i; rest > 0) {
    std::uint32_t v = std::to_integer<std::uint32_t>(in[i]) << 16;
    if (rest == 2) v |= std::to_integer<std::uint32_t>(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (rest == 2) out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/// False on a character outside the alphabet or an impossible length.
bool unbase64url(std::string_view in, std::string& out) {
  if (in.size() % 4 == 1) return false;
  out.clear();
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = decode_char(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::uint64_t inode_of(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

Status bad(std::string_view text, const std::string& why) {
  return Status(Errc::kInvalidArgument, "ucx address '" + abbreviate(text) + "': " + why +
                                            "; expected an address published by a ucx endpoint");
}

}  // namespace

Result<std::uint64_t> process_start_time(std::uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces and parentheses: start after the last ')'.
  auto close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos)
    return Status(Errc::kNotFound, "process " + std::to_string(pid) + " is gone");
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  // The fields after ')' start at number 3; the start time is number 22.
  for (int n = 3; n <= 22; ++n) rest >> field;
  if (!rest) return Status(Errc::kNotFound, "cannot read /proc/" + std::to_string(pid) + "/stat");
  return std::stoull(field);
}

Identity local_identity() {
  Identity id;
  std::string boot = read_first_line("/proc/sys/kernel/random/boot_id");
  id.host = boot.empty() ? 0 : fnv1a64(boot) | 1;
  id.pid_ns = inode_of("/proc/self/ns/pid");
  id.pid = static_cast<std::uint32_t>(::getpid());
  auto start = process_start_time(id.pid);
  id.start_time = start.is_ok() ? *start : 0;
  return id;
}

std::string encode_binary(const PeerAddress& a) {
  std::string out(kAddressFixedBytes + a.worker.size(), '\0');
  auto* p = reinterpret_cast<std::byte*>(out.data());
  p[0] = std::byte{kVersion};
  put_u32(p + 4, static_cast<std::uint32_t>(a.worker.size()));
  put_u64(p + 8, a.nonce);
  put_u64(p + 16, a.owner.host);
  put_u64(p + 24, a.owner.pid_ns);
  put_u32(p + 32, a.owner.pid);
  // The start time takes the 8 bytes at 36; the checksum follows at 44.
  put_u64(p + 36, a.owner.start_time);
  std::memcpy(p + kAddressFixedBytes, a.worker.data(), a.worker.size());
  put_u32(p + kChecksumAt, fnv1a({p, out.size()}, kChecksumAt));
  return out;
}

std::string encode_text(const PeerAddress& a) {
  std::string bin = encode_binary(a);
  return std::string(kAddressPrefix) +
         base64url({reinterpret_cast<const std::byte*>(bin.data()), bin.size()});
}

namespace {

/// Empty when `b` is a well-formed binary address (then filled into `a`); else why not.
std::string decode_binary(std::span<const std::byte> b, PeerAddress& a) {
  if (b.size() < kAddressFixedBytes) return "too short (" + std::to_string(b.size()) + " bytes)";
  if (b[0] != std::byte{kVersion})
    return "unknown version " + std::to_string(std::to_integer<int>(b[0]));
  std::uint32_t len = get_u32(b.data() + 4);
  if (len == 0 || len > kMaxWorkerAddress || kAddressFixedBytes + len != b.size())
    return "worker address length " + std::to_string(len) + " does not match its size";
  if (get_u32(b.data() + kChecksumAt) != fnv1a(b, kChecksumAt))
    return "checksum mismatch (truncated or altered)";
  a.nonce = get_u64(b.data() + 8);
  a.owner.host = get_u64(b.data() + 16);
  a.owner.pid_ns = get_u64(b.data() + 24);
  a.owner.pid = get_u32(b.data() + 32);
  a.owner.start_time = get_u64(b.data() + 36);
  a.worker.assign(reinterpret_cast<const char*>(b.data()) + kAddressFixedBytes, len);
  return {};
}

}  // namespace

Result<PeerAddress> parse_binary(std::span<const std::byte> b) {
  PeerAddress a;
  std::string why = decode_binary(b, a);
  if (!why.empty()) return bad({reinterpret_cast<const char*>(b.data()), b.size()}, why);
  return a;
}

Result<PeerAddress> parse_text(std::string_view text) {
  if (text.substr(0, kAddressPrefix.size()) != kAddressPrefix)
    return bad(text, "it does not start with '" + std::string(kAddressPrefix) + "'");
  std::string bin;
  if (!unbase64url(text.substr(kAddressPrefix.size()), bin))
    return bad(text, "it is not base64url after the prefix");
  PeerAddress a;
  std::string why = decode_binary({reinterpret_cast<const std::byte*>(bin.data()), bin.size()}, a);
  if (!why.empty()) return bad(text, why);
  return a;
}

std::string abbreviate(std::string_view text) {
  constexpr std::size_t kShown = 24;
  std::string out;
  for (char c : text.substr(0, kShown)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > kShown) out += "...";
  return out;
}

}  // namespace cohort::transport::ucx
