#include "base/status.hpp"

#include <cstring>

namespace cohort {

std::string Status::message() const {
  return message_ ? *message_ : std::string(errc_message(code_));
}

std::string Status::to_string() const {
  std::string s(errc_message(code_));
  if (message_) {
    s += ": ";
    s += *message_;
  }
  return s;
}

Status& Status::with_context(std::string_view context) {
  if (is_ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message();
  message_ = std::make_unique<std::string>(std::move(m));
  return *this;
}

Status errno_status(Errc code, std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return Status(code, std::move(m));
}

}  // namespace cohort
