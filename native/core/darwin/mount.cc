// macOS has no bind mounts: bind_readonly_at answers ENOTSUP and the box
// operation makes shared/ a symlink to mounts/ (reported, never silent).
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdlib>

#include "../internal.h"

namespace blx {

bool new_mount_api_available() { return false; }

Error bind_readonly_at(Dir source, Dir target_parent, const char* target_name, bool, BindMethod*) {
  Error e = fail(ENOTSUP, "mount", source.path, target_parent.child(target_name));
  e.reason = Reason::kUnsupported;
  return e;
}

Error reseal_readonly_at(Dir root, bool) { return fail_reason(ENOTSUP, Reason::kUnsupported, "mount", root.path); }

Error mount_read_only(Dir root, bool* read_only) {
  struct statvfs sv;
  if (::fstatvfs(root.fd, &sv) != 0) return fail_errno("statvfs", root.path);
  *read_only = (sv.f_flag & ST_RDONLY) != 0;
  return {};
}

Error mounts_below(Dir top, std::vector<MountBelow>* out) {
  out->clear();
  const std::string& display = top.path;
  std::string root;
  if (Error e = fd_path(top.fd, display, &root)) return e;
  // getmntinfo() fills one static buffer per process and this runs on the
  // libuv pool (async gc, inspect): the _r_np form allocates ours, freed here.
  struct statfs* mounts = nullptr;
  int n = ::getmntinfo_r_np(&mounts, MNT_NOWAIT);
  if (n <= 0) return fail_errno("getmntinfo_r_np", display);
  struct FreeMounts {
    struct statfs* p;
    ~FreeMounts() { ::free(p); }
  } owned{mounts};
  for (int i = 0; i < n; i++) {
    std::string mp = mounts[i].f_mntonname;
    bool inside = mp == root || (mp.size() > root.size() && mp.compare(0, root.size(), root) == 0 &&
                                 (root == "/" || mp[root.size()] == '/'));
    if (!inside) continue;
    std::string rel = mp == root ? std::string() : mp.substr(root == "/" ? 1 : root.size() + 1);
    out->push_back(MountBelow{0, rel, (mounts[i].f_flags & MNT_RDONLY) != 0});
  }
  return {};
}

}  // namespace blx
