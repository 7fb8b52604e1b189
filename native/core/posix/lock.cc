// flock() on fds and on box directories (SPEC §6).
#include "../internal.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace blx {

Error lock_fd(int fd, bool exclusive, bool wait, bool* acquired) {
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  for (;;) {
    if (::flock(fd, op) == 0) {
      *acquired = true;
      return {};
    }
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      *acquired = false;
      return {};
    }
    return fail_errno("flock");
  }
}

Error unlock_fd(int fd) {
  for (;;) {
    if (::flock(fd, LOCK_UN) == 0) return {};
    if (errno != EINTR) return fail_errno("flock");
  }
}

Error check_lock_identity(int fd, const std::string& path) {
  // Whoever held the lock before us may have removed the file or directory,
  // or moved it aside (.trash-*, free() + allocate()) and made a new one
  // under the name.
  FileStat held, named;
  if (Error e = stat_at(fd, "", false, &held, path)) return e;
  Error ne = stat_at(AT_FDCWD, path.c_str(), false, &named, path);
  if (ne && ne.code != ENOENT && ne.code != ENOTDIR) return ne;
  const char* detail = nullptr;
  if (ne) {
    detail = "removed";
  } else if (held.nlink == 0 || held.ino != named.ino || held.dev_major != named.dev_major ||
             held.dev_minor != named.dev_minor) {
    detail = "replaced";
  }
  if (detail == nullptr) return {};
  Error e = fail(ENOENT, "flock", path);
  e.detail = detail;
  return e;
}

Error lock_dir(const std::string& dir, bool wait, int* fd, bool* acquired) {
  *fd = -1;
  *acquired = false;
  // O_NOFOLLOW: a box dir replaced by a symlink is never locked (or entered)
  // through the link; the caller gets ELOOP/ENOTDIR and decides.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dfd.valid()) return fail_errno("open", dir);
  if (Error e = lock_fd(dfd.get(), true, wait, acquired)) {
    e.path = dir;
    return e;
  }
  if (*acquired) {
    if (Error e = check_lock_identity(dfd.get(), dir)) return e;
  }
  *fd = dfd.release();
  return {};
}

}  // namespace blx
