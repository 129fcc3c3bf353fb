// launcher/cli_args.hpp — the small option parser every `cohort` subcommand uses.
//
// A subcommand declares its options, then parses its arguments once:
//
//   bool all = false;
//   std::string signal = "TERM";
//   cli::Parser p("cohort kill");
//   p.flag({"-a", "--all"}, &all);
//   p.option({"-s", "--signal"}, &signal);
//   auto rest = p.parse(args);            // positionals, or an error to print with usage
//
// Accepted forms: `-s VALUE`, `-sVALUE`, `--signal VALUE`, `--signal=VALUE`,
// `--` (everything after it is positional). With stop_at_positional (used by
// `cohort run PROGRAM ARGS...`) the first positional argument ends option
// parsing, so the program's own options are passed through untouched.
// Numbers are checked by parse_int(), which names the option in its error.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.hpp"

namespace cohort::cli {

class Parser {
 public:
  /// `context` prefixes error messages, e.g. "cohort run".
  explicit Parser(std::string context) : context_(std::move(context)) {}

  /// A switch without a value; sets *out to true when present.
  void flag(std::initializer_list<const char*> names, bool* out);
  /// An option with a value; the last occurrence wins.
  void option(std::initializer_list<const char*> names, std::string* out);
  /// An option with a value that may be repeated; each value is appended.
  void multi(std::initializer_list<const char*> names, std::vector<std::string>* out);

  /// Parse `args` (without the subcommand name) and return the positionals.
  Result<std::vector<std::string>> parse(const std::vector<std::string>& args,
                                         bool stop_at_positional = false);

 private:
  struct Spec {
    std::vector<std::string> names;
    bool* flag = nullptr;
    std::string* value = nullptr;
    std::vector<std::string>* values = nullptr;
  };
  const Spec* find(std::string_view name) const;

  std::string context_;
  std::vector<Spec> specs_;
};

/// Parse a decimal integer in [min, max]; the error names `what` ("-n").
Result<long long> parse_int(std::string_view text, std::string_view what, long long min,
                            long long max);

/// Split "a,b,c" into its non-empty parts.
std::vector<std::string> split_commas(std::string_view text);

}  // namespace cohort::cli
