// File facts for macOS: fstatat, with the device standing in for the mount.
#include "../internal.h"

#include <cerrno>
#include <dirent.h>
#include <cstdlib>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/stat.h>

namespace blx {

Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display) {
  struct stat st;
  int rc = name[0] == '\0' ? ::fstat(dirfd, &st)
                           : ::fstatat(dirfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return fail_errno("stat", display);
  out->mode = st.st_mode;
  out->uid = st.st_uid;
  out->nlink = st.st_nlink;
  out->size = static_cast<uint64_t>(st.st_size);
  out->mtime_sec = st.st_mtimespec.tv_sec;
  out->mtime_nsec = static_cast<uint32_t>(st.st_mtimespec.tv_nsec);
  out->dev_major = major(st.st_dev);
  out->dev_minor = minor(st.st_dev);
  out->ino = st.st_ino;
  out->mount_id = static_cast<uint64_t>(st.st_dev);
  out->mount_id_known = false;  // no mount ids on macOS; different_mount() uses dev
  out->mount_root_known = false;
  out->mount_root = false;
  return {};
}

Error detach_mount_at(int dirfd, const char* name, const std::string& display) {
  char dir[MAXPATHLEN];
  if (::fcntl(dirfd, F_GETPATH, dir) != 0) return fail_errno("fcntl", display);
  std::string path = join_path(dir, name);
  if (::unmount(path.c_str(), MNT_NOFOLLOW) != 0) return fail_errno("unmount", display);
  return {};
}

void random_bytes(unsigned char* buf, size_t n) { ::arc4random_buf(buf, n); }

Error list_dir(int dirfd, const std::string& display, std::vector<DirEntry>* out) {
  out->clear();
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno("fcntl", display);
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    Error e = fail_errno("fdopendir", display);
    ::close(dup);
    return e;
  }
  errno = 0;
  while (struct dirent* d = ::readdir(dir)) {
    const char* n = d->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    out->push_back(DirEntry{n, d->d_type});
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return fail(err, "readdir", display);
  return {};
}

bool mounted_at(const std::string& path, const FileStat& st) {
  FileStat parent;
  std::string up = dir_name(path);
  if (stat_at(AT_FDCWD, up.c_str(), true, &parent, up)) return false;
  return different_mount(st, parent);
}

}  // namespace blx
