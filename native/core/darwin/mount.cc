// macOS has no bind mounts: bind_readonly answers ENOTSUP and the TypeScript
// side makes shared/ a symlink to mounts/ (SPEC §2, reported, never silent).
#include "../internal.h"

#include <cerrno>
#include <climits>
#include <dirent.h>
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

Error inspect_shared(const std::string& source, const std::string& target, SharedState* out) {
  *out = SharedState{};
  FileStat t;
  if (Error e = stat_at(AT_FDCWD, target.c_str(), false, &t, target)) {
    if (e.code == ENOENT) return {};
    return e;
  }
  if (S_ISLNK(t.mode)) {
    out->kind = SharedKind::kSymlink;
    char buf[PATH_MAX];
    ssize_t n = ::readlink(target.c_str(), buf, sizeof buf);
    if (n < 0) return fail_errno("readlink", target);
    out->link_target.assign(buf, static_cast<size_t>(n));
    return {};
  }
  if (!S_ISDIR(t.mode)) {
    out->kind = SharedKind::kOther;
    return {};
  }
  FileStat p;
  std::string parent = dir_name(target);
  if (Error e = stat_at(AT_FDCWD, parent.c_str(), true, &p, parent)) return e;
  if (different_mount(t, p)) {
    out->kind = SharedKind::kMount;
    struct statfs sf;
    if (::statfs(target.c_str(), &sf) != 0) return fail_errno("statfs", target);
    out->read_only = (sf.f_flags & MNT_RDONLY) != 0;
    return {};
  }
  out->kind = SharedKind::kDirectory;
  DIR* d = ::opendir(target.c_str());
  if (d == nullptr) return fail_errno("opendir", target);
  out->empty = true;
  while (struct dirent* ent = ::readdir(d)) {
    const char* n = ent->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    out->empty = false;
    break;
  }
  ::closedir(d);
  return {};
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
      out->push_back(MountEntry{0, mp, mounts[i].f_fstypename});
    }
  }
  return {};
}

}  // namespace blx
