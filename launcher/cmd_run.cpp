// `cohort run`: run one parallel job, in the running VM or in a private one,
// with each task's output passed on as "[RANK] line".
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "launcher/cli_args.hpp"
#include "launcher/cli_format.hpp"
#include "launcher/job.hpp"
#include "launcher/vm.hpp"

namespace cohort::cli {

const char* const kRunUsage =
    "usage: cohort run [-n N] [--vm NAME] [--private] [--host HOST] [-x NAME[=VALUE]]...\n"
    "                  [--bind-to core|numa|none|auto] [--wdir DIR] PROGRAM [ARGS...]\n"
    "\n"
    "Start N tasks of PROGRAM as one job (ranks 0..N-1), print each line they\n"
    "write as '[RANK] line' (stdout to stdout, stderr to stderr), and wait for\n"
    "all of them. If a VM is running it is used; otherwise a private VM is\n"
    "started for this job and halted after it.\n"
    "\n"
    "  -n, --np N        number of tasks (default 1)\n"
    "  --wdir DIR        the tasks' working directory (default: ours, or the\n"
    "                    host's wdir= from the hostfile)\n"
    "  --private         use a private VM even if one is running\n"
    "  --host HOST       start every task on this host (h1,h2: spread over those)\n"
    "  --map-by slot|host  spread over the VM's hosts: fill each host's slots, or one\n"
    "                    per host in turn\n"
    "  --per-host K      at most K tasks per host in each round\n"
    "  --bind-to WHAT    pin each task to one core (core), one NUMA node (numa),\n"
    "                    or nowhere (none); auto (the default, or $COHORT_BIND_TO)\n"
    "                    binds to cores while a host's tasks do not outnumber its\n"
    "                    cores. Tasks find theirs in $COHORT_BIND (\"core:3\");\n"
    "                    'cohort hosts -v' shows the topology\n"
    "  -x NAME[=VALUE]   set NAME in the tasks' environment (to our value if no\n"
    "                    VALUE); with a private VM the tasks inherit ours anyway\n"
    "\n"
    "PROGRAM is a path (relative ones start from the current directory) or a\n"
    "name looked up in PATH. The tasks run in the current directory and get our\n"
    "PATH, COHORT_LOG, COHORT_TRANSPORTS, COHORT_EAGER_LIMIT and COHORT_SPIN_US;\n"
    "the rest of their environment is the daemon's (see -x). On a host whose\n"
    "hostfile line sets wdir= or path=, those replace our directory and PATH\n"
    "(--wdir and -x PATH=... still win).\n"
    "\n"
    "Exit status: 0 when every task exited with 0; else the first non-zero exit\n"
    "status, or 128+N for a task killed by signal N; 127 (126) when PROGRAM is\n"
    "missing (not executable); 130/143 when interrupted by SIGINT/SIGTERM, after\n"
    "killing the tasks; 1 when the VM fails (no such host, VM halted).\n";

namespace {

std::string current_dir() {
  char buf[PATH_MAX];
  return ::getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

int digits(int v) {
  int d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

// The exit status for a spawn failure: the shell's 127 / 126 for a program
// that is missing / not runnable; 1 for anything else (no such host, the VM
// went away). The daemon says kBadProgram for both kinds of program trouble,
// with the system's error text, which tells them apart.
int spawn_failure_code(const Status& st) {
  if (st.code() == Errc::kPermissionDenied) return kExitCannotExecute;
  if (st.code() != Errc::kBadProgram && st.code() != Errc::kNotFound) return kExitFailure;
  const std::string m = st.message();
  for (int err : {EACCES, EISDIR, ENOEXEC, EPERM})
    if (m.find(std::strerror(err)) != std::string::npos) return kExitCannotExecute;
  return kExitNotFound;
}

// Report how the tasks ended; the exit status is the first failure to arrive.
int summarize(const Job& job) {
  int rc = kExitOk;
  for (const TaskEnd& e : job.ends()) {
    if (e.signal != 0) {
      std::fprintf(stderr, "cohort run: rank %d (tid %s) killed by signal %d (%s)\n", e.rank,
                   format_tid(e.tid).c_str(), e.signal, signal_name(e.signal).c_str());
      if (rc == kExitOk) rc = 128 + e.signal;
    } else if (e.exit_code != 0) {
      std::fprintf(stderr, "cohort run: rank %d (tid %s) exited with status %d\n", e.rank,
                   format_tid(e.tid).c_str(), e.exit_code);
      if (rc == kExitOk) rc = e.exit_code;
    }
  }
  return rc;
}

}  // namespace

int cmd_run(const Globals& globals, const std::vector<std::string>& args) {
  Globals g = globals;
  bool help = false, private_vm = false;
  std::string n_text = "1", host, bind_text;
  std::vector<std::string> exports;
  Parser p("cohort run");
  add_global_options(p, g, &help);
  p.option({"-n", "--np"}, &n_text);
  p.flag({"--private"}, &private_vm);
  p.option({"--host"}, &host);
  std::string map_by_text, per_host_text;
  p.option({"--map-by"}, &map_by_text);
  p.option({"--per-host"}, &per_host_text);
  p.option({"--bind-to"}, &bind_text);
  std::string wdir;
  p.option({"--wdir"}, &wdir);
  p.multi({"-x"}, &exports);
  auto rest = p.parse(args, /*stop_at_positional=*/true);
  if (!rest) return usage_error(rest.status().message(), kRunUsage);
  if (help) return show_usage(kRunUsage);
  if (rest->empty()) return usage_error("cohort run: which program? give PROGRAM", kRunUsage);
  auto n = parse_int(n_text, "cohort run -n", 1, 1 << 20);
  if (!n) return usage_error(n.status().message(), kRunUsage);

  std::optional<BindTo> bind_to = BindTo::kAuto;
  if (!bind_text.empty()) bind_to = parse_bind_to(bind_text);
  if (!bind_to)
    return usage_error("cohort run: --bind-to wants core, numa, none or auto, not '" + bind_text +
                           "'",
                       kRunUsage);

  JobSpec spec;
  spec.count = static_cast<int>(n.value());
  spec.bind_to = *bind_to;
  // Empty: ours, passed on as a default that a host's hostfile wdir= overrides.
  spec.cwd = wdir;
  spec.host = host;
  if (map_by_text == "slot")
    spec.map_by = MapBy::kSlot;
  else if (map_by_text == "host")
    spec.map_by = MapBy::kHost;
  else if (!map_by_text.empty())
    return usage_error("cohort run: --map-by is slot or host, not '" + map_by_text + "'", kRunUsage);
  if (!per_host_text.empty()) {
    spec.per_host = std::atoi(per_host_text.c_str());
    if (spec.per_host <= 0)
      return usage_error("cohort run: --per-host wants a positive count", kRunUsage);
  }
  spec.program = rest->front();
  // A relative path means the caller's directory, wherever the daemon runs.
  if (spec.program.find('/') != std::string::npos && spec.program[0] != '/')
    spec.program = current_dir() + "/" + spec.program;
  spec.args.assign(rest->begin() + 1, rest->end());
  for (const std::string& x : exports) {
    if (x.find('=') != std::string::npos) spec.env.push_back(x);
    else if (const char* v = std::getenv(x.c_str())) spec.env.push_back(x + "=" + v);
  }

  install_stop_handlers();
  std::unique_ptr<PrivateVm> vm;
  std::unique_ptr<Session> s;
  if (!private_vm) s = connect_tool(g);
  if (!s) {
    auto started = PrivateVm::start();
    if (!started) {
      std::fprintf(stderr, "cohort run: %s\n", started.status().message().c_str());
      return kExitFailure;
    }
    vm = std::move(started).value();
    s = std::make_unique<Session>(vm->session_options());
  }
  auto finish = [&](int rc) {
    if (vm) vm->stop(s.get());
    s.reset();
    return rc;
  };
  if (int sig = stop_signal()) return finish(128 + sig);

  const int width = digits(spec.count - 1);
  Job job(*s, [width](int rank, OutputStream stream, std::string_view line) {
    char prefix[32];
    if (rank >= 0) std::snprintf(prefix, sizeof prefix, "[%*d] ", width, rank);
    else std::snprintf(prefix, sizeof prefix, "[?] ");
    write_line(stream == OutputStream::kStderr ? 2 : 1, prefix, line);
  });
  try {
    Status st = job.start(spec);
    if (!st.is_ok()) {
      std::fprintf(stderr, "cohort run: %s\n", st.message().c_str());
      return finish(spawn_failure_code(st));
    }
    int sig = 0;
    job.wait(&sig);
    if (sig != 0) {
      std::fprintf(stderr, "cohort run: %s received; killing the job's tasks\n",
                   signal_name(sig).c_str());
      job.terminate(std::chrono::seconds(3));
      return finish(128 + sig);
    }
  } catch (const Error& e) {
    // The VM went away under the job (halted, daemon lost): say how the tasks
    // that did finish ended, then why the rest are unaccounted for.
    (void)summarize(job);
    std::fprintf(stderr, "cohort run: %s\n", e.what());
    return finish(kExitFailure);
  }
  return finish(summarize(job));
}

}  // namespace cohort::cli
