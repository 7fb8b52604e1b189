// clone_into() for macOS: clonefile (APFS), then fcopyfile.
#include <copyfile.h>
#include <fcntl.h>
#include <sys/clonefile.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

// errnos with which clonefile says "not here": the filesystem cannot clone
// (ENOTSUP is 45 on macOS and EOPNOTSUPP 102, two numbers: compared by
// name) or the volumes differ (EXDEV).
bool clone_unsupported(int err) { return err == ENOTSUP || err == EOPNOTSUPP || err == EXDEV; }

// File flags a clone carries over from its source that would leave a copy
// nobody can fchmod, rename over or remove (uchg, uappnd and their system
// twins).
constexpr unsigned kStuckFlags = UF_IMMUTABLE | UF_APPEND | SF_IMMUTABLE | SF_APPEND;

}  // namespace

Error clone_into(int src_fd, const FileStat&, int dirfd, const char* tmp_name, CloneMode mode,
                 const std::string& src_display, const std::string& dst_display, CloneMethod* method, Fd* out) {
  if (mode != CloneMode::kNever) {
    // CLONE_NOFOLLOW: tmp_name is never resolved through a symlink (an
    // existing tmp_name is EEXIST anyway; the source is our fd).
    if (::fclonefileat(src_fd, dirfd, tmp_name, CLONE_NOFOLLOW | CLONE_NOOWNERCOPY) == 0) {
      Fd fd;
      int refused = 0;
      if (Error e = adopt_clone_at(dirfd, tmp_name, dst_display, &fd, &refused)) return e;
      struct stat st;
      if (refused == 0 && ::fstat(fd.get(), &st) == 0 && (st.st_flags & kStuckFlags) != 0 &&
          ::fchflags(fd.get(), st.st_flags & ~kStuckFlags) != 0) {
        refused = errno;
        fd.reset();
        if (::unlinkat(dirfd, tmp_name, 0) != 0) return fail_errno("unlink", dst_display);
      }
      if (refused == 0) {
        *method = CloneMethod::kClonefile;
        *out = std::move(fd);
        return {};
      }
      // The clone is unusable to us (gone already): a plain copy is not.
      if (mode == CloneMode::kForce) return fail(refused, "open", dst_display);
    } else {
      int err = errno;
      bool unsupported = clone_unsupported(err);
      if (mode == CloneMode::kForce || !unsupported) {
        Error e = fail(err == EXDEV ? EXDEV : unsupported ? ENOTSUP : err, "clonefile", src_display, dst_display);
        if (mode == CloneMode::kForce && unsupported) e.reason = Reason::kNoReflink;
        return e;
      }
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
