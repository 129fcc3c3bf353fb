#include "daemon/net_iface.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>

namespace cohort::daemon {

Result<std::vector<std::string>> advertised_ips(const std::string& forced) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return errno_status(Errc::kIoError, "getifaddrs", errno);
  std::vector<std::string> good, loopback;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP)) continue;
    std::string name = a->ifa_name ? a->ifa_name : "";
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    if (!forced.empty()) {
      if (name == forced) good.push_back(buf);
      continue;
    }
    if (a->ifa_flags & IFF_LOOPBACK)
      loopback.push_back(buf);
    else if (!is_host_only_interface(name))
      good.push_back(buf);
  }
  ::freeifaddrs(list);
  if (!forced.empty() && good.empty())
    return Status(Errc::kNotFound, "interface '" + forced +
                                       "' (--interface / COHORT_IF) has no IPv4 address that is up; "
                                       "see 'ip -4 addr'");
  if (good.empty()) return loopback.empty() ? std::vector<std::string>{"127.0.0.1"} : loopback;
  return good;
}

Result<std::string> advertised_address(const std::string& bound_ip, unsigned port,
                                       const std::string& forced_interface) {
  std::vector<std::string> ips;
  if (bound_ip.empty() || bound_ip == "0.0.0.0") {
    COHORT_ASSIGN_OR_RETURN(ips, advertised_ips(forced_interface));
  } else {
    ips.push_back(bound_ip);
  }
  std::string out;
  for (const auto& ip : ips) out += (out.empty() ? "" : ",") + ("tcp:" + ip + ":" + std::to_string(port));
  return out;
}

}  // namespace cohort::daemon
