#include "transport/ucx/ucx_requests.hpp"

#include <algorithm>

namespace cohort::transport::ucx {

namespace {
// Returned buffers kept per pool; more are freed (a burst of large eager frames).
constexpr std::size_t kMaxPooled = 64;
}  // namespace

Buffer BufferPool::get(std::size_t size) {
  // Most pools hold one size; the first fit is almost always the last one returned.
  for (std::size_t i = free_.size(); i-- > 0;) {
    if (free_[i].capacity >= size) {
      Buffer b = std::move(free_[i]);
      free_[i] = std::move(free_.back());
      free_.pop_back();
      return b;
    }
  }
  Buffer b;
  b.capacity = std::max<std::size_t>(size, 1);
  b.data = std::make_unique_for_overwrite<std::byte[]>(b.capacity);
  return b;
}

void BufferPool::put(Buffer b) {
  if (!b) return;
  if (free_.size() >= kMaxPooled) {
    // Keep the larger ones: a later get() of either size can use them.
    auto smallest = std::min_element(free_.begin(), free_.end(),
                                     [](const Buffer& x, const Buffer& y) {
                                       return x.capacity < y.capacity;
                                     });
    if (smallest->capacity >= b.capacity) return;  // `b` is freed
    *smallest = std::move(b);
    return;
  }
  free_.push_back(std::move(b));
}

void on_send_done(void* request, ucs_status_t status, void* user_data) {
  auto* op = static_cast<SendOp*>(user_data);
  ucp_request_free(request);
  if (status != UCS_OK && op->status == UCS_OK) op->status = status;
  if (--op->outstanding == 0) op->done->sends.push_back(op);
}

void on_recv_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                  void* user_data) {
  // `info` lives inside the request: read it before the request goes back to UCX.
  auto* op = static_cast<RecvOp*>(user_data);
  op->length = info != nullptr ? info->length : 0;
  ucp_request_free(request);
  op->request = nullptr;
  op->finished = true;
  op->status = status;
  op->done->recvs.push_back(op);
}

void on_slot_done(void* request, ucs_status_t status, const ucp_tag_recv_info_t* info,
                  void* user_data) {
  auto* slot = static_cast<Slot*>(user_data);
  if (info != nullptr) slot->info = *info;  // before the request (which holds it) is freed
  ucp_request_free(request);
  slot->request = nullptr;
  slot->done = true;
  slot->status = status;
}

}  // namespace cohort::transport::ucx
