// transport/ucx/ucx_requests.hpp — the records behind UCP requests, and the
// pools that keep them, so that steady-state traffic allocates nothing.
//
//  * SendOp: one send() (or an internal message: hello, bye, refuse) that UCX
//    did not finish at once. It owns what UCX reads until completion: the iovec
//    array (ucp_dt_iov_t, header first), the start-message bytes of a split
//    frame, the bytes of internal messages. A split frame is two UCP requests;
//    the op ends when `outstanding` reaches 0.
//  * RecvOp: a payload receive — receive_payload() into the caller's buffer,
//    or an internal one into RxMsg::payload (hellos and split frames small
//    enough to arrive whole).
//  * RxMsg: one start message taken from a posted slot, waiting in its peer's
//    inbox until poll() can report it.
//  * Slot: one of the receives kept posted for start messages.
//
// UCX calls the completion callbacks from inside ucp_worker_progress() (or
// ucp_ep_close_nbx()), always on the endpoint's thread. They only record the
// result and append the op to its endpoint's done list; poll() turns done ops
// into events. Pooled objects never move (the pools hold unique_ptrs), so UCX
// may keep pointers to them.
#pragma once

#include <ucp/api/ucp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/base/options.hpp"
#include "transport/transport.hpp"
#include "transport/ucx/ucx_tags.hpp"

namespace cohort::transport::ucx {

/// A heap buffer that remembers its capacity.
struct Buffer {
  std::unique_ptr<std::byte[]> data;
  std::size_t capacity = 0;
  explicit operator bool() const noexcept { return data != nullptr; }
};

/// Buffers of at least `size` bytes; get() reuses a returned one when it is big enough.
class BufferPool {
 public:
  Buffer get(std::size_t size);
  void put(Buffer b);

 private:
  std::vector<Buffer> free_;
};

/// Objects that never move and are reused after put().
template <class T>
class Pool {
 public:
  T* get() {
    if (free_.empty()) {
      all_.push_back(std::make_unique<T>());
      return all_.back().get();
    }
    T* t = free_.back();
    free_.pop_back();
    return t;
  }
  void put(T* t) {
    *t = T();
    free_.push_back(t);
  }
  std::size_t in_use() const noexcept { return all_.size() - free_.size(); }

 private:
  std::vector<std::unique_ptr<T>> all_;
  std::vector<T*> free_;
};

/// A FIFO over a ring that grows and never shrinks.
template <class T>
class Fifo {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  T& front() noexcept { return ring_[head_]; }
  void push(T v) {
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) % ring_.size()] = std::move(v);
    ++count_;
  }
  T pop() {
    T v = std::move(ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
    --count_;
    return v;
  }

 private:
  void grow() {
    std::vector<T> bigger(ring_.empty() ? 8 : ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    ring_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<T> ring_;
  std::size_t head_ = 0, count_ = 0;
};

struct SendOp;
struct RecvOp;

/// Where completion callbacks put finished ops; owned by the endpoint.
struct DoneLists {
  std::vector<SendOp*> sends;
  std::vector<RecvOp*> recvs;
};

struct SendOp {
  DoneLists* done = nullptr;
  PeerId peer = kNoPeer;
  OpId op = 0;
  bool user = false;             // report kSendDone (internal messages report nothing)
  std::uint8_t outstanding = 0;  // UCP requests not yet complete
  ucs_status_t status = UCS_OK;  // the first failure
  std::array<ucp_dt_iov_t, kMaxPayloadIov + 1> iov{};
  std::array<std::byte, kMaxHeader + kSplitTrailer> head{};
  std::string owned;     // bytes of an internal message
  std::size_t index = 0;  // in the endpoint's list of ops inside UCX
  bool orphan = false;    // already reported (abandoned); only its memory is left to free
};

struct RxMsg;

struct RecvOp {
  DoneLists* done = nullptr;
  PeerId peer = kNoPeer;
  OpId op = 0;
  bool user = false;        // receive_payload(): report kRecvDone
  RxMsg* msg = nullptr;     // internal: the start message whose payload this is
  ucs_status_t status = UCS_OK;
  std::size_t length = 0;   // bytes received
  std::size_t expected = 0;
  void* request = nullptr;  // while UCX holds it
  bool finished = false;    // the callback ran
  std::size_t index = 0;    // in the endpoint's list of receives inside UCX
  bool orphan = false;      // already reported (abandoned); only its memory is left to free
  Buffer kept;              // an abandoned internal receive keeps its buffer until UCX lets go
};

struct RxMsg {
  enum class Payload : std::uint8_t {
    kNone,     // everything is in `start` (or the caller will receive it)
    kPending,  // an internal payload receive is running
    kDone,     // `payload` holds it
    kFailed,   // the internal receive failed
  };
  Buffer start;            // the start message, as received into a slot
  std::size_t length = 0;  // bytes of it
  StartTag tag{};
  std::uint64_t payload_size = 0;  // split frames
  std::uint32_t seq = 0;           // split frames
  Payload payload_state = Payload::kNone;
  Buffer payload;  // internal payload
};

/// One posted receive for start messages.
struct Slot {
  Buffer buf;
  void* request = nullptr;  // UCP request while posted and not complete
  bool posted = false;
  bool done = false;
  ucs_status_t status = UCS_OK;
  ucp_tag_recv_info_t info{};
};

/// UCX completion callbacks (user_data: the SendOp, RecvOp or Slot).
void on_send_done(void* request, ucs_status_t status, void* user_data);
void on_recv_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                  void* user_data);
void on_slot_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                  void* user_data);

}  // namespace cohort::transport::ucx
