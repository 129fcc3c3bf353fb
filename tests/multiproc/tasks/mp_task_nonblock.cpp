// mp_task_nonblock: the task side of mp_matching_test's non-blocking test.
//  1. posts irecv for kNbSmall (into a buffer), kNbPacked (a Message) and
//     kNbLarge (into a buffer) from its parent, then says kTagReady;
//  2. completes them with wait_any, in whatever order they finish, and checks
//     each (sizes kNbSmallSize, kNbLargeSize; patterns seeded by size);
//  3. isends kNbReplySmall, kNbReplyPacked, kNbReplyLarge and wait_alls them;
//  4. waits for kTagGo, sends kNbLate (kNbLateSize bytes) and exits 0.
#include <string>
#include <vector>

#include "tests/multiproc/tasks/nonblock.hpp"
#include "tests/multiproc/tasks/task_common.hpp"

using namespace cohort::mptest;

int main() {
  return run_task([&](cohort::Session& s) {
    const cohort::Tid parent = s.parent();
    std::vector<std::byte> small(kNbSmallSize + 1000);
    std::vector<std::byte> large(kNbLargeSize);
    std::vector<cohort::Request> reqs;
    std::vector<int> tags;
    reqs.push_back(s.irecv(parent, kNbSmall, std::span<std::byte>(small)));
    tags.push_back(kNbSmall);
    reqs.push_back(s.irecv(parent, kNbPacked));
    tags.push_back(kNbPacked);
    reqs.push_back(s.irecv(parent, kNbLarge, std::span<std::byte>(large)));
    tags.push_back(kNbLarge);
    s.send(parent, kTagReady, cohort::Message());

    while (!reqs.empty()) {
      std::size_t i = s.wait_any(reqs);
      task_check(i < reqs.size(), "wait_any returned index " + std::to_string(i) + " of " +
                                      std::to_string(reqs.size()));
      cohort::MessageInfo info = reqs[i].info();
      const int tag = tags[i];
      task_check(info.source == parent && info.tag == tag,
                 "request for tag " + std::to_string(tag) + " completed with source " +
                     std::to_string(info.source) + " tag " + std::to_string(info.tag));
      if (tag == kNbSmall) {
        task_check(info.size == kNbSmallSize, "small: size " + std::to_string(info.size));
        task_check(pattern_mismatch(std::span(small).first(kNbSmallSize), kNbSmallSize) < 0,
                   "small: wrong content");
      } else if (tag == kNbLarge) {
        task_check(info.size == kNbLargeSize, "large: size " + std::to_string(info.size));
        task_check(pattern_mismatch(large, kNbLargeSize) < 0, "large: wrong content");
      } else {
        cohort::Message& m = reqs[i].message();
        task_check(m.unpack<std::int32_t>() == kNbPacked && m.unpack_string() == "nonblocking" &&
                       m.unpack_vector<double>() == kNbDoubles && m.at_end(),
                   "packed: wrong content");
      }
      reqs.erase(reqs.begin() + static_cast<std::ptrdiff_t>(i));
      tags.erase(tags.begin() + static_cast<std::ptrdiff_t>(i));
    }

    std::vector<std::byte> reply_small = make_pattern(kNbReplySmallSize, kNbReplySmallSize);
    std::vector<std::byte> reply_large = make_pattern(kNbReplyLargeSize, kNbReplyLargeSize);
    cohort::Message reply_packed;
    reply_packed << static_cast<std::int32_t>(kNbReplyPacked) << std::string("reply");
    std::vector<cohort::Request> sends;
    sends.push_back(s.isend(parent, kNbReplySmall, std::span<const std::byte>(reply_small)));
    sends.push_back(s.isend(parent, kNbReplyPacked, reply_packed));
    sends.push_back(s.isend(parent, kNbReplyLarge, std::span<const std::byte>(reply_large)));
    s.wait_all(sends);

    task_recv(s, parent, kTagGo);
    std::vector<std::byte> late = make_pattern(kNbLateSize, kNbLateSize);
    s.send(parent, kNbLate, std::span<const std::byte>(late));
    return 0;
  });
}
