// statx-based file facts and mount-point handling for Linux.
#include "../internal.h"
#include "sys.h"

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/random.h>

namespace blx {

// Mount id for kernels whose statx lacks STATX_MNT_ID (< 5.8):
// name_to_handle_at reports it even when the handle buffer is too small.
bool mount_id_via_handle(int dirfd, const char* name, bool follow, uint64_t* out) {
  struct {
    struct file_handle fh;
    unsigned char pad[128];
  } h;
  h.fh.handle_bytes = 0;
  int mnt = -1;
  int flags = (name[0] == '\0' ? AT_EMPTY_PATH : 0) | (follow ? AT_SYMLINK_FOLLOW : 0);
  int rc = ::name_to_handle_at(dirfd, name, &h.fh, &mnt, flags);
  if ((rc == 0 || errno == EOVERFLOW) && mnt >= 0) {
    *out = static_cast<uint64_t>(mnt);
    return true;
  }
  return false;
}

Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display) {
  sys::Statx sx{};
  int flags = AT_STATX_SYNC_AS_STAT | (follow ? 0 : AT_SYMLINK_NOFOLLOW) | (name[0] == '\0' ? AT_EMPTY_PATH : 0);
  unsigned mask = sys::kStatxType | sys::kStatxMode | sys::kStatxNlink | sys::kStatxUid |
                  sys::kStatxMtime | sys::kStatxIno | sys::kStatxSize | sys::kStatxMntId;
  if (sys::statx(dirfd, name, flags, mask, &sx) != 0) return fail_errno("statx", display);
  out->mode = sx.stx_mode;
  out->uid = sx.stx_uid;
  out->nlink = sx.stx_nlink;
  out->size = sx.stx_size;
  out->mtime_sec = sx.stx_mtime.tv_sec;
  out->mtime_nsec = sx.stx_mtime.tv_nsec;
  out->dev_major = sx.stx_dev_major;
  out->dev_minor = sx.stx_dev_minor;
  out->ino = sx.stx_ino;
  out->mount_id_known = (sx.stx_mask & sys::kStatxMntId) != 0;
  out->mount_id = out->mount_id_known ? sx.stx_mnt_id : 0;
  if (!out->mount_id_known) {
    out->mount_id_known = mount_id_via_handle(dirfd, name, follow, &out->mount_id);
  }
  out->mount_root_known = (sx.stx_attributes_mask & sys::kStatxAttrMountRoot) != 0;
  out->mount_root = (sx.stx_attributes & sys::kStatxAttrMountRoot) != 0;
  return {};
}

Error detach_mount_at(int dirfd, const char* name, const std::string& display) {
  // Through our directory fd, so no path component can be swapped for a
  // symlink between the check and the unmount; NOFOLLOW covers the last one.
  char path[64 + 256];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
  if (::umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) != 0) return fail_errno("umount2", display);
  return {};
}

void random_bytes(unsigned char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::getrandom(buf + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // getrandom exists on every kernel we support; should it still fail,
      // a time-and-pid mix does for a temp-name suffix: O_EXCL turns a
      // collision into an error, never a clobber.
      struct timespec ts;
      ::clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t x = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 20) ^
                   (static_cast<uint64_t>(::getpid()) << 40);
      for (size_t i = got; i < n; i++) {
        buf[i] = static_cast<unsigned char>(x >> 56);
        x = x * 6364136223846793005ull + 1442695040888963407ull;
      }
      return;
    }
    got += static_cast<size_t>(r);
  }
}

// statx's MOUNT_ROOT attribute, or on pre-5.8 kernels a mount id differing
// from the parent's.
bool mounted_at(const std::string& path, const FileStat& st) {
  if (st.mount_root_known) return st.mount_root;
  FileStat parent;
  std::string up = dir_name(path);
  if (stat_at(AT_FDCWD, up.c_str(), true, &parent, up)) return false;
  return different_mount(st, parent);
}

}  // namespace blx
