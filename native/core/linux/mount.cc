// Read-only bind mounts for Linux on held fds: the new mount API first,
// classic mount(2) through /proc/self/fd paths when the kernel lacks it,
// and the mountinfo reader the classic path (and gc) needs.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../internal.h"
#include "sys.h"

namespace blx {

namespace {

std::string proc_fd(int fd) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
  return buf;
}

// The open_tree clone is detached until move_mount, so read-only is in place
// (submounts included) before anything can see the tree.
Error bind_new_api(Dir source_dir, Dir target_parent, const char* target_name) {
  const std::string& source = source_dir.path;
  const std::string target = target_parent.child(target_name);
  const int target_dir = target_parent.fd;
  Fd tree(sys::open_tree(source_dir.fd, "",
                         sys::kOpenTreeClone | sys::kOpenTreeCloexec | sys::kAtRecursive | AT_EMPTY_PATH));
  if (!tree.valid()) return fail_errno("open_tree", source);
  sys::MountAttr ro{};
  ro.attr_set = sys::kMountAttrRdonly;
  if (sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | sys::kAtRecursive, &ro) != 0) {
    return fail_errno("mount_setattr", source);
  }
  // No MOVE_MOUNT_T_SYMLINKS: target_name itself is never followed.
  if (sys::move_mount(tree.get(), "", target_dir, target_name, sys::kMoveMountFEmptyPath) != 0) {
    return fail_errno("move_mount", source, target);
  }
  // Propagation only after the move: attaching under a shared parent makes
  // the new mount shared again, and we want a pure slave of mounts/.
  sys::MountAttr slave{};
  slave.propagation = MS_SLAVE;
  if (sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | sys::kAtRecursive, &slave) != 0) {
    Error e = fail_errno("mount_setattr", target);
    detach_mount_at(target_dir, target_name, target);
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

// Every mount at or below the mount root `fd`, made read-only one by one
// (parents first): the classic API has no recursive read-only. Each is
// reached beneath fd without symlinks and addressed through its own fd.
Error remount_tree_readonly(Dir root) {
  std::vector<MountBelow> mounts;
  if (Error e = mounts_below(root, &mounts)) return e;
  if (mounts.empty()) return fail(EINVAL, "mount", root.path);
  for (const MountBelow& m : mounts) {
    OwnedDir at;
    if (Error e = open_dir_beneath(root, m.rel, Trust::kNone, &at, nullptr)) return e;
    const std::string& where = at.path;
    struct statfs sf;
    if (::fstatfs(at.get(), &sf) != 0) return fail_errno("statfs", where);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(static_cast<unsigned long>(sf.f_flags));
    if (::mount(nullptr, proc_fd(at.get()).c_str(), nullptr, flags, nullptr) != 0) {
      return fail_errno("mount", where);
    }
  }
  return {};
}

Error bind_legacy(Dir source_dir, Dir target_parent, const char* target_name) {
  const std::string& source = source_dir.path;
  const std::string target = target_parent.child(target_name);
  const int target_dir = target_parent.fd;
  // Mount onto the directory we hold, not whatever the path names by the
  // time mount(2) resolves it: both ends go through /proc/self/fd.
  Fd at(::openat(target_dir, target_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!at.valid()) return fail_errno("openat", target);
  if (::mount(proc_fd(source_dir.fd).c_str(), proc_fd(at.get()).c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return fail_errno("mount", source, target);
  }
  // The fd above names the covered directory; the new mount's root is what
  // a fresh lookup of the name finds now.
  Error e;
  Fd root(::openat(target_dir, target_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) {
    e = fail_errno("openat", target);
  } else if (::mount(nullptr, proc_fd(root.get()).c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    e = fail_errno("mount", target);
  } else {
    e = remount_tree_readonly(Dir{root.get(), target});
  }
  if (e) detach_mount_at(target_dir, target_name, target);
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

Error read_mountinfo(std::string* out) {
  Fd fd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("open", "/proc/self/mountinfo");
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", "/proc/self/mountinfo");
    }
    if (n == 0) return {};
    out->append(buf, static_cast<size_t>(n));
  }
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

Error bind_readonly_at(Dir source, Dir target_parent, const char* target_name, bool force_legacy, BindMethod* used) {
  // BOXLITE_LAYOUT_NO_MOUNTS=1 answers as macOS does (no bind mounts), so
  // Linux tests run the fallback every Mac takes.
  static const bool no_mounts = [] {
    const char* v = ::getenv("BOXLITE_LAYOUT_NO_MOUNTS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  if (no_mounts) {
    Error e = fail(ENOTSUP, "mount", source.path, target_parent.child(target_name));
    e.reason = Reason::kUnsupported;
    return e;
  }
  if (!force_legacy) {
    Error e = bind_new_api(source, target_parent, target_name);
    if (!e) {
      *used = BindMethod::kNewApi;
      return e;
    }
    // Kernels 5.2-5.11 have open_tree but no mount_setattr: also legacy.
    // EPERM/EACCES: a seccomp profile may deny the new syscalls while
    // allowing mount(2); try it before anyone falls back to a symlink.
    if (e.code != ENOSYS && e.code != EPERM && e.code != EACCES) return e;
    if (e.code != ENOSYS) {
      Error legacy = bind_legacy(source, target_parent, target_name);
      if (!legacy) {
        *used = BindMethod::kLegacy;
        return legacy;
      }
      return e.code == EPERM && legacy.code == EPERM ? e : legacy;
    }
  }
  *used = BindMethod::kLegacy;
  return bind_legacy(source, target_parent, target_name);
}

Error reseal_readonly_at(Dir root, bool force_legacy) {
  if (!force_legacy) {
    sys::MountAttr ro{};
    ro.attr_set = sys::kMountAttrRdonly;
    if (sys::mount_setattr(root.fd, "", AT_EMPTY_PATH | sys::kAtRecursive, &ro) == 0) return {};
    if (errno != ENOSYS) return fail_errno("mount_setattr", root.path);
  }
  return remount_tree_readonly(root);
}

Error mount_read_only(Dir root, bool* read_only) {
  struct statvfs sv;
  if (::fstatvfs(root.fd, &sv) != 0) return fail_errno("statvfs", root.path);
  *read_only = (sv.f_flag & ST_RDONLY) != 0;
  return {};
}

Error fd_path(int fd, const std::string& display, std::string* out) {
  if (!read_link_at(AT_FDCWD, proc_fd(fd).c_str(), out)) return fail_errno("readlink", display);
  return {};
}

Error open_typed_file(int dirfd, const char* name, int extra, bool block_ok, const std::string& display, Fd* out,
                      FileStat* st) {
  // O_PATH opens nothing of the file itself: no driver's open runs.
  Fd path(::openat(dirfd, name, O_PATH | O_CLOEXEC | extra));
  if (!path.valid()) return fail_errno("open", display);
  if (Error e = stat_at(path.get(), "", false, st, display)) return e;
  if (Error e = check_typed_file(*st, (extra & O_NOFOLLOW) != 0, block_ok, display)) return e;
  // The magic link reopens that very file, now for reading.
  out->reset(::open(proc_fd(path.get()).c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!out->valid()) return fail_errno("open", display);
  return {};
}

void parse_mountinfo(const std::string& text, const std::string& root, std::vector<MountBelow>* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    // id parent major:minor root mount-point options [optional...] - fstype source super
    std::vector<std::string> f;
    size_t a = pos;
    while (a <= eol && f.size() < 6) {
      size_t b = text.find(' ', a);
      if (b == std::string::npos || b > eol) b = eol;
      f.push_back(text.substr(a, b - a));
      a = b + 1;
    }
    pos = eol + 1;
    if (f.size() < 6) continue;
    std::string mp = unescape_mountinfo(f[4]);
    bool inside = mp == root || (mp.size() > root.size() && mp.compare(0, root.size(), root) == 0 &&
                                 (root == "/" || mp[root.size()] == '/'));
    if (!inside) continue;
    MountBelow m;
    m.mount_id = std::strtoull(f[0].c_str(), nullptr, 10);
    m.rel = mp == root ? std::string() : mp.substr(root == "/" ? 1 : root.size() + 1);
    // Relative, always: a doubled slash after the root ("/r//x") must not
    // make it absolute for whoever joins it or resolves it beneath the root.
    const size_t start = m.rel.find_first_not_of('/');
    m.rel.erase(0, start == std::string::npos ? m.rel.size() : start);
    m.read_only = f[5] == "ro" || f[5].compare(0, 3, "ro,") == 0;
    out->push_back(std::move(m));
  }
}

Error mounts_below(Dir top, std::vector<MountBelow>* out) {
  out->clear();
  std::string root;
  if (Error e = fd_path(top.fd, top.path, &root)) return e;
  std::string text;
  if (Error e = read_mountinfo(&text)) return e;
  parse_mountinfo(text, root, out);
  return {};
}

}  // namespace blx
