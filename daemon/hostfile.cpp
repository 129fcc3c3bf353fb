#include "daemon/hostfile.hpp"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

namespace cohort::daemon {
namespace {

struct Word {
  std::string text;
  bool quoted = false;
};

// Split one line into words: blanks separate, quotes group, '#' outside quotes
// ends the line. An unterminated quote is an error.
Result<std::vector<Word>> split_line(std::string_view line) {
  std::vector<Word> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i >= line.size() || line[i] == '#') break;
    Word w;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
      char c = line[i];
      if (c == '\'' || c == '"') {
        std::size_t end = line.find(c, i + 1);
        if (end == std::string_view::npos)
          return Status(Errc::kInvalidArgument,
                        std::string("unterminated ") + c + " quote; close it with " + c);
        w.text.append(line.substr(i + 1, end - i - 1));
        w.quoted = true;
        i = end + 1;
      } else if (c == '#' && !w.quoted && w.text.empty()) {
        break;
      } else {
        w.text.push_back(c);
        ++i;
      }
    }
    words.push_back(std::move(w));
  }
  return words;
}

Status apply_option(const std::string& word, HostSpec& h) {
  auto eq = word.find('=');
  if (eq == std::string::npos || eq == 0)
    return Status(Errc::kInvalidArgument,
                  "'" + word + "' is not an option; write key=value (slots=, agent=, wdir=, path=)");
  std::string key = word.substr(0, eq), value = word.substr(eq + 1);
  if (key == "slots") {
    int n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size() || n < 1 || n > 1000000)
      return Status(Errc::kInvalidArgument,
                    "slots must be a positive whole number, got '" + value + "'");
    h.slots = n;
  } else if (key == "agent") {
    if (value.empty()) return Status(Errc::kInvalidArgument, "agent= needs a command template");
    h.agent = value;
  } else if (key == "wdir" || key == "wd") {
    h.wdir = value;
  } else if (key == "path" || key == "ep") {
    h.path = value;
  } else {
    return Status(Errc::kInvalidArgument,
                  "unknown option '" + key + "'; the options are slots=, agent=, wdir=, path=");
  }
  return Status();
}

}  // namespace

Result<std::vector<std::string>> expand_host_list(std::string_view list) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < list.size()) {
    // One item: prefix[ranges]suffix, items separated by ',' outside brackets.
    std::size_t open = list.find_first_of("[,", i);
    if (open == std::string_view::npos || list[open] == ',') {
      std::size_t end = open == std::string_view::npos ? list.size() : open;
      if (end > i) out.emplace_back(list.substr(i, end - i));
      i = end + 1;
      continue;
    }
    std::size_t close = list.find(']', open);
    if (close == std::string_view::npos)
      return Status(Errc::kInvalidArgument, "host list '" + std::string(list) + "': missing ']'");
    std::string prefix(list.substr(i, open - i));
    std::size_t after = list.find(',', close);
    std::string suffix(list.substr(close + 1, (after == std::string_view::npos ? list.size() : after) - close - 1));
    std::string_view ranges = list.substr(open + 1, close - open - 1);
    std::stringstream rs{std::string(ranges)};
    std::string range;
    while (std::getline(rs, range, ',')) {
      auto dash = range.find('-');
      std::string lo = range.substr(0, dash), hi = dash == std::string::npos ? lo : range.substr(dash + 1);
      unsigned a = 0, b = 0;
      auto r1 = std::from_chars(lo.data(), lo.data() + lo.size(), a);
      auto r2 = std::from_chars(hi.data(), hi.data() + hi.size(), b);
      if (lo.empty() || hi.empty() || r1.ec != std::errc() || r2.ec != std::errc() ||
          r1.ptr != lo.data() + lo.size() || r2.ptr != hi.data() + hi.size() || a > b || b - a > 100000)
        return Status(Errc::kInvalidArgument, "host list '" + std::string(list) + "': bad range '" + range + "'");
      for (unsigned n = a; n <= b; ++n) {
        std::string num = std::to_string(n);
        if (num.size() < lo.size()) num.insert(0, lo.size() - num.size(), '0');  // keep padding
        out.push_back(prefix + num + suffix);
      }
    }
    i = after == std::string_view::npos ? list.size() : after + 1;
  }
  return out;
}

Result<std::vector<HostSpec>> parse_hostfile(std::string_view text, std::string_view file_name) {
  std::vector<HostSpec> hosts;
  std::set<std::string> seen;
  HostSpec defaults;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    auto where = [&](const Status& s) {
      return Status(s.code(), std::string(file_name) + ":" + std::to_string(line_no) + ": " + s.message());
    };
    auto words = split_line(line);
    if (!words.is_ok()) return where(words.status());
    if (words->empty()) continue;
    const std::string& name = (*words)[0].text;
    HostSpec h = defaults;
    h.line = line_no;
    for (std::size_t k = 1; k < words->size(); ++k) {
      Status s = apply_option((*words)[k].text, h);
      if (!s.is_ok()) return where(s);
    }
    if (name == "*") {
      defaults = h;
      defaults.line = 0;
      continue;
    }
    if (name.empty() || name[0] == '-' || name.find('=') != std::string::npos)
      return where(Status(Errc::kInvalidArgument, "a line must start with a host name, got '" + name + "'"));
    auto names = expand_host_list(name);
    if (!names.is_ok()) return where(names.status());
    for (auto& n : *names) {
      if (!seen.insert(n).second)
        return where(Status(Errc::kAlreadyExists, "host '" + n + "' is listed twice; keep one line"));
      h.name = n;
      hosts.push_back(h);
    }
  }
  return hosts;
}

Result<std::vector<HostSpec>> read_hostfile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status(Errc::kNotFound, "cannot read hostfile '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_hostfile(ss.str(), path);
}

}  // namespace cohort::daemon
