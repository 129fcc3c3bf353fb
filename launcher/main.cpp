// The `cohort` command: global options, then one subcommand (see commands.hpp).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <cohort/error.hpp>

#include "base/signals.hpp"
#include "launcher/cli_args.hpp"
#include "launcher/commands.hpp"

namespace cohort::cli {
namespace {

const Command kCommands[] = {
    {"start", "start a persistent VM on this host", kStartUsage, cmd_start},
    {"halt", "stop the VM: every task and every daemon", kHaltUsage, cmd_halt},
    {"hosts", "list the hosts of the VM", kHostsUsage, cmd_hosts},
    {"add", "start daemons on more hosts and add them to the VM", kAddUsage, cmd_add},
    {"remove", "remove hosts from the VM (their tasks killed or drained)", kRemoveUsage, cmd_remove},
    {"ps", "list the tasks running in the VM", kPsUsage, cmd_ps},
    {"kill", "send a signal to tasks", kKillUsage, cmd_kill},
    {"run", "run a parallel job (in the running VM, or a private one)", kRunUsage, cmd_run},
    {"bench", "measure cohort against Open MPI (pingpong)", kBenchUsage, cmd_bench},
};

std::string command_names() {
  std::string s;
  for (const Command& c : kCommands) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s;
}

void print_main_usage(std::FILE* to) {
  std::fprintf(to,
               "usage: cohort [--vm NAME] COMMAND [ARGS...]\n"
               "\n"
               "cohort runs message-passing jobs in a virtual machine of cohortd daemons.\n"
               "\n"
               "commands:\n");
  for (const Command& c : kCommands) std::fprintf(to, "  %-7s %s\n", c.name, c.summary);
  std::fprintf(to,
               "  %-7s %s\n"
               "\n"
               "global options:\n"
               "  --vm NAME   the VM to use (default: $COHORT_VM, else \"default\");\n"
               "              $COHORT_DIR, when set, names its runtime directory directly\n"
               "\n"
               "'cohort help COMMAND' or 'cohort COMMAND --help' shows a command's options.\n",
               "help", "show this text, or a command's usage");
}

const Command* find_command(const std::string& name) {
  for (const Command& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

int help(const std::vector<std::string>& args) {
  if (args.empty()) {
    print_main_usage(stdout);
    return 0;  // asked for: success
  }
  const Command* c = find_command(args[0]);
  if (!c) {
    std::fprintf(stderr, "cohort: no command '%s'; the commands are: %s\n", args[0].c_str(),
                 command_names().c_str());
    return kExitUsage;
  }
  std::fputs(c->usage, stdout);
  return 0;
}

}  // namespace

int show_usage(const char* usage) {
  std::fputs(usage, stdout);
  return 0;
}

int usage_error(const std::string& message, const char* usage) {
  if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
  std::fputs(usage, stderr);
  return kExitUsage;
}

void add_global_options(Parser& p, Globals& g, bool* help) {
  p.option({"--vm"}, &g.vm);
  p.flag({"-h", "--help"}, help);
}

}  // namespace cohort::cli

int main(int argc, char** argv) {
  using namespace cohort::cli;
  cohort::reset_foreign_handlers();  // base/signals.hpp: PSM took them at load
  std::vector<std::string> args(argv + 1, argv + argc);
  Globals g;
  // Global options come before the command name; stop at the first word.
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--vm") {
      if (i + 1 == args.size()) {
        std::fprintf(stderr, "cohort: option '--vm' needs a value\n");
        print_main_usage(stderr);
        return kExitUsage;
      }
      g.vm = args[++i];
    } else if (a.rfind("--vm=", 0) == 0) {
      g.vm = a.substr(5);
    } else if (a == "-h" || a == "--help") {
      print_main_usage(stdout);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "cohort: unknown option '%s'\n", a.c_str());
      print_main_usage(stderr);
      return kExitUsage;
    } else {
      break;
    }
  }
  if (i == args.size()) {
    print_main_usage(stderr);
    return kExitUsage;
  }
  std::string name = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (name == "help") return help(rest);
  const Command* c = find_command(name);
  if (!c) {
    std::fprintf(stderr, "cohort: no command '%s'; the commands are: %s (see 'cohort help')\n",
                 name.c_str(), command_names().c_str());
    return kExitUsage;
  }
  try {
    return c->run(g, rest);
  } catch (const cohort::Error& e) {
    // The library's messages already say what to do; add only who is speaking.
    std::fprintf(stderr, "cohort %s: %s\n", c->name, e.what());
    return kExitFailure;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cohort %s: %s\n", c->name, e.what());
    return kExitFailure;
  }
}
