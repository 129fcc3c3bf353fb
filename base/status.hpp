// base/status.hpp — Status and Result<T>, the return types of every internal call.
//
// A Status is an Errc plus, on error, a message that names the object, the
// cause and the remedy. The message lives behind a pointer, so an OK Status
// is two words that are made, moved and dropped without touching the heap:
// every call on the message path returns one. Result<T> holds a value or a
// non-OK Status. Nothing below the public C++ API throws.
//
//   Result<int> open_socket(const std::string& path);
//   COHORT_ASSIGN_OR_RETURN(int fd, open_socket(path));
//   COHORT_RETURN_IF_ERROR(send_all(fd, bytes));
#pragma once

#include <cohort/errc.hpp>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace cohort {

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(Errc code) noexcept : code_(code) {}  // NOLINT: implicit so `return Errc::kRetry;` reads well
  Status(Errc code, std::string message)
      : code_(code),
        message_(message.empty() ? nullptr : std::make_unique<std::string>(std::move(message))) {}
  Status(const Status& o)
      : code_(o.code_), message_(o.message_ ? std::make_unique<std::string>(*o.message_) : nullptr) {}
  Status(Status&& o) noexcept = default;
  Status& operator=(const Status& o) {
    if (this != &o) {
      code_ = o.code_;
      message_ = o.message_ ? std::make_unique<std::string>(*o.message_) : nullptr;
    }
    return *this;
  }
  Status& operator=(Status&& o) noexcept = default;

  static Status ok() noexcept { return Status(); }
  /// Back to OK.
  void reset() noexcept {
    code_ = Errc::kOk;
    message_.reset();
  }

  bool is_ok() const noexcept { return code_ == Errc::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Errc code() const noexcept { return code_; }
  /// The detailed message, or the code's generic text when none was given.
  std::string message() const;
  /// "no such task: tid 0x100003 ..." — code text plus detail, for logs and errors.
  std::string to_string() const;

  /// Prefix the message with where it happened: "spawn 'foo': ".
  Status& with_context(std::string_view context);

  friend bool operator==(const Status& s, Errc c) noexcept { return s.code_ == c; }

 private:
  Errc code_ = Errc::kOk;
  std::unique_ptr<std::string> message_;  // null: the code's generic text
};

/// Status from errno after a failed system call: "connect(/run/x.sock): No such file".
Status errno_status(Errc code, std::string_view what, int err);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                  // NOLINT
  Result(Status status) : v_(std::move(status)) { check(); }  // NOLINT
  Result(Errc code) : v_(Status(code)) { check(); }           // NOLINT
  Result(Errc code, std::string msg) : v_(Status(code, std::move(msg))) { check(); }

  bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }

  const Status& status() const {
    static const Status kOkStatus;
    return is_ok() ? kOkStatus : std::get<1>(v_);
  }
  Status take_status() { return is_ok() ? Status() : std::move(std::get<1>(v_)); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check() {
    if (std::get<1>(v_).is_ok()) std::abort();  // a Result must not hold an OK status
  }
  std::variant<T, Status> v_;
};

}  // namespace cohort

#define COHORT_STATUS_CONCAT_INNER(a, b) a##b
#define COHORT_STATUS_CONCAT(a, b) COHORT_STATUS_CONCAT_INNER(a, b)

/// Return the Status of `expr` from the enclosing function when it is not OK.
#define COHORT_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    ::cohort::Status cohort_status_ = (expr);                \
    if (!cohort_status_.is_ok()) return cohort_status_;      \
  } while (0)

/// `COHORT_ASSIGN_OR_RETURN(auto fd, open_it());` — unwrap a Result or return its Status.
#define COHORT_ASSIGN_OR_RETURN(lhs, expr) \
  COHORT_ASSIGN_OR_RETURN_IMPL(COHORT_STATUS_CONCAT(cohort_result_, __LINE__), lhs, expr)
#define COHORT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.is_ok()) return tmp.take_status();        \
  lhs = std::move(tmp).value()
