// launcher/cli_format.hpp — how the `cohort` command writes and reads task ids,
// sizes and tables.
//
// Task ids are shown one way everywhere, PVM's: 't' and the tid in hex
// (t100001 = host 1, task 1). parse_tid() also takes 0x100001 and decimal
// 1048577, so ids copied from a program's own output work too.
//
//   Table t({"TID", "HOST", "PID"});
//   t.add({format_tid(tid), host, std::to_string(pid)});
//   t.print(stdout);                // columns padded to their widest cell
#pragma once

#include <cohort/tid.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::cli {

/// "t100001".
std::string format_tid(Tid t);
/// "t100001", "0x100001" or "1048577"; the error says which forms are accepted.
Result<Tid> parse_tid(std::string_view text);

/// "0 B", "512 B", "4 KiB", "64 MiB" (powers of two exactly; else bytes).
std::string format_size(std::size_t bytes);
/// "4096", "4k", "4K", "4KiB", "1m", "64MiB" -> bytes.
Result<std::size_t> parse_size(std::string_view text);
/// printf("%.*f") into a string.
std::string format_fixed(double v, int decimals);

/// A plain text table; numbers and words alike are left-aligned, except columns
/// marked right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_align = {});
  void add(std::vector<std::string> row);
  void print(std::FILE* to) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// write(2) the whole line plus '\n' in one call, so that lines of concurrent
/// writers (our ranks, other processes) do not interleave. Errors are ignored:
/// a closed pipe must not stop the job's clean-up.
void write_line(int fd, std::string_view prefix, std::string_view line);

}  // namespace cohort::cli
