// probe() for Linux: statx + statfs + statvfs.
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "../internal.h"

namespace blx {

namespace {

struct Magic {
  int64_t magic;
  const char* name;
};

// statfs f_type values (include/uapi/linux/magic.h and filesystem sources).
constexpr Magic kMagics[] = {
    {0xEF53, "ext4"},          {0x58465342, "xfs"},         {0x9123683E, "btrfs"},    {0x01021994, "tmpfs"},
    {0x794C7630, "overlay"},   {0x858458F6, "ramfs"},       {0x6969, "nfs"},          {0x2FC12FC1, "zfs"},
    {0xF2F52010, "f2fs"},      {0x65735546, "fuse"},        {0x73717368, "squashfs"}, {0xE0F5E1E2, "erofs"},
    {0x4D44, "vfat"},          {0x2011BAB0, "exfat"},       {0x5346544E, "ntfs"},     {0xCA451A4E, "bcachefs"},
    {0x00C36400, "ceph"},      {0x01021997, "9p"},          {0xFF534D42, "cifs"},     {0xFE534D42, "smb2"},
    {0x9FA0, "proc"},          {0x62656572, "sysfs"},       {0x63677270, "cgroup2"},  {0x27E0EB, "cgroup"},
    {0x1CD1, "devpts"},        {0x42494E4D, "binfmt_misc"}, {0x64626720, "debugfs"},  {0x74726163, "tracefs"},
    {0xCAFE4A11, "bpf"},       {0x73636673, "securityfs"},  {0x6E736673, "nsfs"},     {0x19800202, "mqueue"},
    {0x958458F6, "hugetlbfs"}, {0x3153464A, "jfs"},         {0x52654973, "reiserfs"}, {0x5A3C69F0, "aufs"},
    {0x47504653, "gpfs"},      {0x0BD00BD0, "lustre"},      {0x24051905, "ubifs"},
};

std::string fs_name_for(int64_t magic) {
  for (const Magic& m : kMagics) {
    if (m.magic == magic) return m.name;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "unknown(0x%" PRIx64 ")", static_cast<uint64_t>(magic));
  return buf;
}

}  // namespace

Error probe(const std::string& path, FsFacts* out) {
  FileStat st;
  if (Error e = stat_at(AT_FDCWD, path.c_str(), true, &st, path)) return e;
  struct statfs sf;
  if (::statfs(path.c_str(), &sf) != 0) return fail_errno("statfs", path);
  // statfs carries the mount flags (f_flags, ST_*) since Linux 2.6.36, which
  // saves the extra statfs that statvfs() would make.
  unsigned long flags = static_cast<unsigned long>(sf.f_flags);

  out->dev = Device{st.dev_major, st.dev_minor};
  out->mount_id = st.mount_id;
  out->mount_id_known = st.mount_id_known;
  out->fs_magic = static_cast<int64_t>(static_cast<uint32_t>(sf.f_type));
  out->fs_name = fs_name_for(out->fs_magic);
  out->read_only = (flags & ST_RDONLY) != 0;
  out->nosuid = (flags & ST_NOSUID) != 0;
  out->nodev = (flags & ST_NODEV) != 0;
  out->noexec = (flags & ST_NOEXEC) != 0;

  if (st.mount_root_known) {
    out->is_mount_root = st.mount_root;
  } else {
    // Pre-5.8 kernels: a mount root sits on a different mount than "..".
    std::string parent = join_path(path, "..");
    FileStat up;
    if (Error e = stat_at(AT_FDCWD, parent.c_str(), true, &up, parent)) return e;
    out->is_mount_root = different_mount(st, up) || st.ino == up.ino;
  }
  return {};
}

Error extents_shared_fd(int fd, const std::string& display, int* out) {
  *out = -1;
  // The first extents are enough: a reflinked copy shares all of them.
  // struct fiemap ends in a flexible array: room for 32 extents after it.
  constexpr unsigned kExtents = 32;
  alignas(struct fiemap) unsigned char raw[sizeof(struct fiemap) + kExtents * sizeof(struct fiemap_extent)] = {};
  auto* map = reinterpret_cast<struct fiemap*>(raw);
  map->fm_start = 0;
  map->fm_length = ~0ULL;
  map->fm_flags = FIEMAP_FLAG_SYNC;
  map->fm_extent_count = kExtents;
  if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
    if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL) return {};
    return fail_errno("ioctl", display);
  }
  *out = 0;
  for (unsigned i = 0; i < map->fm_mapped_extents && i < kExtents; i++) {
    if (map->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED) {
      *out = 1;
      break;
    }
  }
  return {};
}

}  // namespace blx
