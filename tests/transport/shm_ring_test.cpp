// The shm transport's pieces on their own, in one process: the frame ring
// (wrap-around, back-pressure, stale bytes that look like stamps, bad
// records), the doorbell protocol, addresses and reaches(), and ring
// back-pressure seen through two endpoints.
#include <poll.h>
#include <sys/eventfd.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tests/transport/conformance_harness.hpp"
#include "transport/shm/shm_address.hpp"
#include "transport/shm/shm_doorbell.hpp"
#include "transport/shm/shm_ring.hpp"
#include "transport/shm/shm_transport.hpp"

namespace cohort::transport::shm {
namespace {

// A ring in ordinary memory: the format does not care where it lives.
struct TestRing {
  explicit TestRing(std::size_t capacity)
      : memory(new (std::align_val_t{kLine}) std::byte[capacity]()), capacity(capacity) {
    writer.attach(memory.get(), capacity, &head);
    reader.attach(memory.get(), capacity, &head);
  }
  struct Free {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{kLine}); }
  };
  std::unique_ptr<std::byte[], Free> memory;
  std::size_t capacity;
  Word<std::uint64_t> head{0};
  RingWriter writer;
  RingReader reader;
};

std::byte fill(std::uint64_t seq, std::size_t i) {
  return static_cast<std::byte>((seq * 31 + i * 7) & 0xff);
}

bool write_record(TestRing& r, std::uint64_t seq, std::size_t size) {
  std::byte* p = r.writer.reserve(8 + size);
  if (p == nullptr) return false;
  std::memcpy(p, &seq, 8);  // an 8-byte frame header
  for (std::size_t i = 0; i < size; ++i) p[8 + i] = fill(seq, i);
  r.writer.publish(RecordKind::kEager, 8);
  return true;
}

void expect_record(TestRing& r, std::uint64_t seq, std::size_t size) {
  RingReader::Record rec;
  ASSERT_EQ(r.reader.peek(rec), RingReader::Peek::kRecord) << "record " << seq;
  ASSERT_EQ(rec.header.size(), 8u);
  std::uint64_t got;
  std::memcpy(&got, rec.header.data(), 8);
  ASSERT_EQ(got, seq);
  ASSERT_EQ(rec.body.size(), size);
  for (std::size_t i = 0; i < size; ++i) ASSERT_EQ(rec.body[i], fill(seq, i)) << "byte " << i;
  r.reader.consume();
}

TEST(ShmRing, WrapsAroundManyTimesKeepingOrderAndBytes) {
  TestRing r(4096);
  std::mt19937 random(7);
  std::uint64_t written = 0, read = 0;
  std::vector<std::size_t> sizes;
  // Far more bytes than the ring holds: every record position and padding case.
  while (read < 3000) {
    std::size_t size = random() % 1500;
    if (sizes.size() - read < 8 && write_record(r, written, size)) {
      sizes.push_back(size);
      ++written;
      continue;
    }
    // Read a few, then release them (the next poll()).
    for (int k = 0; k < 3 && read < written; ++k, ++read) expect_record(r, read, sizes[read]);
    r.reader.release();
  }
  for (; read < written; ++read) expect_record(r, read, sizes[read]);
  RingReader::Record rec;
  EXPECT_EQ(r.reader.peek(rec), RingReader::Peek::kEmpty);
}

TEST(ShmRing, FullRingRefusesUntilTheReaderReleases) {
  TestRing r(4096);
  std::uint64_t n = 0;
  while (write_record(r, n, 200)) ++n;
  ASSERT_GT(n, 5u);
  EXPECT_FALSE(r.writer.has_room(200 + 8));
  // Consumed but not released: the space is still the reader's.
  expect_record(r, 0, 200);
  EXPECT_FALSE(write_record(r, n, 200));
  r.reader.release();
  EXPECT_TRUE(r.writer.has_room(200 + 8));
  ASSERT_TRUE(write_record(r, n, 200));
  for (std::uint64_t i = 1; i <= n; ++i) expect_record(r, i, 200);
  EXPECT_FALSE(r.writer.fits(4096));
  EXPECT_TRUE(r.writer.fits(1000));
}

// Payload bytes from an earlier lap may hold any value at a future record
// position; the reader must never take them for a published record. Every
// payload word here holds exactly the stamp its position will be checked
// against one lap later (position + capacity + 1).
TEST(ShmRing, StaleBytesThatLookLikeStampsAreNotRecords) {
  const std::size_t cap = 4096;
  TestRing r(cap);
  std::uint64_t lap = 0, last_offset = 0;
  for (std::uint64_t seq = 0; seq < 2000; ++seq) {
    std::size_t size = 40 + (seq * 97) % 900;
    std::byte* p = r.writer.reserve(8 + size);
    ASSERT_NE(p, nullptr);
    const std::uint64_t offset = static_cast<std::uint64_t>(p - r.memory.get());
    if (offset < last_offset) ++lap;
    last_offset = offset;
    std::memcpy(p, &seq, 8);
    for (std::size_t i = 8; i + 8 <= 8 + size; i += 8) {
      const std::uint64_t position = lap * cap + offset + i;
      const std::uint64_t fake = position + cap + 1;
      std::memcpy(p + i, &fake, 8);
    }
    r.writer.publish(RecordKind::kEager, 8);
    RingReader::Record rec;
    ASSERT_EQ(r.reader.peek(rec), RingReader::Peek::kRecord);
    std::uint64_t got;
    std::memcpy(&got, rec.header.data(), 8);
    ASSERT_EQ(got, seq);
    r.reader.consume();
    ASSERT_EQ(r.reader.peek(rec), RingReader::Peek::kEmpty) << "after record " << seq;
    r.reader.release();
  }
}

TEST(ShmRing, MalformedRecordsAreReported) {
  struct Case {
    std::uint32_t length;
    std::uint8_t kind;
    std::uint8_t header_size;
  };
  const Case cases[] = {
      {8, 2, 0},        // shorter than its own header
      {5000, 2, 0},     // beyond the end of the array
      {100, 9, 0},      // unknown kind
      {100, 2, 129},    // frame header above kMaxHeader
      {20, 2, 10},      // frame header longer than the record
      {64, 1, 0},       // padding that does not reach the end
  };
  for (const Case& c : cases) {
    TestRing r(4096);
    std::byte* at = r.memory.get();
    std::memcpy(at + 8, &c.length, 4);
    std::memcpy(at + 12, &c.kind, 1);
    std::memcpy(at + 13, &c.header_size, 1);
    reinterpret_cast<Word<std::uint64_t>*>(at)->store(1);
    RingReader::Record rec;
    EXPECT_EQ(r.reader.peek(rec), RingReader::Peek::kBad)
        << "length " << c.length << " kind " << int(c.kind) << " header " << int(c.header_size);
  }
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(ShmDoorbell, RingsOnlyAReceiverThatMaySleep) {
  Word<std::uint32_t> flag_a{0}, flag_b{0};
  UniqueFd efd_a(::eventfd(0, EFD_NONBLOCK)), efd_b(::eventfd(0, EFD_NONBLOCK));
  UniqueFd dup_a(::dup(efd_a.get())), dup_b(::dup(efd_b.get()));
  Doorbell a, b;  // a rings b's eventfd, b rings a's
  a.attach(&flag_a, &flag_b, std::move(efd_a), std::move(dup_b));
  b.attach(&flag_b, &flag_a, std::move(efd_b), std::move(dup_a));

  a.notify();  // b is busy
  EXPECT_FALSE(readable(b.fd()));
  b.arm();
  a.notify();
  EXPECT_TRUE(readable(b.fd()));
  EXPECT_EQ(flag_b.load(), 0u) << "the ringer clears the flag";
  a.notify();  // already rung once: no second write needed
  b.drain();
  EXPECT_FALSE(readable(b.fd()));
  b.arm();
  b.disarm();
  a.notify();
  EXPECT_FALSE(readable(b.fd())) << "a receiver that polls again is not rung";
  b.ring();
  EXPECT_TRUE(readable(a.fd()));
}

TEST(ShmAddress, FormatParseRoundTrip) {
  ShmAddress a;
  a.host = local_host_identity();
  a.pid_ns = 0xf0000099;
  a.pid = 1234;
  a.socket_name = "cohort-shm-1234-7";
  a.eager_limit = 65536;
  auto b = parse_address(format_address(a));
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->host, a.host);
  EXPECT_EQ(b->pid_ns, a.pid_ns);
  EXPECT_EQ(b->pid, a.pid);
  EXPECT_EQ(b->socket_name, a.socket_name);
  EXPECT_EQ(b->eager_limit, a.eager_limit);
  for (const char* bad : {"", "shm:", "tcp:127.0.0.1:5", "shm:a/b/1.2/3/4.5/s", "shm:a/b/1.2/3/4.5/s/0",
                          "shm:a/b/x.2/3/4.5/s/9", "shm:a/b/1.2/3/4.0/s/9", "shm:a b/b/1.2/3/4.5/s/9"})
    EXPECT_FALSE(parse_address(bad).is_ok()) << bad;
}

TEST(ShmAddress, ReachesOnlyTheSameHostIdentity) {
  Transport& t = shm::transport();
  auto ep = t.open({});
  ASSERT_TRUE(ep.is_ok()) << ep.status().to_string();
  const Address self = (*ep)->address();
  auto parsed = parse_address(self);
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_TRUE(t.reaches(self, self));
  auto other = [&](auto change) {
    ShmAddress a = *parsed;
    change(a);
    return format_address(a);
  };
  // Another pid or endpoint on this host: reachable.
  EXPECT_TRUE(t.reaches(self, other([](ShmAddress& a) { a.pid += 1; a.socket_name += "x"; })));
  // Anything that says "another host": not.
  const Address far[] = {
      other([](ShmAddress& a) { a.host.hostname += "-other"; }),
      other([](ShmAddress& a) { a.host.boot_id = "00000000-0000-0000-0000-000000000000"; }),
      other([](ShmAddress& a) { a.host.shm_dev += 1; }),
      other([](ShmAddress& a) { a.host.shm_ino += 1; }),
      other([](ShmAddress& a) { a.host.net_ns += 1; }),
  };
  for (const Address& f : far) {
    EXPECT_FALSE(t.reaches(self, f)) << f;
    auto c = (*ep)->connect(f);
    ASSERT_FALSE(c.is_ok()) << f;
    EXPECT_EQ(c.status().code(), Errc::kInvalidArgument);
  }
  EXPECT_FALSE(t.reaches(self, "tcp:127.0.0.1:4000"));
  EXPECT_FALSE(t.reaches("garbage", self));
}

// Eager frames fill the ring while the receiver does not poll: later sends
// say kPending, and complete (in order, bytes intact) once it reads.
TEST(ShmEndpoint, FullRingGivesPendingThenCompletion) {
  using testing::Side;
  Transport& t = shm::transport();
  auto ea = t.open({}), eb = t.open({});
  ASSERT_TRUE(ea.is_ok() && eb.is_ok());
  Side a(std::move(*ea)), b(std::move(*eb));
  auto p = a.ep().connect(b.ep().address());
  ASSERT_TRUE(p.is_ok());
  const std::size_t size = 16 * 1024;
  std::vector<std::vector<std::byte>> payloads;
  std::vector<std::byte> header(32, std::byte{0x11});
  std::vector<iovec> iov(1);
  std::size_t first_pending = 0, pending = 0;
  for (std::uint64_t i = 0; i < 200; ++i) {
    payloads.push_back(testing::make_payload(i, size));
    iovec v{payloads.back().data(), size};
    auto r = a.ep().send(*p, Frame{header, {&v, 1}}, i);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    if (*r == Progress::kPending && pending++ == 0) first_pending = i;
  }
  ASSERT_GT(pending, 0u) << "200 x 16 KiB must overflow the ring";
  EXPECT_GT(first_pending, 0u);
  EXPECT_EQ(pending, 200 - first_pending) << "once one waits, every later one waits behind it";
  ASSERT_TRUE(testing::pump({&a, &b}, [&] {
    return b.frames.size() == 200 && a.sends_done.size() == pending;
  }));
  for (std::uint64_t i = 0; i < 200; ++i) {
    EXPECT_EQ(testing::check_payload(i, b.frames[i].payload), "");
    if (i >= first_pending) {
      ASSERT_EQ(a.sends_done.count(i), 1u);
      EXPECT_TRUE(a.sends_done[i].is_ok());
    }
  }
}

// Each side sends eagerly up to the RECEIVER's limit, so that every
// kFrameArrived/kFrameAnnounced matches the receiver's caps().max_inline.
TEST(ShmEndpoint, EagerLimitsFollowTheReceiver) {
  using testing::Side;
  Transport& t = shm::transport();
  EndpointOptions small, big;
  small.eager_limit = 1000;
  big.eager_limit = 2 << 20;  // rings of several MiB
  auto ea = t.open(small), eb = t.open(big);
  ASSERT_TRUE(ea.is_ok() && eb.is_ok());
  Side a(std::move(*ea)), b(std::move(*eb));
  auto p = a.ep().connect(b.ep().address());
  ASSERT_TRUE(p.is_ok());
  const std::vector<std::size_t> sizes = {999, 1000, 1001, 5000, 2 << 20, (2 << 20) + 1};
  std::vector<std::vector<std::byte>> keep;
  std::vector<std::byte> header(16, std::byte{1});
  auto send = [&](Side& from, PeerId to, std::uint64_t seq, std::size_t size) {
    keep.push_back(testing::make_payload(seq, size));
    iovec v{keep.back().data(), size};
    auto r = from.ep().send(to, Frame{header, {&v, 1}}, seq);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  };
  for (std::size_t i = 0; i < sizes.size(); ++i) send(a, *p, i, sizes[i]);
  ASSERT_TRUE(testing::pump({&a, &b}, [&] { return b.complete_frames() == sizes.size(); }));
  ASSERT_EQ(b.accepted.size(), 1u);
  const PeerId back = b.accepted[0].first;
  for (std::size_t i = 0; i < sizes.size(); ++i) send(b, back, 100 + i, sizes[i]);
  ASSERT_TRUE(testing::pump({&a, &b}, [&] { return a.complete_frames() == sizes.size(); }));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(b.frames[i].announced, sizes[i] > (2u << 20)) << "to b, size " << sizes[i];
    EXPECT_EQ(a.frames[i].announced, sizes[i] > 1000) << "to a, size " << sizes[i];
    EXPECT_EQ(testing::check_payload(i, b.frames[i].payload), "");
    EXPECT_EQ(testing::check_payload(100 + i, a.frames[i].payload), "");
  }
}

}  // namespace
}  // namespace cohort::transport::shm
