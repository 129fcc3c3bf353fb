// cohort/error.hpp — the exception thrown by the public C++ API.
//
//   try { session.send(tid, 1, msg); }
//   catch (const cohort::Error& e) {
//     if (e.errc() == cohort::Errc::kNoSuchTask) ...   // e.what() says what to do
//   }
#pragma once

#include <cohort/errc.hpp>

#include <string>
#include <system_error>

namespace cohort {

class Error : public std::system_error {
 public:
  Error(Errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
  Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
};

}  // namespace cohort
