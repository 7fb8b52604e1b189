// statx-based file facts, mount points, openat2 and directory listing for
// Linux.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "../internal.h"
#include "sys.h"

namespace blx {

// Mount id for kernels whose statx lacks STATX_MNT_ID (< 5.8):
// name_to_handle_at reports it even when the handle buffer is too small.
bool mount_id_via_handle(int dirfd, const char* name, bool follow, uint64_t* out) {
  // struct file_handle ends in a flexible array: room for it in a union.
  union {
    struct file_handle fh;
    unsigned char bytes[sizeof(struct file_handle) + 128];
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

namespace {

// BOXLITE_LAYOUT_MOUNT_ID=handle|none makes this kernel behave like an old
// one for the mount-id logic (tests of the fallbacks): "handle" ignores
// statx's mount id and root flag, "none" also name_to_handle_at's id.
enum class MountIdMode { kStatx, kHandle, kNone };

MountIdMode mount_id_mode() {
  static const MountIdMode mode = [] {
    const char* v = ::getenv("BOXLITE_LAYOUT_MOUNT_ID");
    if (v == nullptr) return MountIdMode::kStatx;
    if (std::strcmp(v, "handle") == 0) return MountIdMode::kHandle;
    if (std::strcmp(v, "none") == 0) return MountIdMode::kNone;
    return MountIdMode::kStatx;
  }();
  return mode;
}

}  // namespace

Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display) {
  sys::Statx sx{};
  int flags = AT_STATX_SYNC_AS_STAT | (follow ? 0 : AT_SYMLINK_NOFOLLOW) | (name[0] == '\0' ? AT_EMPTY_PATH : 0);
  unsigned mask = sys::kStatxType | sys::kStatxMode | sys::kStatxNlink | sys::kStatxUid | sys::kStatxMtime |
                  sys::kStatxIno | sys::kStatxSize | sys::kStatxBlocks | sys::kStatxMntId;
  if (sys::statx(dirfd, name, flags, mask, &sx) != 0) return fail_errno("statx", display);
  out->mode = sx.stx_mode;
  out->uid = sx.stx_uid;
  out->nlink = sx.stx_nlink;
  out->size = sx.stx_size;
  out->blocks = sx.stx_blocks;
  out->mtime_sec = sx.stx_mtime.tv_sec;
  out->mtime_nsec = sx.stx_mtime.tv_nsec;
  out->dev_major = sx.stx_dev_major;
  out->dev_minor = sx.stx_dev_minor;
  out->ino = sx.stx_ino;
  const MountIdMode mode = mount_id_mode();
  // qemu-user (7.2) sets STATX_MNT_ID in the mask but leaves the id 0.
  out->mount_id_known = mode == MountIdMode::kStatx && (sx.stx_mask & sys::kStatxMntId) != 0 && sx.stx_mnt_id != 0;
  out->mount_id = out->mount_id_known ? sx.stx_mnt_id : 0;
  if (!out->mount_id_known && mode != MountIdMode::kNone) {
    out->mount_id_known = mount_id_via_handle(dirfd, name, follow, &out->mount_id);
  }
  out->mount_root_known = mode == MountIdMode::kStatx && (sx.stx_attributes_mask & sys::kStatxAttrMountRoot) != 0;
  out->mount_root = out->mount_root_known && (sx.stx_attributes & sys::kStatxAttrMountRoot) != 0;
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

bool parse_dirents(const char* buf, size_t n, std::vector<DirEntry>* out) {
  // struct linux_dirent64: d_ino, d_off, d_reclen, d_type, then the
  // NUL-terminated name, the record padded to d_reclen bytes.
  constexpr size_t kName = 8 + 8 + 2 + 1;
  for (size_t off = 0; off < n;) {
    if (n - off < kName + 1) return false;
    unsigned short reclen;
    std::memcpy(&reclen, buf + off + 16, sizeof reclen);
    if (reclen < kName + 1 || reclen > n - off) return false;
    const char* name = buf + off + kName;
    const size_t len = ::strnlen(name, reclen - kName);
    if (len == reclen - kName) return false;  // no NUL inside the record
    const unsigned char type = static_cast<unsigned char>(buf[off + 18]);
    off += reclen;
    if (len == 0 || (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')))) continue;
    out->push_back(DirEntry{std::string(name, len), type});
  }
  return true;
}

// getdents64 straight on the fd (through syscall(): glibc's wrapper is 2.30),
// without fdopendir's dup, fstat, fcntl and lseek.
Error list_dir(Dir dir, std::vector<DirEntry>* out) {
  out->clear();
  alignas(8) char buf[16384];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("getdents64", dir.path);
    }
    if (n == 0) return {};
    // A record the kernel would never write: stop rather than walk off the buffer.
    if (!parse_dirents(buf, static_cast<size_t>(n), out)) return fail(EIO, "getdents64", dir.path);
  }
}

// statx's MOUNT_ROOT attribute, or on pre-5.8 kernels a mount id differing
// from the parent's.
bool is_mount_point_at(int dirfd, const char* name, const FileStat& st, const FileStat& parent,
                       const std::string& display) {
  if (st.mount_root_known) return st.mount_root;
  if (different_mount(st, parent)) return true;
  if (st.mount_id_known && parent.mount_id_known) return false;
  // Same device, mount ids unknown: a bind mount would look exactly like
  // this. Only mountinfo can tell; it is read on such old kernels alone,
  // and when it cannot be read the answer is "a mount" (never descend).
  std::vector<MountBelow> mounts;
  if (mounts_below(Dir{dirfd, display}, &mounts)) return true;
  for (const MountBelow& m : mounts) {
    if (m.rel == name) return true;
  }
  return false;
}

bool names_fold_case(int) {
  // BOXLITE_LAYOUT_CASE_INSENSITIVE=1: answer as APFS does by default, so
  // the Linux suite runs the case-collision checks every Mac runs.
  static const bool fold = [] {
    const char* v = ::getenv("BOXLITE_LAYOUT_CASE_INSENSITIVE");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return fold;
}

int openat2_beneath(int dirfd, const char* rel, int flags, mode_t mode) {
  // BOXLITE_LAYOUT_RESOLVE=walk: behave like a kernel without openat2, so
  // tests can run the component walk that such kernels get.
  static const bool walk_only = [] {
    const char* v = ::getenv("BOXLITE_LAYOUT_RESOLVE");
    return v != nullptr && std::strcmp(v, "walk") == 0;
  }();
  if (walk_only) {
    errno = ENOSYS;
    return -1;
  }
  sys::OpenHow how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOCTTY);
  how.mode = (flags & O_CREAT) != 0 ? mode : 0;
  how.resolve = sys::kResolveBeneath | sys::kResolveNoSymlinks | sys::kResolveNoMagiclinks;
  return sys::openat2(dirfd, rel, &how);
}

}  // namespace blx
