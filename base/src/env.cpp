#include "base/env.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>

#include "base/fd.hpp"

namespace cohort::env {

std::optional<std::string> get(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

Result<std::int64_t> get_int(const char* name, std::int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  std::int64_t out = 0;
  std::string_view s(v);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || p != s.data() + s.size())
    return Status(Errc::kInvalidArgument,
                  std::string(name) + "='" + v + "' is not an integer; unset it or give a number");
  return out;
}

std::string vm_name(std::string_view explicit_name) {
  if (!explicit_name.empty()) return std::string(explicit_name);
  if (auto v = get(kVm); v && !v->empty()) return *v;
  return "default";
}

namespace {
Status ensure_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return errno_status(Errc::kIoError, "mkdir(" + path + ")", errno);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno_status(Errc::kIoError, "stat(" + path + ")", errno);
  if (!S_ISDIR(st.st_mode))
    return Status(Errc::kPermissionDenied, path + " exists and is not a directory; remove it");
  if (st.st_uid != ::getuid())
    return Status(Errc::kPermissionDenied,
                  path + " belongs to another user; set COHORT_DIR to a directory of your own");
  if ((st.st_mode & 077) != 0 && ::chmod(path.c_str(), 0700) != 0)
    return errno_status(Errc::kPermissionDenied, "chmod(" + path + ")", errno);
  return Status();
}
}  // namespace

Result<std::string> vm_dir(std::string_view name, bool create) {
  if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..")
    return Status(Errc::kInvalidArgument,
                  "VM name '" + std::string(name) + "' is not valid; use letters, digits, - and _");
  std::string dir;
  if (auto d = get(kDir); d && !d->empty()) {
    dir = *d;
    if (create) COHORT_RETURN_IF_ERROR(ensure_private_dir(dir));
    return dir;
  }
  std::string base = "/tmp";
  if (auto x = get("XDG_RUNTIME_DIR"); x && !x->empty() && ::access(x->c_str(), W_OK) == 0) base = *x;
  std::string user_dir = base + "/cohort-" + std::to_string(::getuid());
  dir = user_dir + "/" + std::string(name);
  if (create) {
    COHORT_RETURN_IF_ERROR(ensure_private_dir(user_dir));
    COHORT_RETURN_IF_ERROR(ensure_private_dir(dir));
  }
  return dir;
}

Result<std::string> read_cookie(const std::string& dir) {
  std::string path = path_in(dir, kCookieName);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT)
      return Status(Errc::kNoVm, "no VM at " + dir + " (no cookie); start one with 'cohort start'");
    return errno_status(Errc::kPermissionDenied, "open(" + path + ")", errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status(Errc::kIoError, "fstat(" + path + ")", errno);
  if ((st.st_mode & 077) != 0 || st.st_uid != ::getuid())
    return Status(Errc::kPermissionDenied,
                  path + " is readable by others or not yours; remove it and restart the VM");
  std::string cookie(kCookieBytes, '\0');
  COHORT_RETURN_IF_ERROR(read_exact(fd.get(), cookie.data(), cookie.size()));
  return cookie;
}

Result<std::string> create_cookie(const std::string& dir) {
  std::string cookie(kCookieBytes, '\0');
  std::size_t got = 0;
  while (got < cookie.size()) {
    ssize_t n = ::getrandom(cookie.data() + got, cookie.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(Errc::kIoError, "getrandom", errno);
    }
    got += static_cast<std::size_t>(n);
  }
  std::string path = path_in(dir, kCookieName);
  std::string tmp = path + ".new";
  ::unlink(tmp.c_str());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return errno_status(Errc::kIoError, "create(" + tmp + ")", errno);
  COHORT_RETURN_IF_ERROR(write_all(fd.get(), cookie.data(), cookie.size()));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return errno_status(Errc::kIoError, "rename(" + tmp + ")", errno);
  return cookie;
}

}  // namespace cohort::env
