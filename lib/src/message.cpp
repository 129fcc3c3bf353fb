// The non-template half of cohort::Message: item headers, strings, byte blobs
// and the errors that say what was expected and what was found.
#include <cohort/message.hpp>

#include <limits>
#include <string>

namespace cohort {
namespace {

std::string type_name(std::uint8_t code) {
  const bool array = (code & kArrayBit) != 0;
  std::string name;
  switch (static_cast<PackType>(code & ~kArrayBit)) {
    case PackType::kInt8:
      name = "int8";
      break;
    case PackType::kUint8:
      name = "uint8";
      break;
    case PackType::kInt16:
      name = "int16";
      break;
    case PackType::kUint16:
      name = "uint16";
      break;
    case PackType::kInt32:
      name = "int32";
      break;
    case PackType::kUint32:
      name = "uint32";
      break;
    case PackType::kInt64:
      name = "int64";
      break;
    case PackType::kUint64:
      name = "uint64";
      break;
    case PackType::kFloat:
      name = "float";
      break;
    case PackType::kDouble:
      name = "double";
      break;
    case PackType::kBool:
      name = "bool";
      break;
    case PackType::kString:
      name = "string";
      break;
    case PackType::kBytes:
      name = "bytes";
      break;
    default:
      return "unknown type code " + std::to_string(code);
  }
  return array ? name + " array" : name;
}

std::uint8_t code_of(PackType t, bool array) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(t) | (array ? kArrayBit : 0));
}

}  // namespace

void Message::put_type(PackType t, bool array) {
  data_.push_back(std::byte{code_of(t, array)});
}

void Message::put_raw(const void* p, std::size_t n) {
  if (n == 0) return;
  std::size_t at = data_.size();
  data_.resize(at + n);
  std::memcpy(data_.data() + at, p, n);
}

void Message::put_count(std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max())
    throw Error(Errc::kInvalidArgument, "pack: " + std::to_string(n) +
                                            " elements exceed the limit of 2^32-1 per item; "
                                            "split the array");
  const auto c = static_cast<std::uint32_t>(n);
  put_raw(&c, sizeof c);
}

void Message::need(std::size_t n) const {
  const std::size_t left = pos_ <= data_.size() ? data_.size() - pos_ : 0;
  if (n > left)
    throw Error(Errc::kTruncated, "unpack: the item needs " + std::to_string(n) +
                                      " more bytes but the message has only " +
                                      std::to_string(left) + " left (at byte " +
                                      std::to_string(pos_) + " of " + std::to_string(data_.size()) +
                                      ")");
}

void Message::get_raw(void* p, std::size_t n) {
  need(n);
  if (n != 0) std::memcpy(p, data_.data() + pos_, n);
  pos_ += n;
}

std::uint32_t Message::get_count() {
  std::uint32_t n = 0;
  get_raw(&n, sizeof n);
  return fix_order(n);
}

void Message::expect(PackType t, bool array) {
  const std::uint8_t want = code_of(t, array);
  if (raw_)
    throw Error(Errc::kTypeMismatch, "unpack: expected " + type_name(want) +
                                         " but the message was sent as raw bytes; read it "
                                         "with bytes() instead");
  if (pos_ >= data_.size())
    throw Error(Errc::kTruncated, "unpack: expected " + type_name(want) +
                                      " but every item has been unpacked (" +
                                      std::to_string(data_.size()) + " bytes)");
  const auto found = static_cast<std::uint8_t>(data_[pos_]);
  if (found != want)
    throw Error(Errc::kTypeMismatch, "unpack: expected " + type_name(want) + " but found " +
                                         type_name(found) + " at byte " + std::to_string(pos_) +
                                         "; unpack items in the order and types they were packed");
  ++pos_;
}

void Message::count_mismatch(std::size_t found, std::size_t expected) const {
  throw Error(Errc::kTypeMismatch, "unpack: the array has " + std::to_string(found) +
                                       " elements but the destination holds " +
                                       std::to_string(expected) +
                                       "; use unpack_vector() when the length varies");
}

Message& Message::pack(std::string_view s) {
  put_type(PackType::kString, false);
  put_count(s.size());
  put_raw(s.data(), s.size());
  return *this;
}

Message& Message::pack_bytes(std::span<const std::byte> bytes) {
  put_type(PackType::kBytes, false);
  put_count(bytes.size());
  put_raw(bytes.data(), bytes.size());
  return *this;
}

Message& Message::pack(const std::vector<bool>& values) {
  put_type(PackType::kBool, true);
  put_count(values.size());
  std::size_t at = data_.size();
  data_.resize(at + values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    data_[at + i] = static_cast<std::byte>(values[i] ? 1 : 0);
  return *this;
}

Message& Message::pack(std::span<const std::string> values) {
  put_type(PackType::kString, true);
  put_count(values.size());
  for (const auto& s : values) {
    put_count(s.size());
    put_raw(s.data(), s.size());
  }
  return *this;
}

std::string Message::unpack_string() {
  detail::PosGuard guard(pos_);
  expect(PackType::kString, false);
  std::uint32_t n = get_count();
  need(n);
  std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
  pos_ += n;
  guard.done = true;
  return s;
}

std::vector<std::byte> Message::unpack_bytes() {
  detail::PosGuard guard(pos_);
  expect(PackType::kBytes, false);
  std::uint32_t n = get_count();
  need(n);
  std::vector<std::byte> b(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
                           data_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
  pos_ += n;
  guard.done = true;
  return b;
}

std::vector<std::string> Message::unpack_strings() {
  detail::PosGuard guard(pos_);
  expect(PackType::kString, true);
  std::uint32_t n = get_count();
  need(static_cast<std::size_t>(n) * sizeof(std::uint32_t));  // each string has a length
  std::vector<std::string> out;
  out.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t len = get_count();
    need(len);
    out.emplace_back(reinterpret_cast<const char*>(data_.data() + pos_), len);
    pos_ += len;
  }
  guard.done = true;
  return out;
}

}  // namespace cohort
