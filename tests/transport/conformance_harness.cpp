#include "tests/transport/conformance_harness.hpp"

#include <cstring>

namespace cohort::transport::testing {

std::vector<std::byte> make_payload(std::uint64_t seq, std::size_t size) {
  std::vector<std::byte> v(size);
  for (std::size_t i = 0; i < size; ++i) v[i] = pattern(seq, i);
  return v;
}

std::vector<std::byte> make_header(std::uint64_t seq, std::size_t size, std::size_t header_size) {
  std::vector<std::byte> h(header_size);
  for (std::size_t i = 0; i < header_size; ++i) h[i] = pattern(seq + 99, i);
  if (header_size >= 16) {
    std::memcpy(h.data(), &seq, 8);
    std::memcpy(h.data() + 8, &size, 8);
  }
  return h;
}

std::string check_payload(std::uint64_t seq, const std::vector<std::byte>& payload) {
  for (std::size_t i = 0; i < payload.size(); ++i)
    if (payload[i] != pattern(seq, i))
      return "payload of frame " + std::to_string(seq) + " differs at byte " + std::to_string(i) +
             " of " + std::to_string(payload.size());
  return {};
}

Side::Side(std::unique_ptr<Endpoint> endpoint, std::size_t span)
    : endpoint_(std::move(endpoint)), events_(span) {}

std::size_t Side::complete_frames() const {
  std::size_t n = 0;
  for (const Received& r : frames) n += r.complete ? 1 : 0;
  return n;
}

std::size_t Side::poll_once() {
  if (!endpoint_) return 0;
  std::size_t n = endpoint_->poll(events_);
  EXPECT_LE(n, events_.size());
  for (std::size_t i = 0; i < n; ++i) {
    Event& e = events_[i];
    kinds.push_back(e.kind);
    switch (e.kind) {
      case Event::Kind::kFrameArrived: {
        Received r;
        r.peer = e.peer;
        r.header.assign(e.header.begin(), e.header.end());
        r.payload.assign(e.payload.begin(), e.payload.end());
        EXPECT_EQ(e.payload_size, e.payload.size());
        r.complete = true;
        frames.push_back(std::move(r));
        break;
      }
      case Event::Kind::kFrameAnnounced: {
        EXPECT_GT(e.payload_size, endpoint_->caps().max_inline);
        if (!auto_receive) {
          announced_peer = e.peer;
          announced_size = e.payload_size;
          announced_header.assign(e.header.begin(), e.header.end());
          break;
        }
        Received r;
        r.peer = e.peer;
        r.announced = true;
        r.header.assign(e.header.begin(), e.header.end());
        r.payload.resize(e.payload_size);
        frames.push_back(std::move(r));
        Received& f = frames.back();
        OpId op = next_recv_op_++;
        auto res = endpoint_->receive_payload(e.peer, f.payload, op);
        if (!res.is_ok()) {
          f.status = res.status();
        } else if (*res == Progress::kDone) {
          f.complete = true;
        } else {
          inflight_[op] = frames.size() - 1;
        }
        break;
      }
      case Event::Kind::kRecvDone: {
        recvs_done[e.op] = e.status;
        auto it = inflight_.find(e.op);
        if (it != inflight_.end()) {
          frames[it->second].complete = e.status.is_ok();
          frames[it->second].status = e.status;
          inflight_.erase(it);
        }
        break;
      }
      case Event::Kind::kSendDone:
        EXPECT_EQ(sends_done.count(e.op), 0u) << "two kSendDone for op " << e.op;
        sends_done[e.op] = e.status;
        break;
      case Event::Kind::kPeerAccepted:
        accepted.emplace_back(
            e.peer, std::string(reinterpret_cast<const char*>(e.payload.data()), e.payload.size()));
        break;
      case Event::Kind::kPeerDown:
        EXPECT_EQ(down.count(e.peer), 0u) << "two kPeerDown for peer " << e.peer;
        EXPECT_FALSE(e.status.is_ok());
        down[e.peer] = e.status;
        break;
    }
  }
  return n;
}

bool pump(const std::vector<Side*>& sides, const std::function<bool()>& done,
          std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    for (Side* s : sides) s->poll_once();
  }
  return true;
}

Address dead_address(Transport& transport) {
  auto ep = transport.open({});
  EXPECT_TRUE(ep.is_ok()) << ep.status().to_string();
  return ep.is_ok() ? (*ep)->address() : Address();
}

}  // namespace cohort::transport::testing
