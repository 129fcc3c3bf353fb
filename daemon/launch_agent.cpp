#include "daemon/launch_agent.hpp"

#include <cstdlib>

namespace cohort::daemon {

Result<std::vector<std::string>> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur)), cur.clear(), in_word = false;
    } else if (c == '\'') {
      std::size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos)
        return Status(Errc::kInvalidArgument, "unterminated ' in '" + std::string(line) + "'");
      cur.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) ++j;
        cur.push_back(line[j]);
      }
      if (j >= line.size())
        return Status(Errc::kInvalidArgument, "unterminated \" in '" + std::string(line) + "'");
      in_word = true;
      i = j;
    } else if (c == '\\' && i + 1 < line.size()) {
      cur.push_back(line[++i]);
      in_word = true;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::string shell_quote(std::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

Result<LaunchAgent> parse_launch_agent(std::string_view spec) {
  LaunchAgent a;
  a.spec = std::string(spec);
  if (spec == "ssh") return a;
  if (spec == "slurm" || spec == "srun") {
    a.kind = LaunchAgent::Kind::kSlurm;
    return a;
  }
  auto words = split_words(spec);
  if (!words.is_ok()) return words.take_status();
  if (words->empty())
    return Status(Errc::kInvalidArgument, "empty launch agent; use ssh, slurm or a template with {host}");
  bool has_host = false;
  for (auto& w : *words) has_host |= w.find("{host}") != std::string::npos;
  if (!has_host)
    return Status(Errc::kInvalidArgument,
                  "launch agent '" + std::string(spec) +
                      "' has no {host}; write where the host name goes, e.g. 'ip netns exec {host}'");
  a.kind = LaunchAgent::Kind::kTemplate;
  a.words = std::move(words).value();
  return a;
}

LaunchAgent default_launch_agent() {
  LaunchAgent a;
  const char* nodes = std::getenv("SLURM_JOB_NODELIST");
  if (nodes && *nodes) {
    a.kind = LaunchAgent::Kind::kSlurm;
    a.spec = "slurm";
  } else {
    a.spec = "ssh";
  }
  return a;
}

bool runs_in_foreground(const LaunchAgent& agent) {
  return agent.kind == LaunchAgent::Kind::kSlurm;
}

std::vector<std::string> launch_argv(const LaunchAgent& agent, const std::string& host,
                                     const std::vector<std::string>& command) {
  std::vector<std::string> argv;
  switch (agent.kind) {
    case LaunchAgent::Kind::kSsh: {
      argv = {"ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o",
              "StrictHostKeyChecking=accept-new", "-T", host, "--"};
      // ssh hands the remote shell one string: quote every word.
      std::string remote;
      for (auto& w : command) remote += (remote.empty() ? "" : " ") + shell_quote(w);
      argv.push_back(remote);
      return argv;
    }
    case LaunchAgent::Kind::kSlurm:
      // --overlap: the step shares the node with the job's other steps; --whole:
      // it holds every CPU the job has there (the daemon's tasks run inside it).
      argv = {"srun", "--nodes=1", "--ntasks=1", "--nodelist=" + host, "--overlap", "--whole",
              "--kill-on-bad-exit=0", "--job-name=cohortd", "--quiet"};
      break;
    case LaunchAgent::Kind::kTemplate:
      for (std::string w : agent.words) {
        for (std::size_t p; (p = w.find("{host}")) != std::string::npos;) w.replace(p, 6, host);
        argv.push_back(std::move(w));
      }
      break;
  }
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

}  // namespace cohort::daemon
