#include "daemon/leftovers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <string_view>

#include "base/log.hpp"

namespace cohort::daemon {
namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "<pid>:<digits>:<digits>": libfabric's shm provider.
bool left_by(std::string_view name, std::string_view pid) {
  if (name.size() <= pid.size() || name.substr(0, pid.size()) != pid || name[pid.size()] != ':')
    return false;
  name.remove_prefix(pid.size() + 1);
  auto colon = name.find(':');
  return colon != std::string_view::npos && all_digits(name.substr(0, colon)) &&
         all_digits(name.substr(colon + 1));
}

}  // namespace

int remove_shm_leftovers(pid_t pid, const std::string& shm_dir) {
  DIR* dir = ::opendir(shm_dir.c_str());
  if (dir == nullptr) return 0;
  const std::string p = std::to_string(pid);
  int removed = 0;
  while (dirent* e = ::readdir(dir)) {
    if (!left_by(e->d_name, p)) continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (::unlinkat(::dirfd(dir), e->d_name, 0) == 0) {
      ++removed;
      COHORT_LOG_DEBUG("daemon.task") << "removed " << shm_dir << "/" << e->d_name
                                      << ", left behind by pid " << pid;
    }
  }
  ::closedir(dir);
  return removed;
}

}  // namespace cohort::daemon
