// tests/proto/proto_test_util.hpp — fill any message with distinct non-default
// values through its own fields() list, so one generic test covers every type.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "proto/frame.hpp"

namespace cohort::proto::testing {

class Filler {
 public:
  template <class T>
  void operator()(T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      v = true;
    } else if constexpr (std::is_enum_v<T>) {
      v = static_cast<T>(1 + next() % 3);
    } else if constexpr (std::is_integral_v<T>) {
      // Alternate signs for signed fields, and use the high bytes too.
      auto n = next();
      v = static_cast<T>((n % 2 ? -1 : 1) * static_cast<long long>(n * 0x01010101u));
    } else if constexpr (std::is_same_v<T, std::string>) {
      v = "s" + std::to_string(next()) + std::string("\0\xff", 2);
    } else if constexpr (requires { v.push_back(typename T::value_type{}); }) {
      v.resize(2);
      for (auto& e : v) (*this)(e);
    } else {
      v.fields(*this);
    }
  }

 private:
  std::uint32_t next() { return n_++; }
  std::uint32_t n_ = 1;
};

template <class M>
M filled() {
  M m;
  Filler f;
  m.fields(f);
  return m;
}

/// The body bytes of `m` (the frame without its header).
template <class M>
std::vector<std::byte> body_of(const M& m) {
  auto frame = encode(m);
  return {frame.begin() + kHeaderSize, frame.end()};
}

}  // namespace cohort::proto::testing
