// Mount-point questions answered by walking from a trusted directory fd,
// never by trusting a path string twice.
#include "../internal.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fcntl.h>

namespace blx {

bool mountinfo_lists(const std::string& path) {
  std::vector<MountEntry> mounts;
  if (mounts_under(path, &mounts)) return true;
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) return true;
  for (const MountEntry& m : mounts) {
    if (m.mount_point == real) return true;
  }
  return false;
}

Error unmount_beneath(const std::string& root, const std::string& rel, uint64_t mount_id, bool* detached) {
  *detached = false;
  if (rel.empty() || rel[0] == '/') return fail(EINVAL, "umount2", join_path(root, rel));
  Fd cur(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) return fail_errno("open", root);
  std::string walked = root;
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string comp = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (comp.empty() || comp == "." || comp == "..") return fail(EINVAL, "umount2", join_path(root, rel));
    if (slash == std::string::npos) {
      // The last component: is the mount we listed still the one here?
      FileStat st;
      std::string where = join_path(walked, comp);
      if (Error e = stat_at(cur.get(), comp.c_str(), false, &st, where)) return e.code == ENOENT ? Error{} : e;
      if (!st.mount_id_known) {
        Error e = fail(ENOTSUP, "statx", where);
        e.detail = "no mount id on this kernel: cannot verify";
        return e;
      }
      if (st.mount_id != mount_id) return {};  // moved or already gone
      if (Error e = detach_mount_at(cur.get(), comp.c_str(), where)) return e;
      *detached = true;
      return {};
    }
    // Never through a symlink: a swapped component fails ELOOP/ENOTDIR.
    Fd next(::openat(cur.get(), comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    walked = join_path(walked, comp);
    if (!next.valid()) return errno == ENOENT ? Error{} : fail_errno("openat", walked);
    cur = std::move(next);
    start = slash + 1;
  }
}

}  // namespace blx
