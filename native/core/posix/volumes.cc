// Single-file volumes: a host file a box's guest sees as one file, staged
// into user-volumes/uservol{index}/{name} of the guest share (virtio-fs
// shares directories only). Read-write is a hard link (guest writes land in
// the source); read-only is a copy (a boot-time snapshot). Either way the
// entry appears by a rename, so the guest share never shows a half-made one.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "../internal.h"

namespace blx {

namespace {

constexpr const char* kTmpSuffix = ".staging-tmp";

// The source, without following a symlink at its name and without waiting
// on a FIFO: only a regular file is staged.
Error open_volume_source(const std::string& path, Fd* out, FileStat* st) {
  out->reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!out->valid()) {
    if (errno == ELOOP) return fail_reason(ELOOP, Reason::kSymlink, "open", path);
    return fail_errno("open", path);
  }
  if (Error e = stat_at(out->get(), "", false, st, path)) return e;
  if (!S_ISREG(st->mode)) {
    return fail_reason(S_ISDIR(st->mode) ? EISDIR : EINVAL, Reason::kNotRegularFile, "open", path, st->mode & S_IFMT);
  }
  return {};
}

// Hard-link the opened file (not whatever its name means by now) as
// dirfd/name. Linux links the fd itself; elsewhere the name is linked and
// checked to be the same inode afterwards.
Error link_opened(int src_fd, const FileStat& src, const std::string& src_path, int dirfd, const char* name,
                  const std::string& dst_display) {
#if defined(__linux__)
  (void)src;  // the fd itself is linked: nothing to compare
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc's link of the fd works
  // for everyone else.
  if (::linkat(src_fd, "", dirfd, name, AT_EMPTY_PATH) == 0) return {};
  if (errno != ENOENT && errno != EPERM) return fail_errno("link", src_path, dst_display);
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", src_fd);
  if (::linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) != 0) return fail_errno("link", src_path, dst_display);
  return {};
#else
  (void)src_fd;
  if (::linkat(AT_FDCWD, src_path.c_str(), dirfd, name, 0) != 0) return fail_errno("link", src_path, dst_display);
  FileStat linked;
  if (Error e = stat_at(dirfd, name, false, &linked, dst_display)) return e;
  if (!same_inode(linked, src)) {
    ::unlinkat(dirfd, name, 0);
    return fail(EAGAIN, "link", src_path, dst_display);  // replaced since it was opened
  }
  return {};
#endif
}

Error sync_fd(int fd, const std::string& display) {
  if (::fsync(fd) != 0) return fail_errno("fsync", display);
  return {};
}

}  // namespace

Error box_stage_volume_file(const BoxRef& ref, bool isolate, const std::string& src_path, uint32_t index,
                            bool read_only, bool may_block, StagedVolume* out) {
  *out = StagedVolume{};
  std::string src_dir, name;
  split_path(src_path, &src_dir, &name);
  if (src_path.empty() || src_path[0] != '/' || !is_plain_name(name)) return fail(EINVAL, "open", src_path);
  Fd src;
  FileStat st;
  if (Error e = open_volume_source(src_path, &src, &st)) return e;
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  // The host-writable side of the guest share: mounts/ when isolating
  // (the guest sees it read-only-bound at shared/), else shared/ itself.
  const char* side = isolate ? "mounts" : "shared";
  OwnedDir share;
  if (Error e = open_dir_beneath(d.box, side, Trust::kNone, &share, nullptr)) {
    if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
    return e;
  }
  out->rel = "user-volumes/uservol" + std::to_string(index);
  OwnedDir dir;
  if (Error e = make_dir_beneath(share, out->rel, 0755, Trust::kNone, &dir, nullptr)) return e;
  const std::string dst = dir.child(name);
  const std::string tmp = name + kTmpSuffix;
  out->rel += "/" + name;
  out->bytes = st.size;

  if (!read_only) {
    // Already this very file: nothing to replace (a rename onto another
    // link of the same inode would do nothing and leave the temp behind).
    FileStat cur;
    Error ce = stat_at(dir.get(), name.c_str(), false, &cur, dst);
    if (ce && ce.code != ENOENT) return ce;
    out->linked = true;
    if (!ce && same_inode(cur, st)) return {};
  }
  // A temp from an interrupted staging goes first; a directory there is
  // not ours to remove.
  if (::unlinkat(dir.get(), tmp.c_str(), 0) != 0 && errno != ENOENT) {
    return fail_errno("unlink", dir.child(tmp));
  }
  Error e;
  if (!read_only) {
    e = link_opened(src.get(), st, src_path, dir.get(), tmp.c_str(), dst);
    if (e) return e;
  } else {
    Fd copy;
    if ((e = clone_into(src.get(), st, dir.get(), tmp.c_str(), CloneMode::kAuto, src_path, dst, &out->method, &copy))) {
      return e;
    }
    // The source's permission bits, as a copy keeps them; durable before
    // it replaces the old snapshot.
    if (::fchmod(copy.get(), static_cast<mode_t>(st.mode & 07777)) != 0) {
      e = fail_errno("fchmod", dst);
    } else {
      e = sync_fd(copy.get(), dst);
    }
  }
  if (!e && ::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
    e = fail_errno("rename", dir.child(tmp), dst);
  }
  if (e) {
    ::unlinkat(dir.get(), tmp.c_str(), 0);
    return e;
  }
  return sync_fd(dir.get(), dir.path);
}

}  // namespace blx
