#include "transport/ofi/ofi_fabric.hpp"

#include <rdma/fi_cm.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_tagged.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <cstring>
#include <string>
#include <vector>

#include "base/env.hpp"
#include "base/log.hpp"
#include "transport/ofi/ofi_address.hpp"
#include "transport/ofi/ofi_library.hpp"
#include "transport/ofi/ofi_tags.hpp"

namespace cohort::transport::ofi {

namespace {

constexpr const char* kLog = "transport.ofi";
constexpr std::uint32_t kApiVersion = FI_VERSION(1, 9);

// Loaded by the first Fabric::open() (which fails if it cannot be): every
// other use comes after one.
const FabricLibrary& lib() { return **fabric_library(); }

struct InfoDeleter {
  void operator()(fi_info* i) const noexcept { lib().freeinfo(i); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

InfoPtr make_hints(std::uint64_t caps, std::uint64_t order, const char* prov_name) {
  InfoPtr h(lib().dupinfo(nullptr));
  if (!h) return h;
  h->ep_attr->type = FI_EP_RDM;
  h->caps = caps;
  // Our operation contexts begin with a fi_context2, and keep their iovec
  // arrays until completion, so these modes cost nothing.
  h->mode = FI_CONTEXT | FI_CONTEXT2 | FI_ASYNC_IOV;
  h->domain_attr->mr_mode =
      FI_MR_LOCAL | FI_MR_ENDPOINT | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
  h->domain_attr->threading = FI_THREAD_DOMAIN;
  h->domain_attr->resource_mgmt = FI_RM_ENABLED;
  h->tx_attr->msg_order = order;
  h->rx_attr->msg_order = order;
  if (prov_name != nullptr) h->fabric_attr->prov_name = ::strdup(prov_name);
  return h;
}

/// fi_getinfo for RDM + tagged. FI_SOURCE and FI_ORDER_SAS are asked for
/// where the provider has them, not required: identity comes from our tags
/// and order from our sequence numbers (ofi_tags.hpp); SAS only means fewer
/// frames come early.
int get_info(const char* prov_name, const char* node, std::uint64_t flags, fi_info** out) {
  int ret = -FI_ENODATA;
  for (std::uint64_t caps : {FI_TAGGED | FI_SOURCE, FI_TAGGED}) {
    for (std::uint64_t order : {std::uint64_t{FI_ORDER_SAS}, std::uint64_t{FI_ORDER_NONE}}) {
      InfoPtr hints = make_hints(caps, order, prov_name);
      if (!hints) return -FI_ENOMEM;
      ret = lib().getinfo(kApiVersion, node, nullptr, flags, hints.get(), out);
      if (ret == 0) return 0;
    }
  }
  return ret;
}

bool native_core(std::string_view prov_name) {
  std::string_view core = prov_name.substr(0, prov_name.find(';'));
  for (std::string_view emulated : {"tcp", "udp", "sockets", "net", "shm", "sm2"})
    if (core == emulated) return false;
  return true;
}

bool socket_address(std::uint32_t format) {
  return format == FI_SOCKADDR || format == FI_SOCKADDR_IN || format == FI_SOCKADDR_IN6;
}

unsigned tag_bits(std::uint64_t mem_tag_format) {
  // Providers write the usable tag bits as a pattern ("0xaaaa..." for all 64);
  // the highest set bit says how many there are.
  if (mem_tag_format == 0) return 64;  // unspecified: the whole tag
  unsigned bits = 0;
  while (bits < 64 && (mem_tag_format >> bits) != 0) ++bits;
  return bits;
}

Result<InfoPtr> choose(const std::string& bind_host) {
  auto requested = env::get(kProviderEnv);
  if (requested && requested->empty()) requested.reset();
  fi_info* list = nullptr;
  int ret = get_info(requested ? requested->c_str() : nullptr, nullptr, 0, &list);
  InfoPtr all(list);
  if (ret != 0 || !all) {
    std::string offered = available_providers();
    if (requested)
      return Status(Errc::kInvalidArgument,
                    std::string(kProviderEnv) + "='" + *requested +
                        "': libfabric has no such provider offering reliable datagram endpoints "
                        "with tagged messages here (" + fi_error("fi_getinfo", ret) +
                        "); available: " + (offered.empty() ? "none" : offered));
    return Status(Errc::kUnsupported,
                  "no libfabric provider offers reliable datagram endpoints with tagged messages "
                  "here (" + fi_error("fi_getinfo", ret) + ")" +
                      (std::getenv("FI_PROVIDER") ? "; FI_PROVIDER may exclude them" : ""));
  }
  fi_info* pick = all.get();
  if (!requested && std::getenv("FI_PROVIDER") == nullptr) {
    fi_info* native = nullptr;
    for (fi_info* i = all.get(); i && !native; i = i->next)
      if (native_core(i->fabric_attr->prov_name)) native = i;
    if (native != nullptr) {
      pick = native;
    } else {
      static std::atomic<bool> said{false};
      if (!said.exchange(true)) {
        COHORT_LOG_INFO(kLog) << "no native fabric provider; using " << pick->fabric_attr->prov_name
                              << " (set " << kProviderEnv << " to choose)";
      }
    }
  }
  std::string prov = pick->fabric_attr->prov_name;
  if (socket_address(pick->addr_format) && !bind_host.empty()) {
    // Bind to the host address, as the tcp transport does: the provider
    // would otherwise pick an interface (and fabric) of its own.
    fi_info* bound = nullptr;
    ret = get_info(prov.c_str(), bind_host.c_str(), FI_SOURCE, &bound);
    if (ret != 0 || bound == nullptr)
      return Status(Errc::kIoError, "ofi provider " + prov + " cannot bind to '" + bind_host +
                                        "': " + fi_error("fi_getinfo", ret));
    return InfoPtr(bound);
  }
  return InfoPtr(lib().dupinfo(pick));
}

}  // namespace

std::string fi_error(std::string_view call, long ret) {
  long err = ret < 0 ? -ret : ret;
  return std::string(call) + ": " + fabric_strerror(static_cast<int>(err)) + " (" +
         std::to_string(ret) + ")";
}

bool remove_dead_region(std::string_view address, std::string_view this_host) {
  auto a = parse_address(address);
  if (!a.is_ok() || a->provider != "shm" || a->host != this_host) return false;
  const auto pid = static_cast<pid_t>(a->pid);
  if (pid <= 0 || pid == ::getpid()) return false;
  if (::kill(pid, 0) == 0 || errno != ESRCH) {
    // Alive, or a zombie nobody has reaped yet: its state letter says which.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z')
      return false;
  }
  // fi_getname gives "fi_shm://<pid>:<uid>:<index>" (NUL included); the region
  // is that name without its scheme.
  std::string name(a->name.c_str());
  constexpr std::string_view kScheme = "fi_shm://";
  if (name.compare(0, kScheme.size(), kScheme) == 0) name.erase(0, kScheme.size());
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') return false;
  if (name.compare(0, std::to_string(pid).size() + 1, std::to_string(pid) + ":") != 0)
    return false;  // not named after its process: not ours to judge
  if (::unlink(("/dev/shm/" + name).c_str()) != 0) return false;
  COHORT_LOG_DEBUG(kLog) << "removed /dev/shm/" << name << " of dead process " << pid;
  return true;
}

std::string available_providers() {
  if (!fabric_library().is_ok()) return {};
  fi_info* list = nullptr;
  if (get_info(nullptr, nullptr, 0, &list) != 0) return {};
  InfoPtr all(list);
  std::vector<std::string> names;
  for (fi_info* i = all.get(); i; i = i->next) {
    std::string n = i->fabric_attr->prov_name;
    bool seen = false;
    for (auto& s : names) seen |= s == n;
    if (!seen) names.push_back(n);
  }
  std::string out;
  for (auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

Result<std::unique_ptr<Fabric>> Fabric::open(const std::string& bind_host) {
  COHORT_RETURN_IF_ERROR(fabric_library().status());
  COHORT_ASSIGN_OR_RETURN(InfoPtr info, choose(bind_host));
  std::unique_ptr<Fabric> f(new Fabric());
  f->info_ = info.release();
  f->provider_ = f->info_->fabric_attr->prov_name;
  f->fabric_name_ = f->info_->fabric_attr->name ? f->info_->fabric_attr->name : "";
  if (unsigned bits = tag_bits(f->info_->ep_attr->mem_tag_format); bits < kTagBits)
    return Status(Errc::kUnsupported, "ofi provider " + f->provider_ + " offers " +
                                          std::to_string(bits) + " tag bits; cohort needs " +
                                          std::to_string(kTagBits));
  f->inject_size_ = f->info_->tx_attr->inject_size;
  f->iov_limit_ = std::max<std::size_t>(1, f->info_->tx_attr->iov_limit);
  f->mr_mode_ = f->info_->domain_attr->mr_mode;
  f->has_source_ = (f->info_->caps & FI_SOURCE) != 0;
  if (Status s = f->open_objects(); !s.is_ok())
    return s.with_context("ofi provider " + f->provider_);
  return f;
}

Status Fabric::open_objects() {
  int ret = lib().fabric(info_->fabric_attr, &fabric_, nullptr);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_fabric", ret));
  ret = fi_domain(fabric_, info_, &domain_, nullptr);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_domain", ret));
  fi_av_attr av_attr{};
  av_attr.type = info_->domain_attr->av_type;
  ret = fi_av_open(domain_, &av_attr, &av_, nullptr);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_av_open", ret));

  fi_cq_attr cq_attr{};
  cq_attr.format = FI_CQ_FORMAT_TAGGED;
  cq_attr.size = info_->tx_attr->size + info_->rx_attr->size;
  // No wait object unless asked for: with one, rxm writes an eventfd on every
  // completion and reads it back (two system calls per message, 15-25% of a
  // small message's latency here). Without, a task that waits for long naps
  // in 1 ms steps instead of sleeping on the queue (lib's wait()).
  auto want_fd = env::get(kWaitFdEnv);
  cq_attr.wait_obj = want_fd && *want_fd == "1" ? FI_WAIT_FD : FI_WAIT_NONE;
  ret = fi_cq_open(domain_, &cq_attr, &cq_, nullptr);
  if (ret != 0 && cq_attr.wait_obj == FI_WAIT_FD) {
    // shm, for one, has no wait objects: poll only (caps().wait_fd = false).
    COHORT_LOG_DEBUG(kLog) << provider_ << ": no FI_WAIT_FD completion queue ("
                           << fi_error("fi_cq_open", ret) << "); polling only";
    cq_attr.wait_obj = FI_WAIT_NONE;
    ret = fi_cq_open(domain_, &cq_attr, &cq_, nullptr);
  }
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_cq_open", ret));
  if (cq_attr.wait_obj == FI_WAIT_FD) {
    int fd = -1;
    ret = fi_control(&cq_->fid, FI_GETWAIT, &fd);
    if (ret == 0) wait_fd_ = fd;
  }

  ret = fi_endpoint(domain_, info_, &ep_, nullptr);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_endpoint", ret));
  ret = fi_ep_bind(ep_, &av_->fid, 0);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_ep_bind(av)", ret));
  ret = fi_ep_bind(ep_, &cq_->fid, FI_TRANSMIT | FI_RECV);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_ep_bind(cq)", ret));
  ret = fi_enable(ep_);
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_enable", ret));

  std::string name(256, '\0');
  std::size_t len = name.size();
  ret = fi_getname(&ep_->fid, name.data(), &len);
  if (ret == -FI_ETOOSMALL) {
    name.resize(len);
    ret = fi_getname(&ep_->fid, name.data(), &len);
  }
  if (ret != 0) return Status(Errc::kIoError, fi_error("fi_getname", ret));
  name.resize(len);
  name_ = std::move(name);
  return Status();
}

namespace {
void close_fid(fid* f, const char* what) {
  if (f == nullptr) return;
  int ret = fi_close(f);
  if (ret == -FI_EBUSY) {
    // libfabric 1.17's rxm keeps its domain busy after an endpoint closed
    // with a rendezvous in flight (a peer died mid-transfer): the domain and
    // fabric are leaked, nothing else goes wrong. Not worth a warning each time.
    COHORT_LOG_DEBUG(kLog) << fi_error(what, ret) << " (left open)";
  } else if (ret != 0) {
    COHORT_LOG_WARN(kLog) << fi_error(what, ret);
  }
}
}  // namespace

void Fabric::close_endpoint() noexcept {
  close_fid(ep_ ? &ep_->fid : nullptr, "fi_close(ep)");
  ep_ = nullptr;
}

Fabric::~Fabric() {
  // Reverse order of creation; each close is checked only in the log.
  auto close = close_fid;
  close_endpoint();
  close(cq_ ? &cq_->fid : nullptr, "fi_close(cq)");
  close(av_ ? &av_->fid : nullptr, "fi_close(av)");
  close(domain_ ? &domain_->fid : nullptr, "fi_close(domain)");
  close(fabric_ ? &fabric_->fid : nullptr, "fi_close(fabric)");
  if (info_ != nullptr) lib().freeinfo(info_);
}

}  // namespace cohort::transport::ofi
