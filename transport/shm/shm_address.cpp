#include "transport/shm/shm_address.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <vector>

#include "transport/base/options.hpp"

namespace cohort::transport::shm {

namespace {

constexpr std::string_view kScheme = "shm:";
// sun_path holds 108 bytes; the abstract namespace spends one on the leading NUL.
constexpr std::size_t kMaxSocketName = 100;

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string to_hex(std::uint64_t v) {
  char buf[17];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  return std::string(buf, r.ptr);
}

bool parse_number(std::string_view s, std::uint64_t& out, int base) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "a.b" -> a and b, both in `base`.
bool parse_pair(std::string_view s, std::uint64_t& a, std::uint64_t& b, int base_a, int base_b) {
  auto dot = s.find('.');
  return dot != std::string_view::npos && parse_number(s.substr(0, dot), a, base_a) &&
         parse_number(s.substr(dot + 1), b, base_b);
}

bool printable_field(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c <= ' ' || c > '~' || c == '/') return false;
  return true;
}

}  // namespace

HostIdentity local_host_identity() {
  HostIdentity id;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0) id.hostname = name;
  if (id.hostname.empty()) id.hostname = "localhost";
  id.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  if (id.boot_id.empty()) id.boot_id = "unknown";
  struct stat st {};
  if (::stat("/dev/shm", &st) == 0) {
    id.shm_dev = st.st_dev;
    id.shm_ino = st.st_ino;
  }
  if (::stat("/proc/self/ns/net", &st) == 0) id.net_ns = st.st_ino;
  return id;
}

std::uint64_t local_pid_namespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
}

std::string format_address(const ShmAddress& a) {
  std::string s(kScheme);
  s += a.host.hostname + "/" + a.host.boot_id + "/" + to_hex(a.host.shm_dev) + "." +
       to_hex(a.host.shm_ino) + "/" + to_hex(a.host.net_ns) + "/" + to_hex(a.pid_ns) + "." +
       std::to_string(a.pid) + "/" + a.socket_name + "/" + std::to_string(a.eager_limit);
  return s;
}

Result<ShmAddress> parse_address(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status(Errc::kInvalidArgument, "'" + std::string(text.substr(0, 200)) +
                                              "' is not an shm address: " + std::string(why));
  };
  if (text.substr(0, kScheme.size()) != kScheme) return bad("it does not start with shm:");
  std::string_view rest = text.substr(kScheme.size());
  std::vector<std::string_view> f;
  while (true) {
    auto slash = rest.find('/');
    f.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (f.size() != 7) return bad("it needs 7 fields separated by '/'");
  for (std::string_view field : f)
    if (!printable_field(field)) return bad("a field is empty or has blanks");
  ShmAddress a;
  a.host.hostname = f[0];
  a.host.boot_id = f[1];
  std::uint64_t pid = 0, eager = 0;
  if (!parse_pair(f[2], a.host.shm_dev, a.host.shm_ino, 16, 16)) return bad("bad /dev/shm id");
  if (!parse_number(f[3], a.host.net_ns, 16)) return bad("bad network namespace");
  if (!parse_pair(f[4], a.pid_ns, pid, 16, 10) || pid == 0 || pid > 0x7fffffff)
    return bad("bad process id");
  if (f[5].size() > kMaxSocketName) return bad("socket name too long");
  if (!parse_number(f[6], eager, 10) || eager == 0 || eager > kMaxEagerLimit)
    return bad("bad eager limit");
  a.pid = static_cast<pid_t>(pid);
  a.socket_name = f[5];
  a.eager_limit = eager;
  return a;
}

}  // namespace cohort::transport::shm
