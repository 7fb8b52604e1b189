// macOS has no bind mounts: bind_readonly answers ENOTSUP and the TypeScript
// side makes shared/ a symlink to mounts/ (SPEC §2, reported, never silent).
#include "../internal.h"

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/stat.h>

namespace blx {

bool new_mount_api_available() { return false; }

Error bind_readonly(const std::string& source, const std::string& target, bool, BindMethod*) {
  return fail(ENOTSUP, "mount", source, target);
}

Error reseal_readonly(const std::string& target, bool) { return fail(ENOTSUP, "mount", target); }

Error unmount(const std::string& target, bool* was_mounted) {
  *was_mounted = false;
  for (int i = 0; i < 64; i++) {
    if (::unmount(target.c_str(), MNT_NOFOLLOW) == 0) {
      *was_mounted = true;
      continue;
    }
    if (errno == EINVAL || errno == ENOENT) return {};
    return fail_errno("unmount", target);
  }
  return fail(EBUSY, "unmount", target);
}

Error mounts_under(const std::string& prefix, std::vector<MountEntry>* out) {
  out->clear();
  char resolved[PATH_MAX];
  if (::realpath(prefix.c_str(), resolved) == nullptr) return fail_errno("realpath", prefix);
  std::string root = resolved;
  struct statfs* mounts = nullptr;
  int n = ::getmntinfo(&mounts, MNT_NOWAIT);
  if (n <= 0) return fail_errno("getmntinfo", prefix);
  for (int i = n - 1; i >= 0; i--) {
    std::string mp = mounts[i].f_mntonname;
    if (mp == root || (mp.size() > root.size() && mp.compare(0, root.size(), root) == 0 && mp[root.size()] == '/')) {
      out->push_back(MountEntry{0, mp, mounts[i].f_fstypename, (mounts[i].f_flags & MNT_RDONLY) != 0});
    }
  }
  return {};
}

}  // namespace blx
