// Helpers shared by the platform files of the core. Not part of core.h.
#pragma once

#include "core.h"

#include <cstdint>
#include <string>
#include <unistd.h>
#include <vector>

namespace blx {

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// What the core needs to know about one directory entry or open file.
struct FileStat {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint64_t nlink = 0;
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t ino = 0;
  uint64_t mount_id = 0;
  bool mount_id_known = false;
  bool mount_root = false;
  bool mount_root_known = false;
};

// stat of dirfd/name (name "" means dirfd itself). Linux uses statx with the
// mount id; other systems fstatat, where the device stands in for the mount.
Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display);

#if defined(__linux__)
// The mount id by name_to_handle_at, the fallback stat_at uses on kernels
// whose statx has no STATX_MNT_ID (< 5.8). Exposed for the native tests.
bool mount_id_via_handle(int dirfd, const char* name, bool follow, uint64_t* out);
#endif

// Whether a and b (each stat'ed with stat_at) live on different mounts.
bool different_mount(const FileStat& a, const FileStat& b);

// Detach the mount whose mount point is dirfd/name, never following name.
Error detach_mount_at(int dirfd, const char* name, const std::string& display);

// Platform hook for clone_file(): create dirfd/tmp_name exclusively with
// the contents of src_fd by the fastest method `mode` allows, leaving it open
// in *out. On error nothing is left at dirfd/tmp_name.
Error clone_into(int src_fd, const FileStat& src, int dirfd, const char* tmp_name, CloneMode mode,
                 const CloneJob& job, CloneMethod* method, Fd* out);

// Portable read/write copy, the last resort of every platform.
Error copy_read_write(int src_fd, int dst_fd, const CloneJob& job);

// Platform hook: fill buf from the kernel's CSPRNG.
void random_bytes(unsigned char* buf, size_t n);

// 16 hex chars from the kernel's CSPRNG, for temporary names.
std::string random_suffix();

// Whether mountinfo lists path (resolved) as a mount point; true when the
// table cannot be read (fail closed). For kernels without mount ids only.
bool mountinfo_lists(const std::string& path);

// Platform hook: whether path (already stat'ed into st, not followed) is a
// mount point.
bool mounted_at(const std::string& path, const FileStat& st);

struct DirEntry {
  std::string name;
  unsigned char type;  // d_type; DT_UNKNOWN when the filesystem does not say
};

// Platform hook: the entries of an open directory (without "." and ".."),
// read from the fd's current offset: pass a freshly opened fd.
Error list_dir(int dirfd, const std::string& display, std::vector<DirEntry>* out);

// readlinkat into a string; false (errno set) when not a symlink etc.
bool read_link_at(int dirfd, const char* name, std::string* out);

std::string join_path(const std::string& dir, const std::string& name);
std::string dir_name(const std::string& path);
std::string base_name(const std::string& path);

}  // namespace blx
