#include "transport/ofi/ofi_memory.hpp"

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>

#include "base/env.hpp"
#include "base/log.hpp"
#include "transport/ofi/ofi_fabric.hpp"

namespace cohort::transport::ofi {

Registration& Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    reset();
    mr_ = o.mr_;
    o.mr_ = nullptr;
  }
  return *this;
}

void* Registration::desc() const noexcept {
  return mr_ != nullptr ? fi_mr_desc(mr_) : nullptr;
}

void Registration::reset() noexcept {
  if (mr_ == nullptr) return;
  int ret = fi_close(&mr_->fid);
  if (ret != 0) {
    COHORT_LOG_WARN("transport.ofi") << fi_error("fi_close(mr)", ret);
  }
  mr_ = nullptr;
}

Memory::Memory(const Fabric& fabric) : fabric_(fabric) {
  auto forced = env::get(kRegisterEnv);
  needed_ = (fabric.mr_mode() & FI_MR_LOCAL) != 0 || (forced && *forced == "1");
  bind_to_endpoint_ = (fabric.mr_mode() & FI_MR_ENDPOINT) != 0;
  provider_keys_ = (fabric.mr_mode() & FI_MR_PROV_KEY) != 0;
}

Result<Registration> Memory::register_local(const void* data, std::size_t size) {
  fid_mr* mr = nullptr;
  // Without FI_MR_PROV_KEY the key is ours to choose and must be unique in the domain.
  std::uint64_t key = provider_keys_ ? 0 : next_key_++;
  int ret = fi_mr_reg(fabric_.domain(), data, size, FI_SEND | FI_RECV, 0, key, 0, &mr, nullptr);
  if (ret != 0)
    return Status(Errc::kIoError, fi_error("fi_mr_reg of " + std::to_string(size) + " bytes", ret));
  Registration reg(mr);
  if (bind_to_endpoint_) {
    ret = fi_mr_bind(mr, &fabric_.ep()->fid, 0);
    if (ret == 0) ret = fi_mr_enable(mr);
    if (ret != 0) return Status(Errc::kIoError, fi_error("fi_mr_bind/fi_mr_enable", ret));
  }
  return reg;
}

Status Memory::register_iov(std::span<const iovec> iov, std::vector<Registration>& regs,
                            void** descs) {
  for (std::size_t i = 0; i < iov.size(); ++i) {
    descs[i] = nullptr;
    if (!needed_ || iov[i].iov_len == 0) continue;
    COHORT_ASSIGN_OR_RETURN(Registration r, register_local(iov[i].iov_base, iov[i].iov_len));
    descs[i] = r.desc();
    regs.push_back(std::move(r));
  }
  return Status();
}

}  // namespace cohort::transport::ofi
