// lib/src/session_impl.hpp — Session::Impl and Request::State, shared by
// session.cpp (the blocking API) and request.cpp (non-blocking requests).
#pragma once

#include <cohort/cohort.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.hpp"
#include "lib/src/matcher.hpp"
#include "lib/src/progress.hpp"

namespace cohort {

/// Throws the public API's exception for `st` (not OK).
[[noreturn, gnu::cold]] void raise(const Status& st);
/// Throw the public API's exception for a non-OK status.
inline void throw_if_error(const Status& st) {
  if (!st.is_ok()) [[unlikely]]
    raise(st);
}
template <class T>
T value_or_throw(Result<T> r) {
  if (!r.is_ok()) throw_if_error(r.status());
  return std::move(r).value();
}

struct Request::State : lib::ListHook {
  enum class Kind : std::uint8_t { kSend, kRecv };
  Session::Impl* impl = nullptr;  // nullptr once the session is gone
  Kind kind = Kind::kSend;
  lib::SendOp send;
  lib::RecvOp recv;
  Message message;        // irecv without a buffer receives here
  bool reported = false;  // test/wait/wait_any/wait_all has returned its completion

  bool done() const noexcept { return kind == Kind::kSend ? send.done : recv.done(); }
  const Status& status() const noexcept { return kind == Kind::kSend ? send.status : recv.status; }
};

struct Session::Impl {
  std::unique_ptr<lib::Engine> engine;
  Tid tid = kNoTid;
  Tid parent = kNoTid;
  std::uint32_t job = 0;
  int rank = 0;
  int job_size = 1;
  std::uint32_t host = 0;
  std::string host_name;
  std::string vm_name;
  bool as_tool = false;
  std::optional<std::vector<Tid>> job_tids;
  lib::IntrusiveList<Request::State> requests;  // started and not yet destroyed
  unsigned sends_since_poll = 0;

  ~Impl();
  /// Throws unless the session can still talk to the VM.
  void check_usable() const {
    if (!engine->is_usable()) [[unlikely]]
      throw_if_error(engine->usable());
  }
  /// Now and then, let a stream of sends that complete at once read the network too.
  void maybe_poll() {
    if (++sends_since_poll >= 64) {
      sends_since_poll = 0;
      engine->poll_once();
    }
  }
  std::shared_ptr<Request::State> new_request(Request::State::Kind kind);
  /// Complete-or-throw for a request that is done.
  static void raise(const Request::State& s);
  /// Withdraw a request that its owner dropped before it completed.
  void abandon(Request::State& s) noexcept;
  /// Poll for `s` to be done (including a dead source); true when it is.
  bool ready(Request::State& s);
};

/// Flags of the wire header for a packed or raw Message as it will be sent.
std::uint8_t wire_flags(const Message& m) noexcept;

}  // namespace cohort
