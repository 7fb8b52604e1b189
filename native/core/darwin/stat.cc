// File facts for macOS: fstatat, with the device standing in for the mount;
// paths of fds by F_GETPATH; no openat2.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

#include "../internal.h"

// In the kernel since macOS 10.15; named only by the macOS 12+ SDK headers,
// and the prebuilds target macOS 11.
#ifndef MNT_NOFOLLOW
#define MNT_NOFOLLOW 0x08000000
#endif

namespace blx {

Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display) {
  struct stat st;
  int rc = name[0] == '\0' ? ::fstat(dirfd, &st) : ::fstatat(dirfd, name, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return fail_errno("stat", display);
  out->mode = st.st_mode;
  out->uid = st.st_uid;
  out->nlink = st.st_nlink;
  out->size = static_cast<uint64_t>(st.st_size);
  out->blocks = static_cast<uint64_t>(st.st_blocks);
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

Error fd_path(int fd, const std::string& display, std::string* out) {
  char dir[MAXPATHLEN];
  if (::fcntl(fd, F_GETPATH, dir) != 0) return fail_errno("fcntl", display);
  *out = dir;
  return {};
}

Error open_typed_file(int dirfd, const char* name, int extra, bool block_ok, const std::string& display, Fd* out,
                      FileStat* st) {
  // No O_PATH: the name is judged first, and what opens must be that inode
  // (a name swapped in between is EAGAIN; its open has run by then, which
  // only a swap racing this call could cause).
  const bool nofollow = (extra & O_NOFOLLOW) != 0;
  FileStat named;
  if (Error e = stat_at(dirfd, name, !nofollow, &named, display)) return e;
  if (Error e = check_typed_file(named, nofollow, block_ok, display)) return e;
  out->reset(::openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | extra));
  if (!out->valid()) return fail_errno("open", display);
  if (Error e = stat_at(out->get(), "", false, st, display)) return e;
  if (!same_inode(named, *st)) return fail(EAGAIN, "open", display);
  return {};
}

// Called only where detach_stack_at or remove.cc saw a mounted directory.
// MNT_NOFOLLOW: macOS 11-15.1 ignore it and follow; from 15.2 any symlink in
// the path is ELOOP (F_GETPATH's path has none, and name was a directory).
Error detach_mount_at(int dirfd, const char* name, const std::string& display) {
  std::string dir;
  if (Error e = fd_path(dirfd, display, &dir)) return e;
  if (::unmount(join_path(dir, name).c_str(), MNT_NOFOLLOW) != 0) return fail_errno("unmount", display);
  return {};
}

int openat2_beneath(int, const char*, int, mode_t) {
  errno = ENOSYS;  // no openat2: the component walk does it
  return -1;
}

void random_bytes(unsigned char* buf, size_t n) { ::arc4random_buf(buf, n); }

bool names_fold_case(int dirfd) { return ::fpathconf(dirfd, _PC_CASE_SENSITIVE) != 1; }

Error list_dir(Dir from, std::vector<DirEntry>* out) {
  out->clear();
  const std::string& display = from.path;
  int dup = ::fcntl(from.fd, F_DUPFD_CLOEXEC, 0);
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

bool is_mount_point_at(int, const char*, const FileStat& st, const FileStat& parent, const std::string&) {
  return different_mount(st, parent);
}

}  // namespace blx
