// proto/codec.hpp — bounds-checked little-endian encoding for control frames.
//
// A message type lists its fields once, in `fields(f)`; the same list drives
// encoding (Writer) and decoding (Reader), so the two can never disagree:
//
//   struct Kill { std::uint32_t req = 0; Tid tid = 0; std::int32_t signal = 15;
//                 template <class F> void fields(F& f) { f(req); f(tid); f(signal); } };
//
// Supported field types: fixed-width integers, bool, enums (as their underlying
// type), std::string (bytes), std::vector<T>, and structs with `fields`.
// The Reader never trusts a length: strings are bounded by kMaxString, every
// count by the bytes left, and any overrun is kProtocolError.
#pragma once

#include "base/endian.hpp"
#include "base/status.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace cohort::proto {

inline constexpr std::size_t kMaxString = 1u << 20;  // one string field, e.g. an output line

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}

  template <class T>
  void operator()(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      put<std::uint8_t>(v ? 1 : 0);
    } else if constexpr (std::is_enum_v<T>) {
      put(static_cast<std::make_unsigned_t<std::underlying_type_t<T>>>(v));
    } else if constexpr (std::is_integral_v<T>) {
      put(static_cast<std::make_unsigned_t<T>>(v));
    } else if constexpr (std::is_same_v<T, std::string>) {
      put(static_cast<std::uint32_t>(v.size()));
      append(v.data(), v.size());
    } else if constexpr (requires { typename T::value_type; v.size(); v.begin(); }) {
      put(static_cast<std::uint32_t>(v.size()));
      for (const auto& e : v) (*this)(e);
    } else {
      const_cast<T&>(v).fields(*this);  // fields() only reads through a Writer
    }
  }

 private:
  template <class U>
  void put(U v) {
    std::size_t at = out_.size();
    out_.resize(at + sizeof(U));
    store_le<U>(out_.data() + at, v);
  }
  void append(const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<std::byte>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}

  template <class T>
  void operator()(T& v) {
    if (!status_.is_ok()) return;
    if constexpr (std::is_same_v<T, bool>) {
      std::uint8_t b = 0;
      get(b);
      if (b > 1) fail("bool field is not 0 or 1");
      v = b != 0;
    } else if constexpr (std::is_enum_v<T>) {
      std::make_unsigned_t<std::underlying_type_t<T>> u{};
      get(u);
      v = static_cast<T>(u);
    } else if constexpr (std::is_integral_v<T>) {
      std::make_unsigned_t<T> u{};
      get(u);
      v = static_cast<T>(u);
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::uint32_t n = 0;
      get(n);
      if (!status_.is_ok()) return;
      if (n > kMaxString || n > left()) return fail("string length out of bounds");
      v.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
      pos_ += n;
    } else if constexpr (requires { typename T::value_type; v.push_back(typename T::value_type{}); }) {
      std::uint32_t n = 0;
      get(n);
      if (!status_.is_ok()) return;
      if (n > left()) return fail("element count out of bounds");  // every element takes >= 1 byte
      v.clear();
      v.reserve(n);
      for (std::uint32_t i = 0; i < n && status_.is_ok(); ++i) {
        typename T::value_type e{};
        (*this)(e);
        v.push_back(std::move(e));
      }
    } else {
      v.fields(*this);
    }
  }

  /// OK when every field decoded and no byte is left over.
  Status finish() {
    if (status_.is_ok() && pos_ != in_.size()) fail("trailing bytes after the last field");
    return status_;
  }
  std::size_t left() const { return in_.size() - pos_; }

 private:
  template <class U>
  void get(U& v) {
    if (left() < sizeof(U)) return fail("frame too short");
    v = load_le<U>(in_.data() + pos_);
    pos_ += sizeof(U);
  }
  void fail(const char* what) {
    if (status_.is_ok()) status_ = Status(Errc::kProtocolError, what);
  }
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  Status status_;
};

}  // namespace cohort::proto
