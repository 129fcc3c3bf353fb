#include "launcher/cli_format.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>

namespace cohort::cli {

std::string format_tid(Tid t) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%x", static_cast<unsigned>(t));
  return buf;
}

Result<Tid> parse_tid(std::string_view text) {
  std::string_view digits = text;
  int base = 10;
  if (!digits.empty() && (digits[0] == 't' || digits[0] == 'T')) {
    digits.remove_prefix(1);
    base = 16;
  } else if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    base = 16;
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || v > 0x7fffffff)
    return Status(Errc::kInvalidArgument,
                  "'" + std::string(text) +
                      "' is not a task id; write it as shown by 'cohort ps' (t100001), "
                      "in hex (0x100001) or in decimal (1048577)");
  Tid t = static_cast<Tid>(v);
  if (!tid::valid(t) || tid::is_daemon(t))
    return Status(Errc::kInvalidArgument, "'" + std::string(text) +
                                              "' names no task (a task id has a host index "
                                              "and a non-zero task number, e.g. t100001)");
  return t;
}

std::string format_size(std::size_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB"};
  std::size_t v = bytes;
  int u = 0;
  while (u < 3 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return std::to_string(v) + " " + kUnits[u];
}

Result<std::size_t> parse_size(std::string_view text) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc())
    return Status(Errc::kInvalidArgument, "'" + std::string(text) + "' is not a size (e.g. 4096, 4K, 1M)");
  std::string_view unit(p, static_cast<std::size_t>(text.data() + text.size() - p));
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "B" || unit == "b") mult = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB" || unit == "KB") mult = 1ull << 10;
  else if (unit == "m" || unit == "M" || unit == "MiB" || unit == "MB") mult = 1ull << 20;
  else if (unit == "g" || unit == "G" || unit == "GiB" || unit == "GB") mult = 1ull << 30;
  else
    return Status(Errc::kInvalidArgument, "'" + std::string(text) + "': unknown unit '" +
                                              std::string(unit) + "' (use K, M or G)");
  if (v > (1ull << 40) / mult)
    return Status(Errc::kInvalidArgument, "'" + std::string(text) + "' is too large");
  return static_cast<std::size_t>(v * mult);
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

Table::Table(std::vector<std::string> header, std::vector<bool> right_align)
    : header_(std::move(header)), right_(std::move(right_align)) {
  right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::FILE* to) const {
  std::vector<std::size_t> width(header_.size());
  for (std::size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& r : rows_) width[c] = std::max(width[c], r[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& r) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c) {
      bool last = c + 1 == r.size();
      std::string pad(width[c] - r[c].size(), ' ');
      if (right_[c]) line += pad + r[c];
      else line += r[c] + (last ? "" : pad);
      if (!last) line += "  ";
    }
    std::fprintf(to, "%s\n", line.c_str());
  };
  print_row(header_);
  for (const auto& r : rows_) print_row(r);
}

void write_line(int fd, std::string_view prefix, std::string_view line) {
  iovec iov[3] = {
      {const_cast<char*>(prefix.data()), prefix.size()},
      {const_cast<char*>(line.data()), line.size()},
      {const_cast<char*>("\n"), 1},
  };
  std::size_t total = prefix.size() + line.size() + 1;
  ssize_t n;
  do n = ::writev(fd, iov, 3);
  while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<std::size_t>(n) == total) return;
  // A short write (a full pipe): finish it with the rest, as one string.
  std::string all = std::string(prefix) + std::string(line) + "\n";
  std::size_t off = static_cast<std::size_t>(n);
  while (off < all.size()) {
    ssize_t m = ::write(fd, all.data() + off, all.size() - off);
    if (m < 0 && errno == EINTR) continue;
    if (m <= 0) return;
    off += static_cast<std::size_t>(m);
  }
}

}  // namespace cohort::cli
