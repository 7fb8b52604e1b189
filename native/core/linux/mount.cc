// Read-only bind mounts for Linux: new mount API first, classic mount(2)
// when the kernel lacks it, lazy detach, and inspection by statx mount ids.
#include "../internal.h"
#include "sys.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

namespace blx {

namespace {

// The open_tree clone is detached until move_mount, so read-only is in place
// (submounts included) before anything can see the tree.
Error bind_new_api(const std::string& source, const std::string& target) {
  Fd tree(sys::open_tree(AT_FDCWD, source.c_str(),
                         sys::kOpenTreeClone | sys::kOpenTreeCloexec | sys::kAtRecursive |
                             AT_SYMLINK_NOFOLLOW));
  if (!tree.valid()) return fail_errno("open_tree", source);

  sys::MountAttr ro{};
  ro.attr_set = sys::kMountAttrRdonly;
  if (sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | sys::kAtRecursive, &ro) != 0) {
    return fail_errno("mount_setattr", source);
  }
  if (sys::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), sys::kMoveMountFEmptyPath) != 0) {
    return fail_errno("move_mount", source, target);
  }
  // Propagation only after the move: attaching under a shared parent makes
  // the new mount shared again, and we want a pure slave of mounts/.
  sys::MountAttr slave{};
  slave.propagation = MS_SLAVE;
  if (sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | sys::kAtRecursive, &slave) != 0) {
    Error e = fail_errno("mount_setattr", target);
    ::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    return e;
  }
  return {};
}

// Flags a bind remount must repeat: in a user namespace the kernel locks
// nosuid/nodev/noexec and the atime mode of mounts inherited from outside,
// and a remount that drops them fails with EPERM.
unsigned long locked_flags(unsigned long st) {
  unsigned long f = 0;
  if (st & ST_NOSUID) f |= MS_NOSUID;
  if (st & ST_NODEV) f |= MS_NODEV;
  if (st & ST_NOEXEC) f |= MS_NOEXEC;
  if (st & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st & ST_NOATIME) {
    f |= MS_NOATIME;
  } else if (st & ST_RELATIME) {
    f |= MS_RELATIME;
  } else {
    f |= MS_STRICTATIME;
  }
  return f;
}

Error remount_readonly(const std::string& mount_point) {
  struct statfs sf;
  if (::statfs(mount_point.c_str(), &sf) != 0) return fail_errno("statfs", mount_point);
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(static_cast<unsigned long>(sf.f_flags));
  if (::mount(nullptr, mount_point.c_str(), nullptr, flags, nullptr) != 0) {
    return fail_errno("mount", mount_point);
  }
  return {};
}

// Every mount at or below target, made read-only one by one: the classic
// API has no recursive read-only. Uses mountinfo (legacy path only).
Error remount_tree_readonly(const std::string& target) {
  std::vector<MountEntry> mounts;
  if (Error e = mounts_under(target, &mounts)) return e;
  if (mounts.empty()) return fail(EINVAL, "mount", target);
  // mounts_under lists deepest first; parents first is the natural order.
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    if (Error e = remount_readonly(it->mount_point)) return e;
  }
  return {};
}

Error bind_legacy(const std::string& source, const std::string& target) {
  // Mount onto the directory we checked, not whatever the path names by the
  // time mount(2) resolves it: an O_PATH fd with O_NOFOLLOW pins it.
  Fd at(::open(target.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!at.valid()) return fail_errno("open", target);
  char pinned[64];
  std::snprintf(pinned, sizeof pinned, "/proc/self/fd/%d", at.get());
  if (::mount(source.c_str(), pinned, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return fail_errno("mount", source, target);
  }
  Error e;
  if (::mount(nullptr, target.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    e = fail_errno("mount", target);
  } else {
    e = remount_tree_readonly(target);
  }
  if (e) ::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
  return e;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t k = 1; k <= 3; k++) {
        char c = s[i + k];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

Error read_file(const char* path, std::string* out) {
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("open", path);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", path);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  return {};
}

bool is_mount_point(const std::string& path) {
  FileStat st;
  return !stat_at(AT_FDCWD, path.c_str(), false, &st, path) && mounted_at(path, st);
}

}  // namespace

bool new_mount_api_available() {
  // An invalid call tells ENOSYS (absent) from EBADF/EINVAL (present).
  int rc = sys::open_tree(-1, "", 0);
  if (rc >= 0) {
    ::close(rc);
    return true;
  }
  if (errno == ENOSYS) return false;
  sys::MountAttr attr{};
  rc = sys::mount_setattr(-1, "", AT_EMPTY_PATH, &attr);
  return !(rc != 0 && errno == ENOSYS);
}

Error bind_readonly(const std::string& source, const std::string& target, bool force_legacy,
                    BindMethod* used) {
  if (!force_legacy) {
    Error e = bind_new_api(source, target);
    if (!e) {
      *used = BindMethod::kNewApi;
      return e;
    }
    // Kernels 5.2-5.11 have open_tree but no mount_setattr: also legacy.
    // EPERM/EACCES: a seccomp profile may deny the new syscalls while
    // allowing mount(2); try it before anyone falls back to a symlink.
    if (e.code != ENOSYS && e.code != EPERM && e.code != EACCES) return e;
    if (e.code != ENOSYS) {
      Error legacy = bind_legacy(source, target);
      if (!legacy) {
        *used = BindMethod::kLegacy;
        return legacy;
      }
      return e.code == EPERM && legacy.code == EPERM ? e : legacy;
    }
  }
  *used = BindMethod::kLegacy;
  return bind_legacy(source, target);
}

Error reseal_readonly(const std::string& target, bool force_legacy) {
  if (!force_legacy) {
    Fd tree(sys::open_tree(AT_FDCWD, target.c_str(), sys::kOpenTreeCloexec | AT_SYMLINK_NOFOLLOW));
    if (tree.valid()) {
      sys::MountAttr ro{};
      ro.attr_set = sys::kMountAttrRdonly;
      if (sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | sys::kAtRecursive, &ro) == 0) return {};
      if (errno != ENOSYS) return fail_errno("mount_setattr", target);
    } else if (errno != ENOSYS) {
      return fail_errno("open_tree", target);
    }
  }
  return remount_tree_readonly(target);
}

Error unmount(const std::string& target, bool* was_mounted) {
  *was_mounted = false;
  // Loop: two racing binders (without the box lock) could have stacked mounts.
  for (int i = 0; i < 64; i++) {
    if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
      *was_mounted = true;
      continue;
    }
    int err = errno;
    if (err == EINVAL || err == ENOENT) return {};
    if (err == EPERM && !is_mount_point(target)) return {};  // unprivileged: EPERM comes before "not mounted"
    return fail(err, "umount2", target);
  }
  return fail(EBUSY, "umount2", target);
}

Error mounts_under(const std::string& prefix, std::vector<MountEntry>* out) {
  out->clear();
  char resolved[PATH_MAX];
  if (::realpath(prefix.c_str(), resolved) == nullptr) return fail_errno("realpath", prefix);
  std::string root = resolved;
  std::string text;
  if (Error e = read_file("/proc/self/mountinfo", &text)) return e;

  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    // id parent major:minor root mount-point options [optional...] - fstype source super
    std::vector<std::string> f;
    size_t a = 0;
    while (a <= line.size()) {
      size_t b = line.find(' ', a);
      if (b == std::string::npos) b = line.size();
      f.push_back(line.substr(a, b - a));
      a = b + 1;
    }
    if (f.size() < 7) continue;
    std::string mp = unescape_mountinfo(f[4]);
    bool inside = mp == root || (mp.size() > root.size() && mp.compare(0, root.size(), root) == 0 &&
                                 (root == "/" || mp[root.size()] == '/'));
    if (!inside) continue;
    MountEntry m;
    m.mount_id = std::strtoull(f[0].c_str(), nullptr, 10);
    m.mount_point = mp;
    m.read_only = f[5] == "ro" || f[5].compare(0, 3, "ro,") == 0;
    for (size_t i = 6; i + 1 < f.size(); i++) {
      if (f[i] == "-") {
        m.fs_type = f[i + 1];
        break;
      }
    }
    out->push_back(std::move(m));
  }
  // mountinfo lists parents before children and older mounts before the
  // ones stacked on them: reversed, it is a safe unmount order.
  std::reverse(out->begin(), out->end());
  return {};
}

}  // namespace blx
