// ucx_test_peer — the other process of the ucx tests (ucx_endpoint_test.cpp).
//
//   ucx_test_peer MODE ADDRESS [SIZE]
//
// Opens a ucx endpoint (hello "peer"), connects to ADDRESS and sends a frame
// with header "ready". Then, by MODE:
//   hold   polls forever; prints "announced N" when a frame of N payload bytes
//          is announced, and never receives it (the transfer stays in flight)
//   send   sends one frame of SIZE pattern bytes, prints "sent", polls forever
//   echo   sends every frame it gets back to the sender
//   clean  sends three 1000-byte frames, waits until they completed, closes
//          the endpoint and exits 0
//   cross  prints "address A" (its own) first; once the test's endpoint has
//          connected back (kPeerAccepted), sends one frame of SIZE pattern
//          bytes on its own connection, waits until it completed, closes the
//          endpoint and exits 0
// Lines go to stdout, flushed at once; the test reads them through a pipe.
// Exits 3 when the test's endpoint goes away, 2 on usage or setup errors.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "transport/ucx/ucx_transport.hpp"

using namespace cohort::transport;

namespace {

std::byte pattern(std::size_t i) { return static_cast<std::byte>((i * 131u + 7u) & 0xff); }

void say(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

int fail(const std::string& what) {
  std::fprintf(stderr, "ucx_test_peer: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return fail("usage: ucx_test_peer hold|send|echo|clean ADDRESS [SIZE]");
  const std::string mode = argv[1];
  EndpointOptions options;
  options.hello = "peer";
  auto opened = ucx::transport().open(options);
  if (!opened.is_ok()) return fail(opened.status().to_string());
  std::unique_ptr<Endpoint> ep = std::move(*opened);
  if (mode == "cross") say("address " + ep->address());
  auto peer = ep->connect(argv[2]);
  if (!peer.is_ok()) return fail(peer.status().to_string());

  const std::string ready = "ready";
  const std::span<const std::byte> ready_header(reinterpret_cast<const std::byte*>(ready.data()),
                                                ready.size());
  if (!ep->send(*peer, Frame{ready_header, {}}, 1).is_ok()) return fail("send ready");

  std::vector<std::byte> big;
  std::vector<iovec> big_iov;
  std::size_t sends_pending = 0;
  bool cross_sent = false;  // cross: the big frame has been sent
  if (mode == "send" || mode == "cross") {
    big.resize(argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 64 << 20);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = pattern(i);
    big_iov.push_back({big.data(), big.size()});
  }
  if (mode == "send") {
    auto r = ep->send(*peer, Frame{ready_header.first(0), big_iov}, 2);
    if (!r.is_ok()) return fail(r.status().to_string());
    say("sent");
  } else if (mode == "clean") {
    big.resize(1000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = pattern(i);
    big_iov.push_back({big.data(), big.size()});
    for (OpId op = 10; op < 13; ++op) {
      auto r = ep->send(*peer, Frame{ready_header.first(0), big_iov}, op);
      if (!r.is_ok()) return fail(r.status().to_string());
      sends_pending += *r == Progress::kPending;
    }
  }

  std::vector<Event> events(16);
  std::vector<std::vector<std::byte>> echoes;  // kept until their sends complete
  for (;;) {
    std::size_t n = ep->poll(events);
    for (std::size_t i = 0; i < n; ++i) {
      const Event& e = events[i];
      switch (e.kind) {
        case Event::Kind::kFrameAnnounced:
          say("announced " + std::to_string(e.payload_size));
          break;
        case Event::Kind::kFrameArrived:
          if (mode == "echo") {
            echoes.emplace_back(e.header.begin(), e.header.end());
            auto r = ep->send(e.peer, Frame{echoes.back(), {}}, 100 + echoes.size());
            if (!r.is_ok()) return fail(r.status().to_string());
          }
          break;
        case Event::Kind::kPeerAccepted:
          if (mode == "cross") {
            auto r = ep->send(*peer, Frame{ready_header.first(0), big_iov}, 2);
            if (!r.is_ok()) return fail(r.status().to_string());
            sends_pending = *r == Progress::kPending;
            cross_sent = true;
          }
          break;
        case Event::Kind::kSendDone:
          if (!e.status.is_ok()) return fail("send: " + e.status.to_string());
          if (sends_pending > 0) --sends_pending;
          break;
        case Event::Kind::kPeerDown:
          return 3;
        default:
          break;
      }
    }
    const bool cross_done = mode == "cross" && cross_sent && sends_pending == 0;
    if ((mode == "clean" && sends_pending == 0) || cross_done) {
      ep.reset();  // says goodbye after the frames
      say("closed");
      return 0;
    }
  }
}
