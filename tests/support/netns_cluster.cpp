#include "tests/support/netns_cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fd.hpp"

namespace cohort::testing {
namespace {

namespace fs = std::filesystem;

// Run an administrative command to completion; its stderr becomes the error.
Status cmd(const std::vector<std::string>& argv) {
  auto r = run_program(argv, "", std::chrono::seconds(30));
  if (!r.is_ok()) return r.take_status();
  if (r->exit_code != 0) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    return Status(Errc::kInternal, line + "failed (exit " + std::to_string(r->exit_code) +
                                       "): " + r->err + r->out);
  }
  return Status();
}

Result<std::string> cmd_output(const std::vector<std::string>& argv) {
  auto r = run_program(argv, "", std::chrono::seconds(30));
  if (!r.is_ok()) return r.take_status();
  if (r->exit_code != 0)
    return Status(Errc::kInternal, argv[0] + " failed: " + r->err);
  return r->out;
}

bool have(const char* tool) {
  auto r = run_program({"sh", "-c", std::string("command -v ") + tool}, "", std::chrono::seconds(10));
  return r.is_ok() && r->exit_code == 0;
}

// Each cluster of this process gets its own prefix; each process its own subnet
// (bridges are separate L2 domains anyway; the subnet only names the guard route).
std::atomic<int> g_clusters{0};

}  // namespace

std::string netns_exec_script() {
  if (const char* d = std::getenv("COHORT_SOURCE_DIR")) return std::string(d) + "/tests/netns/netns_exec.sh";
  return std::string(COHORT_SOURCE_DIR) + "/tests/netns/netns_exec.sh";
}

Result<std::unique_ptr<NetnsCluster>> NetnsCluster::create(int hosts) {
  if (::geteuid() != 0)
    return Status(Errc::kUnsupported, "emulated hosts need root (network namespaces); run as root");
  for (const char* tool : {"ip", "nsenter", "unshare", "mount"})
    if (!have(tool))
      return Status(Errc::kUnsupported, std::string("'") + tool +
                                            "' is not installed (apt-get install iproute2 util-linux)");
  if (hosts < 1 || hosts > 200) return Status(Errc::kInvalidArgument, "1..200 hosts");

  std::unique_ptr<NetnsCluster> c(new NetnsCluster);
  int k = g_clusters.fetch_add(1);
  c->prefix_ = "cht" + std::to_string(::getpid()) + "x" + std::to_string(k);
  c->subnet_ = "10.213." + std::to_string(20 + (::getpid() * 7 + k) % 200);
  c->run_dir_ = "/run/" + c->prefix_;
  std::error_code ec;
  fs::create_directories(c->run_dir_, ec);
  if (ec) return Status(Errc::kUnsupported, "cannot create " + c->run_dir_ + ": " + ec.message());
  // The root /dev/shm, visible under the anchors: a command started from
  // inside a host (whose /dev/shm is its own) still finds the other hosts'
  // directories there (netns_exec.sh).
  std::string devshm = c->run_dir_ + "/devshm";
  if (::mkdir(devshm.c_str(), 0700) == 0 &&
      ::mount("/dev/shm", devshm.c_str(), nullptr, MS_BIND, nullptr) == 0)
    c->devshm_bound_ = true;

  // A namespace we cannot make (an unprivileged container) is "unsupported here".
  Status s = cmd({"ip", "netns", "add", c->bridge_ns()});
  if (!s.is_ok()) return Status(Errc::kUnsupported, "cannot create network namespaces: " + s.message());
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", c->bridge_ns(), "link", "set", "lo", "up"}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", c->bridge_ns(), "link", "add", "br0", "type", "bridge"}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", c->bridge_ns(), "link", "set", "br0", "up"}));
  // The subnet is not local in the root namespace: without this route a stray
  // connect from there would go to the default gateway, off this machine.
  COHORT_RETURN_IF_ERROR(cmd({"ip", "route", "replace", "unreachable", c->subnet_ + ".0/24"}));
  c->route_added_ = true;
  for (int i = 1; i <= hosts; ++i) COHORT_RETURN_IF_ERROR(c->add_host(i));
  return c;
}

NetnsCluster::~NetnsCluster() {
  for (int i : std::vector<int>(hosts_)) {
    Status s = remove_host(i);
    if (!s.is_ok()) std::fprintf(stderr, "netns cluster teardown: %s\n", s.to_string().c_str());
  }
  (void)cmd({"ip", "netns", "del", bridge_ns()});
  if (route_added_) (void)cmd({"ip", "route", "del", "unreachable", subnet_ + ".0/24"});
  std::error_code ec;
  std::string devshm = run_dir_ + "/devshm";
  if (devshm_bound_ && ::umount2(devshm.c_str(), MNT_DETACH) != 0) {
    // Never remove_all through a live bind of /dev/shm: leave the directory.
    std::fprintf(stderr, "netns cluster teardown: umount %s: %s\n", devshm.c_str(),
                 std::strerror(errno));
    return;
  }
  fs::remove_all(run_dir_, ec);
}

std::string NetnsCluster::address(int i) const { return subnet_ + "." + std::to_string(10 + i); }

std::vector<int> NetnsCluster::hosts() const { return hosts_; }

std::string NetnsCluster::anchor(int i, const char* kind) const {
  return run_dir_ + "/" + host_name(i) + "." + kind;
}

std::vector<std::string> NetnsCluster::exec_prefix(int i) const {
  return {netns_exec_script(), prefix_, host_name(i)};
}

std::string NetnsCluster::agent_template() const {
  return netns_exec_script() + " " + prefix_ + " {host}";
}

Status NetnsCluster::write_hosts_files() const {
  std::ostringstream all;
  all << "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";
  for (int j : hosts_) all << address(j) << ' ' << host_name(j) << '\n';
  for (int i : hosts_) {
    std::ofstream f(anchor(i, "hosts"), std::ios::trunc);  // rewritten in place: bind mounts see it
    f << all.str();
    if (!f) return Status(Errc::kIoError, "cannot write " + anchor(i, "hosts"));
  }
  return Status();
}

Status NetnsCluster::add_host(int i) {
  if (std::find(hosts_.begin(), hosts_.end(), i) != hosts_.end())
    return Status(Errc::kAlreadyExists, host_name(i) + " exists");
  std::string n = ns(i), veth = "v" + std::to_string(i);
  COHORT_RETURN_IF_ERROR(cmd({"ip", "netns", "add", n}));
  hosts_.push_back(i);
  std::sort(hosts_.begin(), hosts_.end());
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", bridge_ns(), "link", "add", veth, "type", "veth", "peer",
                              "name", "eth0", "netns", n}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", bridge_ns(), "link", "set", veth, "master", "br0", "up"}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", n, "link", "set", "lo", "up"}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", n, "addr", "add", address(i) + "/24", "dev", "eth0"}));
  COHORT_RETURN_IF_ERROR(cmd({"ip", "-n", n, "link", "set", "eth0", "up"}));

  std::string shm = "/dev/shm/" + n;
  if (::mkdir(shm.c_str(), 01777) != 0 && errno != EEXIST)
    return errno_status(Errc::kIoError, "mkdir " + shm, errno);
  ::chmod(shm.c_str(), 01777);
  for (const char* kind : {"uts", "ipc"}) {
    UniqueFd f(::open(anchor(i, kind).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    if (!f) return errno_status(Errc::kIoError, "create " + anchor(i, kind), errno);
  }
  // unshare binds the new namespaces onto the anchor files, so they outlive it.
  COHORT_RETURN_IF_ERROR(cmd({"unshare", "--uts=" + anchor(i, "uts"), "--ipc=" + anchor(i, "ipc"),
                              "hostname", host_name(i)}));
  return write_hosts_files();
}

Status NetnsCluster::kill_host(int i) {
  auto pids = cmd_output({"ip", "netns", "pids", ns(i)});
  if (!pids.is_ok()) return pids.take_status();
  std::istringstream in(*pids);
  pid_t pid;
  while (in >> pid)
    if (pid > 1 && pid != ::getpid()) ::kill(pid, SIGKILL);
  return Status();
}

Status NetnsCluster::remove_host(int i) {
  auto it = std::find(hosts_.begin(), hosts_.end(), i);
  if (it == hosts_.end()) return Status(Errc::kNoSuchHost, host_name(i) + " does not exist");
  Status killed = kill_host(i);
  hosts_.erase(it);
  Status del = cmd({"ip", "netns", "del", ns(i)});  // also destroys the veth pair
  for (const char* kind : {"uts", "ipc"}) {
    ::umount2(anchor(i, kind).c_str(), MNT_DETACH);
    ::unlink(anchor(i, kind).c_str());
  }
  ::unlink(anchor(i, "hosts").c_str());
  std::error_code ec;
  fs::remove_all("/dev/shm/" + ns(i), ec);
  COHORT_RETURN_IF_ERROR(killed);
  COHORT_RETURN_IF_ERROR(del);
  return write_hosts_files();
}

Status NetnsCluster::fail_link(int i) {
  return cmd({"ip", "-n", bridge_ns(), "link", "set", "v" + std::to_string(i), "down"});
}

Status NetnsCluster::recover_link(int i) {
  return cmd({"ip", "-n", bridge_ns(), "link", "set", "v" + std::to_string(i), "up"});
}

Status NetnsCluster::ensure_chaos_table() {
  if (chaos_) return Status();
  if (!have("nft")) return Status(Errc::kUnsupported, "nft is not installed (apt-get install nftables)");
  std::string rules = run_dir_ + "/chaos.nft";
  {
    std::ofstream f(rules, std::ios::trunc);
    f << "table bridge cohort_chaos {\n"
         "  chain chaos { type filter hook forward priority 0; policy accept; }\n"
         "}\n";
  }
  COHORT_RETURN_IF_ERROR(cmd({"ip", "netns", "exec", bridge_ns(), "nft", "-f", rules}));
  chaos_ = true;
  return Status();
}

Status NetnsCluster::partition(int a, int b) {
  COHORT_RETURN_IF_ERROR(ensure_chaos_table());
  std::string va = "v" + std::to_string(a), vb = "v" + std::to_string(b);
  for (auto [from, to] : {std::pair{va, vb}, std::pair{vb, va}})
    COHORT_RETURN_IF_ERROR(cmd({"ip", "netns", "exec", bridge_ns(), "nft", "add", "rule", "bridge",
                                "cohort_chaos", "chaos", "iifname", from, "oifname", to, "drop"}));
  return Status();
}

Status NetnsCluster::loss(int i, int percent) {
  if (percent < 0 || percent > 100) return Status(Errc::kInvalidArgument, "loss percent 0..100");
  COHORT_RETURN_IF_ERROR(ensure_chaos_table());
  std::string v = "v" + std::to_string(i), pct = std::to_string(percent);
  for (const char* dir : {"iifname", "oifname"})
    COHORT_RETURN_IF_ERROR(cmd({"ip", "netns", "exec", bridge_ns(), "nft", "add", "rule", "bridge",
                                "cohort_chaos", "chaos", dir, v, "numgen", "random", "mod", "100",
                                "<", pct, "drop"}));
  return Status();
}

Status NetnsCluster::heal() {
  if (!chaos_) return Status();
  COHORT_RETURN_IF_ERROR(
      cmd({"ip", "netns", "exec", bridge_ns(), "nft", "delete", "table", "bridge", "cohort_chaos"}));
  chaos_ = false;
  return Status();
}

Result<ProgramResult> NetnsCluster::run(int i, const std::vector<std::string>& argv,
                                        std::chrono::milliseconds deadline) const {
  std::vector<std::string> full = exec_prefix(i);
  full.insert(full.end(), argv.begin(), argv.end());
  return run_program(full, "", deadline);
}

Result<pid_t> NetnsCluster::spawn(int i, const std::vector<std::string>& argv,
                                  const std::string& log) const {
  std::vector<std::string> full = exec_prefix(i);
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> cargv;
  for (auto& a : full) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return errno_status(Errc::kIoError, "fork", errno);
  if (pid == 0) {
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execvp(cargv[0], cargv.data());
    std::perror("exec netns_exec.sh");
    ::_exit(127);
  }
  return pid;
}

}  // namespace cohort::testing
