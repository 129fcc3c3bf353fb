// The error category and the name/message tables generated from COHORT_ERRC_LIST.
#include <cohort/errc.hpp>

#include <string>

namespace cohort {

std::string_view errc_message(Errc code) noexcept {
  switch (code) {
#define COHORT_ERRC_MSG(name, value, msg) \
  case Errc::name:                        \
    return msg;
    COHORT_ERRC_LIST(COHORT_ERRC_MSG)
#undef COHORT_ERRC_MSG
  }
  return "unknown error";
}

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
#define COHORT_ERRC_NAME(name, value, msg) \
  case Errc::name:                         \
    return std::string_view(#name).substr(1);
    COHORT_ERRC_LIST(COHORT_ERRC_NAME)
#undef COHORT_ERRC_NAME
  }
  return "Unknown";
}

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "cohort"; }
  std::string message(int ev) const override {
    return std::string(errc_message(static_cast<Errc>(ev)));
  }
};
}  // namespace

const std::error_category& cohort_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace cohort
