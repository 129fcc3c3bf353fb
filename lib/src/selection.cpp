// The transport selection rule of selection.hpp. Runs once per peer, so
// clarity wins over speed here: strings for every reason, no caching.
#include "lib/src/selection.hpp"

#include "base/env.hpp"
#include "lib/src/peers.hpp"

namespace cohort::lib {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string forced_by(const SelectionPolicy& policy) {
  return "forced by " + std::string(env::kTransports) + "=" + policy.spec;
}

/// Why endpoint `e` cannot carry messages to the peer, or "" when it can.
std::string why_not(const LocalEndpoint& e, std::span<const proto::AddressEntry> peer,
                    const SelectionPolicy& policy) {
  const std::string name(e.transport->name());
  const proto::AddressEntry* a = address_for(peer, name);
  if (a == nullptr) return "peer has no " + name + " address";
  if (!e.transport->reaches(e.address, a->address))
    return name == "shm" ? std::string("different host") : name + " does not reach it";
  if (is_fabric_transport(name) && !e.native_fabric && !policy.names(name))
    return name + " is not on a native fabric (" + env::kTransports + " does not name it)";
  return {};
}

}  // namespace

SelectionPolicy SelectionPolicy::parse(std::string_view spec) {
  SelectionPolicy p;
  p.spec = std::string(trim(spec));
  std::string_view rest = spec;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (!item.empty() && !p.names(item)) p.named.emplace_back(item);
  }
  return p;
}

SelectionPolicy SelectionPolicy::from_env() {
  auto spec = env::get(env::kTransports);
  return parse(spec ? *spec : std::string());
}

bool SelectionPolicy::names(std::string_view transport) const noexcept {
  return position(transport) < named.size();
}

std::size_t SelectionPolicy::position(std::string_view transport) const noexcept {
  for (std::size_t i = 0; i < named.size(); ++i)
    if (named[i] == transport) return i;
  return named.size();
}

bool is_fabric_transport(std::string_view name) noexcept {
  return name == "ofi" || name == "ucx";
}

bool native_fabric(const LocalEndpoint&) noexcept {
  return false;  // TODO(#4): read it from the endpoint once Caps can say it.
}

const proto::AddressEntry* address_for(std::span<const proto::AddressEntry> peer,
                                       std::string_view transport) noexcept {
  for (const auto& a : peer)
    if (a.transport == transport) return &a;
  return nullptr;
}

Result<Choice> choose_transport(std::span<const LocalEndpoint> eps,
                                std::span<const proto::AddressEntry> peer,
                                const SelectionPolicy& policy, const PeerPlace& where,
                                std::span<const std::string> failed) {
  std::vector<std::string> skipped(eps.size());
  std::size_t first = eps.size();
  for (std::size_t i = 0; i < eps.size(); ++i) {
    skipped[i] = i < failed.size() && !failed[i].empty() ? failed[i] : why_not(eps[i], peer, policy);
    if (skipped[i].empty() && first == eps.size()) first = i;
  }

  if (first == eps.size()) {
    std::string msg = "no transport reaches task " + tid_name(where.tid);
    if (where.host != 0 && where.my_host != 0)
      msg += where.host == where.my_host
                 ? " (on this host)"
                 : " (it runs on host " + std::to_string(where.host) + ", this task on host " +
                       std::to_string(where.my_host) + ")";
    msg += ":";
    for (std::size_t i = 0; i < eps.size(); ++i)
      msg += (i ? "; " : " ") + std::string(eps[i].transport->name()) + ": " + skipped[i];
    std::string offers;
    for (const auto& a : peer) offers += (offers.empty() ? "" : ",") + a.transport;
    msg += "; it offers [" + offers + "]";
    if (policy.forced())
      msg += "; this task has " + std::string(env::kTransports) + "=" + policy.spec;
    msg += "; check " + std::string(env::kTransports) + " on both sides";
    return Status(Errc::kUnsupported, std::move(msg));
  }

  std::size_t pick = first;
  const std::string_view first_name = eps[first].transport->name();
  if (is_fabric_transport(first_name)) {
    // ofi and ucx are peers in preference: COHORT_TRANSPORTS' order, else ofi.
    auto better = [&](std::string_view a, std::string_view b) {
      const std::size_t pa = policy.position(a), pb = policy.position(b);
      if (pa != pb) return pa < pb;
      return a == "ofi" && b != "ofi";
    };
    for (std::size_t i = first + 1; i < eps.size(); ++i) {
      const std::string_view n = eps[i].transport->name();
      if (skipped[i].empty() && is_fabric_transport(n) && better(n, eps[pick].transport->name()))
        pick = i;
    }
  }

  Choice c;
  c.index = pick;
  const std::string_view name = eps[pick].transport->name();
  if (name == "shm") {
    c.reason = "same host";
  } else if (is_fabric_transport(name)) {
    c.reason = eps[pick].native_fabric ? "native fabric" : forced_by(policy);
  } else {
    // Why the more preferred ones were passed over: a missing address or
    // another host tells more than a fabric that is not native.
    for (std::size_t i = 0; i < pick && c.reason.empty(); ++i)
      if (!is_fabric_transport(eps[i].transport->name())) c.reason = skipped[i];
    for (std::size_t i = 0; i < pick && c.reason.empty(); ++i) c.reason = skipped[i];
    if (c.reason.empty())
      c.reason = policy.forced() ? forced_by(policy)
                                 : eps.size() == 1 ? "the only transport built" : "most preferred";
  }
  return c;
}

}  // namespace cohort::lib
