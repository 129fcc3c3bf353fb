// mp_task_bulk: moves pattern-filled messages of a given size to and from its
// parent, on command. Commands arrive on kTagCmd as
//   {int32 op, uint64 size, bool raw, int32 tag}
// op kExpect: receive one message of `size` bytes on `tag` (raw: straight into
//             a buffer of exactly `size` bytes; packed: one pack_bytes item) and
//             check it against pattern seed `size`;
// op kEmit:   send such a message to the parent on `tag`;
// op kQuit:   exit 0.
// Every kExpect/kEmit is answered on kTagAck with {bool ok, string detail}
// after the receive or the send returned.
#include <string>
#include <vector>

#include "tests/multiproc/tasks/bulk_ops.hpp"
#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

namespace {

std::string check_received(std::span<const std::byte> bytes, std::uint64_t size) {
  if (bytes.size() != size)
    return "received " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(size);
  long long bad = pattern_mismatch(bytes, static_cast<std::uint32_t>(size));
  if (bad >= 0) return "byte " + std::to_string(bad) + " of " + std::to_string(size) + " is wrong";
  return {};
}

}  // namespace

int main() {
  return run_task([&](cohort::Session& s) {
    const cohort::Tid parent = s.parent();
    for (;;) {
      cohort::Message cmd = task_recv(s, parent, kTagCmd);
      auto op = static_cast<BulkOp>(cmd.unpack<std::int32_t>());
      auto size = cmd.unpack<std::uint64_t>();
      bool raw = cmd.unpack<bool>();
      auto tag = cmd.unpack<std::int32_t>();
      std::string problem;
      if (op == BulkOp::kQuit) return 0;
      if (op == BulkOp::kExpect) {
        if (raw) {
          std::vector<std::byte> buf(size);
          cohort::MessageInfo info = s.recv(parent, tag, std::span<std::byte>(buf));
          if (info.source != parent || info.tag != tag)
            problem = "raw message from " + std::to_string(info.source) + " tag " +
                      std::to_string(info.tag);
          else if (info.size != size)
            problem = "raw message of " + std::to_string(info.size) + " bytes, expected " +
                      std::to_string(size);
          else
            problem = check_received(buf, size);
        } else {
          cohort::Message m = task_recv(s, parent, tag);
          if (m.is_raw()) {
            problem = "packed message arrived marked raw";
          } else {
            std::vector<std::byte> bytes = m.unpack_bytes();
            problem = check_received(bytes, size);
            if (problem.empty() && !m.at_end()) problem = "packed message has trailing data";
          }
        }
      } else if (op == BulkOp::kEmit) {
        std::vector<std::byte> data = make_pattern(size, static_cast<std::uint32_t>(size));
        if (raw) {
          s.send(parent, tag, std::span<const std::byte>(data));
        } else {
          cohort::Message m;
          m.pack_bytes(data);
          s.send(parent, tag, m);
        }
      } else {
        task_fail(kExitUsage, "unknown op " + std::to_string(static_cast<int>(op)));
      }
      cohort::Message ack;
      ack << problem.empty() << problem;
      s.send(parent, kTagAck, ack);
    }
  });
}
