// clone_into() for Linux: FICLONE, then copy_file_range, then read/write.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "../internal.h"

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

namespace blx {

namespace {

// errnos with which a filesystem says "no reflink here".
bool reflink_unsupported(int err) {
  return err == EOPNOTSUPP || err == ENOTSUP || err == EINVAL || err == ENOTTY || err == ENOSYS;
}

// copy_file_range; *unsupported when the very first call says it cannot
// (then nothing was written and read/write takes over).
Error copy_range(int src_fd, int dst_fd, uint64_t size, const std::string& src, const std::string& dst,
                 bool* unsupported) {
  *unsupported = false;
  loff_t in = 0;
  loff_t out = 0;
  while (static_cast<uint64_t>(in) < size) {
    ssize_t n = ::copy_file_range(src_fd, &in, dst_fd, &out, size - static_cast<uint64_t>(in), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (in == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF)) {
        *unsupported = true;
        return {};
      }
      return fail_errno("copy_file_range", src, dst);
    }
    if (n == 0) break;  // the source shrank under us
  }
  return {};
}

// A real data copy without reflink (mode 'never'), in the kernel.
Error copy_sendfile(int src_fd, int dst_fd, uint64_t size, const std::string& src, const std::string& dst,
                    bool* unsupported) {
  *unsupported = false;
  off_t in = 0;
  while (static_cast<uint64_t>(in) < size) {
    ssize_t n = ::sendfile(dst_fd, src_fd, &in, size - static_cast<uint64_t>(in));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (in == 0 && (errno == EINVAL || errno == ENOSYS)) {
        *unsupported = true;
        return {};
      }
      return fail_errno("sendfile", src, dst);
    }
    if (n == 0) break;
  }
  return {};
}

// BOXLITE_LAYOUT_CLONE=clonefile: make the copy as macOS's clonefile does,
// in one step by name and already carrying the source's mode, then adopt it
// as darwin/clone.cc does, so the Linux suite runs that path (a 0555 shim
// installed by a non-root user). Mode auto only: the data is copied.
bool clone_like_clonefile() {
  static const bool on = [] {
    const char* v = ::getenv("BOXLITE_LAYOUT_CLONE");
    return v != nullptr && std::strcmp(v, "clonefile") == 0;
  }();
  return on;
}

Error clone_by_name(int src_fd, const FileStat& src, int dirfd, const char* tmp_name, const std::string& src_display,
                    const std::string& dst_display, Fd* out, int* refused) {
  Fd made(::openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!made.valid()) return fail_errno("open", dst_display);
  Error e = copy_read_write(src_fd, made.get(), src_display, dst_display);
  // clonefile keeps the mode but drops set-id bits.
  if (!e && ::fchmod(made.get(), src.mode & 0777) != 0) e = fail_errno("fchmod", dst_display);
  made.reset();
  if (e) {
    ::unlinkat(dirfd, tmp_name, 0);
    return e;
  }
  return adopt_clone_at(dirfd, tmp_name, dst_display, out, refused);
}

}  // namespace

Error clone_into(int src_fd, const FileStat& src, int dirfd, const char* tmp_name, CloneMode mode,
                 const std::string& src_display, const std::string& dst_display, CloneMethod* method, Fd* out) {
  if (mode == CloneMode::kAuto && clone_like_clonefile()) {
    int refused = 0;
    if (Error e = clone_by_name(src_fd, src, dirfd, tmp_name, src_display, dst_display, out, &refused)) return e;
    *method = CloneMethod::kCopy;
    if (refused == 0) return {};
    // Unusable to us and removed: a plain copy below, as on macOS.
  }
  Fd dst(::openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!dst.valid()) return fail_errno("open", dst_display);

  Error e;
  if (mode != CloneMode::kNever) {
    if (::ioctl(dst.get(), FICLONE, src_fd) == 0) {
      *method = CloneMethod::kReflink;
      *out = std::move(dst);
      return {};
    }
    int err = errno;
    if (mode == CloneMode::kForce) {
      e = fail(err == EXDEV ? EXDEV : reflink_unsupported(err) ? ENOTSUP : err, "ioctl", src_display, dst_display);
      e.reason = Reason::kNoReflink;
    } else if (err != EXDEV && !reflink_unsupported(err)) {
      e = fail(err, "ioctl", src_display, dst_display);
    }
  }
  if (!e) {
    bool unsupported = true;
    if (mode == CloneMode::kAuto) {
      e = copy_range(src_fd, dst.get(), src.size, src_display, dst_display, &unsupported);
      if (!e && !unsupported) *method = CloneMethod::kCopyFileRange;
    } else {
      e = copy_sendfile(src_fd, dst.get(), src.size, src_display, dst_display, &unsupported);
      if (!e && !unsupported) *method = CloneMethod::kCopy;
    }
    if (!e && unsupported) {
      e = copy_read_write(src_fd, dst.get(), src_display, dst_display);
      *method = CloneMethod::kCopy;
    }
  }
  if (e) {
    dst.reset();
    ::unlinkat(dirfd, tmp_name, 0);
    return e;
  }
  *out = std::move(dst);
  return {};
}

}  // namespace blx
