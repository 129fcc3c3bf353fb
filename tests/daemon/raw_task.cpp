// cohort_test_raw_task — a task for daemon tests that enrolls with raw frames.
//
//   cohort_test_raw_task [publish] [stay]
//
// Enrolls with the tid in COHORT_TID (as a task the daemon spawned), prints
// "welcome code=C tid=T parent=P job=J rank=R size=N", then, with "publish",
// publishes the address "tcp" / "addr-<tid>" and prints "published"; with
// "stay", waits until the daemon closes the connection or halts the VM.
// Exit status 0 when enrolled, 2 when the daemon refused, 3 on other errors.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/env.hpp"
#include "tests/daemon/raw_client.hpp"

using namespace cohort;

int main(int argc, char** argv) {
  bool publish = false, stay = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "publish") publish = true;
    if (a == "stay") stay = true;
  }
  auto dir = env::get(env::kDir);
  auto tid = env::get_int(env::kTid, 0);
  if (!dir || !tid.is_ok()) {
    std::fprintf(stderr, "raw_task: COHORT_DIR and COHORT_TID must be set\n");
    return 3;
  }
  auto cookie = env::read_cookie(*dir);
  auto c = testing::RawClient::connect(env::path_in(*dir, env::kSocketName));
  if (!cookie.is_ok() || !c.is_ok()) {
    std::fprintf(stderr, "raw_task: cannot reach the daemon\n");
    return 3;
  }
  auto w = c->hello(*cookie, static_cast<Tid>(*tid), false, "raw_task");
  if (!w.is_ok()) {
    std::fprintf(stderr, "raw_task: %s\n", w.status().to_string().c_str());
    return 3;
  }
  std::printf("welcome code=%u tid=%d parent=%d job=%u rank=%d size=%d\n", w->status.code, w->tid,
              w->parent, w->job, w->rank, w->job_size);
  std::fflush(stdout);
  if (w->status.code != 0) {
    std::fprintf(stderr, "raw_task: %s\n", w->status.message.c_str());
    return 2;
  }
  if (publish) {
    proto::Publish p;
    p.req = 1;
    p.addresses.push_back({"tcp", "addr-" + std::to_string(w->tid)});
    auto ack = c->send(p).is_ok() ? c->expect<proto::Ack>() : Result<proto::Ack>(Errc::kIoError);
    if (!ack.is_ok() || ack->status.code != 0) return 3;
    std::printf("published\n");
    std::fflush(stdout);
  }
  if (stay) {
    while (true) {
      auto f = c->next(std::chrono::hours(1));
      if (!f.is_ok()) break;
      if (f->type != proto::MsgType::kNotifyEvent) continue;
      proto::NotifyEvent ev;
      if (proto::decode(f->body, ev).is_ok() && ev.kind == proto::NotifyKind::kVmHalt) break;
    }
  }
  return 0;
}
