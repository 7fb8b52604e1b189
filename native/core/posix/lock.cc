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

Error check_dir_lock(int fd, const std::string& dir) {
  // Whoever held the lock before us may have removed the directory, or moved
  // it aside (.trash-*) and made a new one under the name.
  FileStat held, named;
  if (Error e = stat_at(fd, "", false, &held, dir)) return e;
  Error ne = stat_at(AT_FDCWD, dir.c_str(), false, &named, dir);
  if (ne && ne.code != ENOENT && ne.code != ENOTDIR) return ne;
  if (ne || held.nlink == 0 || held.ino != named.ino || held.dev_major != named.dev_major ||
      held.dev_minor != named.dev_minor) {
    Error e = fail(ENOENT, "flock", dir);
    e.detail = "replaced";
    return e;
  }
  return {};
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
    if (Error e = check_dir_lock(dfd.get(), dir)) return e;
  }
  *fd = dfd.release();
  return {};
}

}  // namespace blx
