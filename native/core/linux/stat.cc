// statx-based file facts and mount-point handling for Linux.
#include "../internal.h"
#include "sys.h"

#include <cerrno>
#include <cstdio>
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

std::string random_suffix() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      // No entropy source is not a reason to fail a rename; the name only
      // has to be unlikely to collide, and O_EXCL catches the rest.
      uint64_t fallback = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
                          reinterpret_cast<uintptr_t>(&bytes);
      for (unsigned char& b : bytes) b = static_cast<unsigned char>(fallback >>= 8);
      break;
    }
    got += static_cast<size_t>(n);
  }
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  return s;
}

}  // namespace blx
