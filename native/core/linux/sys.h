// Raw Linux syscalls the core uses, reached through syscall() so the addon
// links against nothing newer than glibc 2.28 and builds on old headers.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_statx
#if defined(__x86_64__)
#define SYS_statx 332
#elif defined(__aarch64__)
#define SYS_statx 291
#endif
#endif

namespace blx::sys {

constexpr unsigned kOpenTreeClone = 1;
constexpr unsigned kOpenTreeCloexec = O_CLOEXEC;
constexpr unsigned kAtRecursive = 0x8000;
constexpr unsigned kMoveMountFEmptyPath = 0x00000004;
constexpr uint64_t kMountAttrRdonly = 0x00000001;

constexpr unsigned kStatxType = 0x0001;
constexpr unsigned kStatxMode = 0x0002;
constexpr unsigned kStatxNlink = 0x0004;
constexpr unsigned kStatxUid = 0x0008;
constexpr unsigned kStatxMtime = 0x0040;
constexpr unsigned kStatxIno = 0x0100;
constexpr unsigned kStatxSize = 0x0200;
constexpr unsigned kStatxBlocks = 0x0400;
constexpr unsigned kStatxMntId = 0x1000;
constexpr uint64_t kStatxAttrMountRoot = 0x2000;

// The kernel's struct statx (include/uapi/linux/stat.h), fixed at 256 bytes.
struct StatxTimestamp {
  int64_t tv_sec;
  uint32_t tv_nsec;
  int32_t reserved;
};

struct Statx {
  uint32_t stx_mask;
  uint32_t stx_blksize;
  uint64_t stx_attributes;
  uint32_t stx_nlink;
  uint32_t stx_uid;
  uint32_t stx_gid;
  uint16_t stx_mode;
  uint16_t spare0;
  uint64_t stx_ino;
  uint64_t stx_size;
  uint64_t stx_blocks;
  uint64_t stx_attributes_mask;
  StatxTimestamp stx_atime;
  StatxTimestamp stx_btime;
  StatxTimestamp stx_ctime;
  StatxTimestamp stx_mtime;
  uint32_t stx_rdev_major;
  uint32_t stx_rdev_minor;
  uint32_t stx_dev_major;
  uint32_t stx_dev_minor;
  uint64_t stx_mnt_id;
  uint64_t spare2[13];
};
static_assert(sizeof(Statx) == 256, "struct statx layout");

constexpr uint64_t kResolveNoMagiclinks = 0x02;
constexpr uint64_t kResolveNoSymlinks = 0x04;
constexpr uint64_t kResolveBeneath = 0x08;

// struct open_how (include/uapi/linux/openat2.h).
struct OpenHow {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};

struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

inline int statx(int dirfd, const char* path, int flags, unsigned mask, Statx* out) {
  return static_cast<int>(::syscall(SYS_statx, dirfd, path, flags, mask, out));
}

inline int openat2(int dirfd, const char* path, OpenHow* how) {
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, how, sizeof(*how)));
}

inline int open_tree(int dirfd, const char* path, unsigned flags) {
  return static_cast<int>(::syscall(SYS_open_tree, dirfd, path, flags));
}

inline int move_mount(int from_dirfd, const char* from_path, int to_dirfd, const char* to_path, unsigned flags) {
  return static_cast<int>(::syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags));
}

inline int mount_setattr(int dirfd, const char* path, unsigned flags, MountAttr* attr) {
  return static_cast<int>(::syscall(SYS_mount_setattr, dirfd, path, flags, attr, sizeof(*attr)));
}

}  // namespace blx::sys
