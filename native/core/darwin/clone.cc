// clone_into() for macOS: clonefile (APFS), then fcopyfile.
#include <copyfile.h>
#include <fcntl.h>
#include <sys/clonefile.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

Error clone_into(int src_fd, const FileStat&, int dirfd, const char* tmp_name, CloneMode mode,
                 const std::string& src_display, const std::string& dst_display, CloneMethod* method, Fd* out) {
  if (mode != CloneMode::kNever) {
    if (::fclonefileat(src_fd, dirfd, tmp_name, CLONE_NOOWNERCOPY) == 0) {
      Fd fd(::openat(dirfd, tmp_name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) {
        Error e = fail_errno("open", dst_display);
        ::unlinkat(dirfd, tmp_name, 0);
        return e;
      }
      *method = CloneMethod::kClonefile;
      *out = std::move(fd);
      return {};
    }
    int err = errno;
    bool unsupported = err == ENOTSUP || err == EXDEV;
    if (mode == CloneMode::kForce || !unsupported) {
      Error e = fail(err == EXDEV ? EXDEV : unsupported ? ENOTSUP : err, "clonefile", src_display, dst_display);
      if (mode == CloneMode::kForce && unsupported) e.reason = Reason::kNoReflink;
      return e;
    }
  }
  Fd dst(::openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!dst.valid()) return fail_errno("open", dst_display);
  if (::fcopyfile(src_fd, dst.get(), nullptr, COPYFILE_DATA) != 0) {
    Error e = fail_errno("fcopyfile", src_display, dst_display);
    dst.reset();
    ::unlinkat(dirfd, tmp_name, 0);
    return e;
  }
  *method = CloneMethod::kCopy;
  *out = std::move(dst);
  return {};
}

}  // namespace blx
