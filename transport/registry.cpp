// The explicit list of transports. transport_config.hpp is generated from
// COHORT_TRANSPORTS_BUILT in transport/CMakeLists.txt; each entry X(name) stands
// for the function cohort::transport::name::transport() of the folder name/.
#include "transport/registry.hpp"

#include <cohort/transport_config.hpp>

#include <algorithm>
#include <string>

#include "base/env.hpp"

namespace cohort::transport {

#define COHORT_DECLARE_TRANSPORT(name) \
  namespace name {                     \
  Transport& transport();              \
  }
COHORT_TRANSPORT_LIST(COHORT_DECLARE_TRANSPORT)
#undef COHORT_DECLARE_TRANSPORT

namespace loop {
Transport& transport();
}

std::span<Transport* const> all() {
  // The trailing nullptr keeps the array well-formed when no transport is built.
#define COHORT_LIST_TRANSPORT(name) &name::transport(),
  static Transport* const list[] = {COHORT_TRANSPORT_LIST(COHORT_LIST_TRANSPORT) nullptr};
#undef COHORT_LIST_TRANSPORT
  return {list, std::size(list) - 1};
}

Transport* find(std::string_view name) {
  for (Transport* t : all())
    if (t->name() == name) return t;
  if (name == "loop") return &loop::transport();
  return nullptr;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string valid_names() {
  std::string names;
  for (Transport* t : all()) {
    if (!names.empty()) names += ", ";
    names += t->name();
  }
  return names + (names.empty() ? "loop" : ", loop");
}

}  // namespace

Result<std::vector<Transport*>> parse_enabled(std::string_view spec) {
  std::vector<Transport*> chosen;
  bool any = false;
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    any = true;
    Transport* t = find(item);
    if (t == nullptr)
      return Status(Errc::kInvalidArgument, std::string(env::kTransports) +
                                                " names unknown transport '" + std::string(item) +
                                                "'; this build has: " + valid_names());
    if (std::find(chosen.begin(), chosen.end(), t) == chosen.end()) chosen.push_back(t);
  }
  if (!any) return std::vector<Transport*>(all().begin(), all().end());
  // Preference is the registry's, not the order the user typed.
  std::vector<Transport*> ordered;
  for (Transport* t : all())
    if (std::find(chosen.begin(), chosen.end(), t) != chosen.end()) ordered.push_back(t);
  for (Transport* t : chosen)
    if (std::find(ordered.begin(), ordered.end(), t) == ordered.end()) ordered.push_back(t);
  return ordered;
}

Result<std::vector<Transport*>> enabled() {
  auto spec = env::get(env::kTransports);
  return parse_enabled(spec ? *spec : std::string());
}

}  // namespace cohort::transport
