#include "transport/tcp/tcp_address.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <string_view>

#include "base/env.hpp"
#include "base/netif.hpp"

namespace cohort::transport::tcp {

namespace {

constexpr std::string_view kScheme = "tcp:";

const sockaddr_in& v4(const SocketAddress& a) {
  return *reinterpret_cast<const sockaddr_in*>(&a.storage);
}
const sockaddr_in6& v6(const SocketAddress& a) {
  return *reinterpret_cast<const sockaddr_in6*>(&a.storage);
}

Status bad(std::string_view text, std::string_view why) {
  return Status(Errc::kInvalidArgument, "bad tcp address '" + std::string(text) +
                                            "': " + std::string(why) +
                                            " (expected tcp:HOST:PORT, HOST numeric)");
}

Result<SocketAddress> parse_one(std::string_view text) {
  if (text.substr(0, kScheme.size()) != kScheme) return bad(text, "missing 'tcp:'");
  std::string_view rest = text.substr(kScheme.size());
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      return bad(text, "unterminated [IPv6] host");
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad(text, "no port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
    return bad(text, "port is not a number from 1 to 65535");
  std::string h(host);
  SocketAddress a;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET, h.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    a.size = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, h.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    a.size = sizeof(sockaddr_in6);
  } else {
    return bad(text, "host is not a numeric IPv4 or IPv6 address");
  }
  a.set_port(p);
  return a;
}

}  // namespace

bool SocketAddress::is_wildcard() const noexcept {
  if (family() == AF_INET) return v4(*this).sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&v6(*this).sin6_addr);
  return false;
}

bool SocketAddress::is_loopback() const noexcept {
  if (family() == AF_INET) return (ntohl(v4(*this).sin_addr.s_addr) >> 24) == 127;
  if (family() == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&v6(*this).sin6_addr);
  return false;
}

unsigned SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(v4(*this).sin_port);
  if (family() == AF_INET6) return ntohs(v6(*this).sin6_port);
  return 0;
}

void SocketAddress::set_port(unsigned port) noexcept {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string format_address(const SocketAddress& a) {
  char host[INET6_ADDRSTRLEN] = {};
  if (a.family() == AF_INET) {
    ::inet_ntop(AF_INET, &v4(a).sin_addr, host, sizeof host);
    return std::string(kScheme) + host + ":" + std::to_string(a.port());
  }
  ::inet_ntop(AF_INET6, &v6(a).sin6_addr, host, sizeof host);
  return std::string(kScheme) + "[" + host + "]:" + std::to_string(a.port());
}

Result<std::vector<SocketAddress>> parse_address_list(std::string_view text) {
  std::vector<SocketAddress> out;
  std::string_view rest = text;
  while (true) {
    auto comma = rest.find(',');
    auto one = parse_one(rest.substr(0, comma));
    if (!one.is_ok()) return one.take_status();
    out.push_back(*one);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

Result<SocketAddress> resolve_bind_host(const std::string& host) {
  SocketAddress a;
  if (host.empty()) {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&a.storage);
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    a.size = sizeof(sockaddr_in);
    return a;
  }
  // open() is set-up time, so a blocking name lookup is acceptable here.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr)
    return Status(Errc::kInvalidArgument, "cannot resolve tcp bind host '" + host +
                                              "': " + ::gai_strerror(rc) +
                                              "; give a numeric address of this host");
  std::memcpy(&a.storage, res->ai_addr, res->ai_addrlen);
  a.size = res->ai_addrlen;
  ::freeaddrinfo(res);
  a.set_port(0);
  return a;
}

Result<std::string> published_address(const SocketAddress& bound, std::string_view forced) {
  if (!bound.is_wildcard()) return format_address(bound);
  std::vector<SocketAddress> outside, loopback;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0) continue;
      const std::string_view name = i->ifa_name != nullptr ? i->ifa_name : "";
      // COHORT_IF: that interface only. Else never a host-only bridge, which
      // no peer on another host can reach (base/netif.hpp).
      if (!forced.empty() ? name != forced : is_host_only_interface(name)) continue;
      int fam = i->ifa_addr->sa_family;
      // An IPv6 wildcard also accepts IPv4 (Linux dual-stack default).
      if (fam != AF_INET && !(fam == AF_INET6 && bound.family() == AF_INET6)) continue;
      SocketAddress a;
      a.size = fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      std::memcpy(&a.storage, i->ifa_addr, a.size);
      if (fam == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&v6(a).sin6_addr)) continue;  // needs a scope
      a.set_port(bound.port());
      (a.is_loopback() ? loopback : outside).push_back(a);
    }
    ::freeifaddrs(list);
  }
  outside.insert(outside.end(), loopback.begin(), loopback.end());
  if (outside.empty() && !forced.empty())
    return Status(Errc::kNotFound, "interface '" + std::string(forced) + "' (" + env::kInterface +
                                       ") has no address that is up; name one that 'ip addr' "
                                       "lists, or unset " + env::kInterface);
  if (outside.empty()) {
    auto lo = parse_one("tcp:127.0.0.1:" + std::to_string(bound.port()));
    if (lo.is_ok()) outside.push_back(*lo);
  }
  std::string text;
  for (const SocketAddress& a : outside) {
    if (!text.empty()) text += ',';
    text += format_address(a);
  }
  return text;
}

}  // namespace cohort::transport::tcp
