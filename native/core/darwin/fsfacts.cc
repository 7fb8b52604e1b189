// probe() for macOS: stat + statfs.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/param.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

Error probe(const std::string& path, FsFacts* out) {
  FileStat st;
  if (Error e = stat_at(AT_FDCWD, path.c_str(), true, &st, path)) return e;
  struct statfs sf;
  if (::statfs(path.c_str(), &sf) != 0) return fail_errno("statfs", path);
  out->dev = Device{st.dev_major, st.dev_minor};
  out->mount_id = 0;
  out->mount_id_known = false;
  out->fs_magic = sf.f_type;
  out->fs_name = sf.f_fstypename;
  out->read_only = (sf.f_flags & MNT_RDONLY) != 0;
  out->nosuid = (sf.f_flags & MNT_NOSUID) != 0;
  out->nodev = (sf.f_flags & MNT_NODEV) != 0;
  out->noexec = (sf.f_flags & MNT_NOEXEC) != 0;
  out->is_mount_root = path == sf.f_mntonname;
  if (!out->is_mount_root) {
    char real[MAXPATHLEN];
    if (::realpath(path.c_str(), real) != nullptr) out->is_mount_root = std::string(real) == sf.f_mntonname;
  }
  return {};
}

Error extents_shared_fd(int, const std::string&, int* out) {
  *out = -1;  // APFS does not report shared extents to user space
  return {};
}

}  // namespace blx
