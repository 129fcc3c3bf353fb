// mp_task_flood: waits for kTagGo from its parent, then sends argv[1] numbered
// messages (see flood.hpp) to the parent on kTagData as fast as it can, then
// {uint32 count} on kTagDone.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tests/multiproc/tasks/flood.hpp"
#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main(int argc, char** argv) {
  const auto count = static_cast<std::uint32_t>(argc > 1 ? std::atoi(argv[1]) : 1000);
  return run_task([&](cohort::Session& s) {
    const cohort::Tid parent = s.parent();
    const std::size_t eager = eager_limit();
    const auto rank = static_cast<std::uint32_t>(s.rank());
    task_recv(s, parent, kTagGo);
    std::vector<std::byte> buf;
    for (std::uint32_t seq = 0; seq < count; ++seq) {
      const std::size_t size = flood_size(seq, eager);
      if (flood_packed(seq, eager)) {
        std::vector<std::byte> body = make_pattern(size - kFloodHeader, flood_seed(rank, seq));
        cohort::Message m;
        m << static_cast<std::int32_t>(rank) << seq;
        m.pack_bytes(body);
        s.send(parent, kTagData, m);
      } else {
        buf.resize(size);
        std::memcpy(buf.data(), &rank, 4);
        std::memcpy(buf.data() + 4, &seq, 4);
        fill_pattern(std::span<std::byte>(buf).subspan(kFloodHeader), flood_seed(rank, seq));
        s.send(parent, kTagData, std::span<const std::byte>(buf));
      }
    }
    cohort::Message done;
    done << count;
    s.send(parent, kTagDone, done);
    return 0;
  });
}
