// Removal of a box tree that cannot be talked into deleting anything else:
// every step is relative to a directory fd we opened with O_NOFOLLOW, every
// entry is checked for being a mount before we descend, and symlinks are
// unlinked, never followed.
#include "../internal.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

namespace blx {

namespace {

constexpr int kMaxAttempts = 64;  // stacked mounts or a racing writer

struct Remover {
  bool detach_mounts;
  RemoveStats* stats;

  bool is_mount(const FileStat& st, const FileStat& parent) const {
    return (st.mount_root_known && st.mount_root) || different_mount(st, parent);
  }

  Error detach(int dirfd, const char* name, const std::string& display) {
    if (!detach_mounts) {
      Error e = fail(EBUSY, "umount2", display);
      e.detail = "mounted";
      return e;
    }
    if (Error e = detach_mount_at(dirfd, name, display)) {
      // Whatever the reason, the caller's answer is the same: it is still
      // mounted and nothing below it was touched.
      e.detail = std::string("umount2 failed: ") + std::strerror(e.code);
      e.code = EBUSY;
      return e;
    }
    stats->unmounted++;
    return {};
  }

  Error children(int fd, const FileStat& self, const std::string& display) {
    std::vector<DirEntry> entries;
    if (Error e = list_dir(fd, display, &entries)) return e;
    for (const DirEntry& d : entries) {
      if (Error e = entry(fd, d.name.c_str(), d.type, self, join_path(display, d.name))) return e;
    }
    return {};
  }

  // Remove dirfd/name. `type` is the d_type hint (DT_UNKNOWN when none).
  Error entry(int dirfd, const char* name, unsigned char type, const FileStat& parent,
              const std::string& display) {
    // Plain files go straight to unlinkat; only a surprise (EBUSY: a bind
    // mount on the file, EISDIR: swapped for a dir) costs a statx.
    if (type != DT_DIR && type != DT_UNKNOWN) {
      if (::unlinkat(dirfd, name, 0) == 0) {
        stats->entries++;
        return {};
      }
      if (errno == ENOENT) return {};
      if (errno != EBUSY && errno != EISDIR && errno != EPERM) return fail_errno("unlinkat", display);
    }
    for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
      FileStat st;
      if (Error e = stat_at(dirfd, name, false, &st, display)) {
        if (e.code == ENOENT) return {};
        return e;
      }
      if (is_mount(st, parent)) {
        if (Error e = detach(dirfd, name, display)) return e;
        continue;
      }
      if (!S_ISDIR(st.mode)) {
        if (::unlinkat(dirfd, name, 0) == 0) {
          stats->entries++;
          return {};
        }
        if (errno == ENOENT) return {};
        if (errno == EBUSY || errno == EISDIR) continue;
        return fail_errno("unlinkat", display);
      }
      Fd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) {
        if (errno == ENOENT) return {};
        if (errno == ELOOP || errno == ENOTDIR) continue;  // swapped since the statx
        return fail_errno("openat", display);
      }
      FileStat opened;
      if (Error e = stat_at(fd.get(), "", false, &opened, display)) return e;
      if (opened.ino != st.ino || different_mount(opened, st)) continue;  // swapped
      if (Error e = children(fd.get(), opened, display)) return e;
      if (::unlinkat(dirfd, name, AT_REMOVEDIR) == 0) {
        stats->entries++;
        return {};
      }
      if (errno == ENOENT) return {};
      if (errno == ENOTEMPTY || errno == EEXIST || errno == EBUSY) continue;  // a racing writer or a new mount
      return fail_errno("unlinkat", display);
    }
    return fail(EBUSY, "unlinkat", display);
  }
};

}  // namespace

Error remove_tree(const std::string& parent, const std::string& name, bool detach_mounts,
                  RemoveStats* stats) {
  *stats = RemoveStats{};
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return fail(EINVAL, "unlinkat", join_path(parent, name));
  }
  Fd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd.valid()) {
    if (errno == ENOENT) return {};
    return fail_errno("open", parent);
  }
  FileStat pst;
  if (Error e = stat_at(pfd.get(), "", false, &pst, parent)) return e;
  Remover r{detach_mounts, stats};
  return r.entry(pfd.get(), name.c_str(), DT_UNKNOWN, pst, join_path(parent, name));
}

}  // namespace blx
