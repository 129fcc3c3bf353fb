#include "transport/shm/shm_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "transport/base/options.hpp"

namespace cohort::transport::shm {

namespace {

constexpr std::uint64_t kMagic = 0x31304d4853484f43;  // "COHSHM01"
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHelloOffset = 512;
constexpr std::size_t kHeaderRegion = 8192;  // header, then the hello (<= kMaxHello)
constexpr std::size_t kMaxRing = std::size_t{1} << 30;
static_assert(kHelloOffset + kMaxHello <= kHeaderRegion);
static_assert(sizeof(SideBlock) <= kPage);

// The header as it sits at offset 0. Written once by the creator before the
// descriptor is handed over; the acceptor copies it out once.
struct Header {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t hello_size;
  std::uint64_t total_size;
  std::uint64_t token;
  std::uint64_t side_offset[2];
  std::uint64_t ring_offset[2];
  std::uint64_t ring_capacity[2];
  std::uint64_t slot_offset[2];
  std::uint64_t eager_limit[2];
  std::uint32_t slot_size;
  std::uint32_t slot_count;
};
static_assert(sizeof(Header) <= kHelloOffset);

Layout plan(std::uint64_t token, const std::size_t (&eager_limit)[2], std::size_t hello_size) {
  Layout l;
  l.token = token;
  l.hello_size = static_cast<std::uint32_t>(hello_size);
  std::size_t at = kHeaderRegion;
  for (int d = 0; d < 2; ++d) {
    l.side_offset[d] = at;
    at += kPage;
  }
  for (int d = 0; d < 2; ++d) {
    l.eager_limit[d] = eager_limit[d];
    l.ring_capacity[d] = ring_capacity_for(eager_limit[d]);
    l.ring_offset[d] = at;
    at += l.ring_capacity[d];
  }
  for (int d = 0; d < 2; ++d) {
    l.slot_offset[d] = at;
    at += kSlotCount * kChunkSize;
  }
  l.total_size = at;
  return l;
}

// A peer's header is believed only if it describes exactly what plan() would
// have made of its own limits: regions in order, inside the mapping, no overlap.
Status check(const Header& h, std::uint64_t file_size, Layout& out) {
  auto bad = [](const std::string& why) {
    return Status(Errc::kProtocolError, "shm segment from peer rejected: " + why);
  };
  if (h.magic != kMagic) return bad("not a cohort shm segment");
  if (h.version != kVersion)
    return bad("version " + std::to_string(h.version) + ", this build speaks " +
               std::to_string(kVersion) + " (mixing cohort versions on one host?)");
  if (h.total_size != file_size) return bad("size field disagrees with the file");
  if (h.hello_size > kMaxHello) return bad("hello too long");
  if (h.slot_size != kChunkSize || h.slot_count != kSlotCount) return bad("unknown slot geometry");
  std::size_t limits[2];
  for (int d = 0; d < 2; ++d) {
    if (h.eager_limit[d] == 0 || h.eager_limit[d] > kMaxEagerLimit) return bad("bad eager limit");
    limits[d] = static_cast<std::size_t>(h.eager_limit[d]);
  }
  Layout expect = plan(h.token, limits, h.hello_size);
  for (int d = 0; d < 2; ++d) {
    if (h.side_offset[d] != expect.side_offset[d] || h.ring_offset[d] != expect.ring_offset[d] ||
        h.ring_capacity[d] != expect.ring_capacity[d] || h.slot_offset[d] != expect.slot_offset[d])
      return bad("regions are not where this version puts them");
  }
  if (expect.total_size != file_size) return bad("regions do not fill the segment");
  out = expect;
  return Status();
}

std::atomic<unsigned> g_segments{0};

// Page faults belong to connect(), not to the first messages: fault in the
// control pages and the start of each ring now. Not the slots (only large
// payloads use them) nor the rest of a very large ring. Best effort: an old
// kernel without MADV_POPULATE_WRITE just faults later.
void prefault(std::byte* base, const Layout& l) {
#ifdef MADV_POPULATE_WRITE
  constexpr std::size_t kRingPrefault = 1 << 20;
  (void)::madvise(base, l.ring_offset[0], MADV_POPULATE_WRITE);
  for (int d = 0; d < 2; ++d)
    (void)::madvise(base + l.ring_offset[d], std::min<std::size_t>(l.ring_capacity[d], kRingPrefault),
                    MADV_POPULATE_WRITE);
#else
  (void)base;
  (void)l;
#endif
}

}  // namespace

std::size_t ring_capacity_for(std::size_t eager_limit) {
  // Room for four of the largest eager frames, so that a sender rarely waits
  // for one to be read, and at least 256 KiB for bursts of small ones; for
  // eager limits above 1 MiB (a user's choice) two frames, to bound memory.
  std::size_t frame = eager_limit + kMaxHeader + 2 * kLine;
  std::size_t frames = frame <= (std::size_t{1} << 20) ? 4 : 2;
  std::size_t want = std::max<std::size_t>(frames * frame + kLine, 256 * 1024);
  return std::min(std::bit_ceil(want), kMaxRing);
}

Segment::Segment(Segment&& o) noexcept
    : base_(std::exchange(o.base_, nullptr)), layout_(o.layout_) {}

Segment& Segment::operator=(Segment&& o) noexcept {
  if (this != &o) {
    unmap();
    base_ = std::exchange(o.base_, nullptr);
    layout_ = o.layout_;
  }
  return *this;
}

Segment::~Segment() {
  unmap();
}

void Segment::unmap() noexcept {
  if (base_ != nullptr) ::munmap(base_, layout_.total_size);
  base_ = nullptr;
}

std::span<const std::byte> Segment::hello() const noexcept {
  return {base_ + kHelloOffset, layout_.hello_size};
}

Result<Segment> Segment::create(std::uint64_t token, const std::size_t (&eager_limit)[2],
                                std::span<const std::byte> hello, UniqueFd& fd) {
  Layout l = plan(token, eager_limit, hello.size());
  // The name shows in /proc/<pid>/maps ("/memfd:cohort-shm-<pid>-<n> (deleted)")
  // so that a segment can be traced to its creator; no file is ever made.
  std::string name = "cohort-shm-" + std::to_string(::getpid()) + "-" +
                     std::to_string(g_segments.fetch_add(1, std::memory_order_relaxed));
  UniqueFd f(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!f) return errno_status(Errc::kIoError, "memfd_create(" + name + ")", errno);
  if (::ftruncate(f.get(), static_cast<off_t>(l.total_size)) != 0)
    return errno_status(Errc::kIoError, "ftruncate(" + name + ")", errno);
  if (::fcntl(f.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
    return errno_status(Errc::kIoError, "sealing " + name, errno);
  void* p = ::mmap(nullptr, l.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, f.get(), 0);
  if (p == MAP_FAILED) return errno_status(Errc::kOutOfMemory, "mmap(" + name + ")", errno);
  Segment s;
  s.base_ = static_cast<std::byte*>(p);
  s.layout_ = l;
  Header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.hello_size = l.hello_size;
  h.total_size = l.total_size;
  h.token = token;
  for (int d = 0; d < 2; ++d) {
    h.side_offset[d] = l.side_offset[d];
    h.ring_offset[d] = l.ring_offset[d];
    h.ring_capacity[d] = l.ring_capacity[d];
    h.slot_offset[d] = l.slot_offset[d];
    h.eager_limit[d] = l.eager_limit[d];
  }
  h.slot_size = kChunkSize;
  h.slot_count = kSlotCount;
  prefault(s.base_, l);
  std::memcpy(s.base_, &h, sizeof h);
  if (!hello.empty()) std::memcpy(s.base_ + kHelloOffset, hello.data(), hello.size());
  fd = std::move(f);
  return s;
}

Result<Segment> Segment::adopt(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(Errc::kProtocolError, "fstat(segment)", errno);
  if (!S_ISREG(st.st_mode) || st.st_size < static_cast<off_t>(kHeaderRegion + 2 * kPage))
    return Status(Errc::kProtocolError, "shm segment from peer rejected: not a segment");
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0)
    return Status(Errc::kProtocolError,
                  "shm segment from peer rejected: it is not sealed against shrinking");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return errno_status(Errc::kOutOfMemory, "mmap(peer segment)", errno);
  Segment s;
  s.base_ = static_cast<std::byte*>(p);
  s.layout_.total_size = size;  // so that an early return unmaps the right length
  Header h;
  std::memcpy(&h, s.base_, sizeof h);  // one copy: the peer may rewrite the original
  COHORT_RETURN_IF_ERROR(check(h, size, s.layout_));
  prefault(s.base_, s.layout_);
  return s;
}

}  // namespace cohort::transport::shm
