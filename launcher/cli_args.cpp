#include "launcher/cli_args.hpp"

#include <charconv>

namespace cohort::cli {

void Parser::flag(std::initializer_list<const char*> names, bool* out) {
  Spec s;
  s.names.assign(names.begin(), names.end());
  s.flag = out;
  specs_.push_back(std::move(s));
}

void Parser::option(std::initializer_list<const char*> names, std::string* out) {
  Spec s;
  s.names.assign(names.begin(), names.end());
  s.value = out;
  specs_.push_back(std::move(s));
}

void Parser::multi(std::initializer_list<const char*> names, std::vector<std::string>* out) {
  Spec s;
  s.names.assign(names.begin(), names.end());
  s.values = out;
  specs_.push_back(std::move(s));
}

const Parser::Spec* Parser::find(std::string_view name) const {
  for (const Spec& s : specs_)
    for (const std::string& n : s.names)
      if (n == name) return &s;
  return nullptr;
}

Result<std::vector<std::string>> Parser::parse(const std::vector<std::string>& args,
                                               bool stop_at_positional) {
  std::vector<std::string> positionals;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // "-" alone is a positional by convention (stdin), as is anything not starting with '-'.
    if (a.size() < 2 || a[0] != '-') {
      positionals.push_back(a);
      if (stop_at_positional) {
        positionals.insert(positionals.end(), args.begin() + i + 1, args.end());
        return positionals;
      }
      continue;
    }
    if (a == "--") {
      positionals.insert(positionals.end(), args.begin() + i + 1, args.end());
      return positionals;
    }
    // Split the name from an attached value: --name=value, or -nVALUE for short options.
    std::string name = a;
    std::string attached;
    bool has_attached = false;
    if (a.rfind("--", 0) == 0) {
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        attached = a.substr(eq + 1);
        has_attached = true;
      }
    } else if (a.size() > 2 && !find(a)) {
      name = a.substr(0, 2);
      attached = a.substr(2);
      has_attached = true;
    }
    const Spec* spec = find(name);
    if (!spec)
      return Status(Errc::kInvalidArgument, context_ + ": unknown option '" + a + "'");
    if (spec->flag) {
      if (has_attached)
        return Status(Errc::kInvalidArgument, context_ + ": option '" + name + "' takes no value");
      *spec->flag = true;
      continue;
    }
    std::string value;
    if (has_attached) {
      value = attached;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status(Errc::kInvalidArgument, context_ + ": option '" + name + "' needs a value");
    }
    if (spec->value) *spec->value = value;
    if (spec->values) spec->values->push_back(value);
  }
  return positionals;
}

Result<long long> parse_int(std::string_view text, std::string_view what, long long min,
                            long long max) {
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < min || v > max)
    return Status(Errc::kInvalidArgument, std::string(what) + " wants a whole number from " +
                                              std::to_string(min) + " to " + std::to_string(max) +
                                              ", not '" + std::string(text) + "'");
  return v;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace cohort::cli
