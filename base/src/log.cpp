#include "base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace cohort::log {
namespace {

struct Rule {
  std::string prefix;  // empty = every subsystem
  Level level;
};

struct Config {
  std::mutex mu;
  std::vector<Rule> rules;   // later rules win
  Level min_level = Level::kWarn;
  std::string tag;
};

std::atomic<int> g_fd{2};
std::atomic<int> g_min{static_cast<int>(Level::kWarn)};  // fast reject below every rule

void apply(Config& cfg, std::string_view spec);

Config& config() {
  static Config* c = [] {
    auto* cfg = new Config;  // never destroyed: log lines may come from static destructors
    const char* env = std::getenv("COHORT_LOG");
    apply(*cfg, env ? env : "");
    return cfg;
  }();
  return *c;
}

bool parse_level(std::string_view s, Level* out) {
  static const std::pair<std::string_view, Level> kNames[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"off", Level::kOff}};
  for (auto& [name, lvl] : kNames)
    if (s == name) {
      *out = lvl;
      return true;
    }
  return false;
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kTrace: return "trace";
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
    default: return "off";
  }
}

bool matches(std::string_view prefix, std::string_view subsystem) {
  if (prefix.empty()) return true;
  if (subsystem.substr(0, prefix.size()) != prefix) return false;
  return subsystem.size() == prefix.size() || subsystem[prefix.size()] == '.';
}

void apply(Config& cfg, std::string_view spec) {
  std::vector<Rule> rules;
  rules.push_back({"", Level::kWarn});
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    auto colon = item.find(':');
    Level lvl;
    if (colon == std::string_view::npos) {
      if (parse_level(item, &lvl)) rules.push_back({"", lvl});
      else rules.push_back({std::string(item), Level::kDebug});  // "transport" = transport:debug
    } else if (parse_level(item.substr(colon + 1), &lvl)) {
      rules.push_back({std::string(item.substr(0, colon)), lvl});
    }
  }
  Level min = Level::kOff;
  for (auto& r : rules) min = std::min(min, r.level);
  std::lock_guard lock(cfg.mu);
  cfg.rules = std::move(rules);
  g_min.store(static_cast<int>(min), std::memory_order_relaxed);
}

}  // namespace

void configure(std::string_view spec) { apply(config(), spec); }

bool enabled(Level level, std::string_view subsystem) noexcept {
  auto& cfg = config();  // first use reads COHORT_LOG
  if (static_cast<int>(level) < g_min.load(std::memory_order_relaxed)) return false;
  std::lock_guard lock(cfg.mu);
  Level eff = Level::kWarn;
  std::size_t best = 0;
  bool any = false;
  for (auto& r : cfg.rules) {
    if (!matches(r.prefix, subsystem)) continue;
    if (!any || r.prefix.size() >= best) {
      eff = r.level;
      best = r.prefix.size();
      any = true;
    }
  }
  return level >= eff;
}

void set_fd(int fd) noexcept { g_fd.store(fd); }

void set_process_tag(std::string_view tag) {
  auto& cfg = config();
  std::lock_guard lock(cfg.mu);
  cfg.tag = std::string(tag);
}

Line::Line(Level level, std::string_view subsystem, const char* file, int line) {
  using namespace std::chrono;
  auto now = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  std::string tag;
  {
    auto& cfg = config();
    std::lock_guard lock(cfg.mu);
    tag = cfg.tag;
  }
  char ts[32];
  std::snprintf(ts, sizeof ts, "%lld.%06lld", static_cast<long long>(now / 1000000),
                static_cast<long long>(now % 1000000));
  out_ << ts << ' ' << (tag.empty() ? "cohort" : tag) << '[' << ::getpid() << "] "
       << level_name(level) << ' ' << subsystem << ": ";
  if (level <= Level::kDebug) {
    std::string_view f(file);
    auto slash = f.rfind('/');
    out_ << '(' << (slash == std::string_view::npos ? f : f.substr(slash + 1)) << ':' << line
         << ") ";
  }
}

Line::~Line() {
  out_ << '\n';
  std::string s = out_.str();
  const char* p = s.data();
  std::size_t left = s.size();
  int fd = g_fd.load();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void check_failed(const char* cond, const char* file, int line) noexcept {
  std::fprintf(stderr, "cohort: internal check failed: %s at %s:%d\n", cond, file, line);
  std::abort();
}

}  // namespace cohort::log
