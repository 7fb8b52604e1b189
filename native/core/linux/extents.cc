// The whole extent map of an open file (FIEMAP), for disk usage: the loop
// asks for kBatch extents at a time until the kernel flags the last one.
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

Error file_extents(int fd, const std::string& display, ExtentSink* sink, bool* known) {
  *known = false;
  constexpr unsigned kBatch = 64;
  alignas(struct fiemap) unsigned char raw[sizeof(struct fiemap) + kBatch * sizeof(struct fiemap_extent)];
  auto* map = reinterpret_cast<struct fiemap*>(raw);
  uint64_t start = 0;
  // A file being rewritten could in theory keep moving its end: a cap on
  // the rounds keeps the scan finite whatever happens.
  for (int round = 0; round < (1 << 20); round++) {
    map->fm_start = start;
    map->fm_length = ~0ULL - start;
    // No FIEMAP_FLAG_SYNC: flushing every file would cost more than the
    // walk; an extent still delayed (DELALLOC, flagged UNKNOWN) is new data
    // of this file alone, and is counted so below.
    map->fm_flags = 0;
    map->fm_mapped_extents = 0;
    map->fm_extent_count = kBatch;
    map->fm_reserved = 0;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
      if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL) return {};
      return fail_errno("ioctl", display);
    }
    *known = true;
    if (map->fm_mapped_extents == 0) return {};
    const unsigned n = map->fm_mapped_extents < kBatch ? map->fm_mapped_extents : kBatch;
    for (unsigned i = 0; i < n; i++) {
      const struct fiemap_extent& x = map->fm_extents[i];
      // Inline data or an extent not yet placed has no physical range of
      // its own: count it as the file's alone.
      const bool placed = (x.fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DATA_INLINE)) == 0;
      sink->extent(placed ? x.fe_physical : 0, x.fe_length, placed && (x.fe_flags & FIEMAP_EXTENT_SHARED) != 0);
      if (x.fe_flags & FIEMAP_EXTENT_LAST) return {};
    }
    const struct fiemap_extent& last = map->fm_extents[n - 1];
    const uint64_t next = last.fe_logical + last.fe_length;
    if (next <= start) return {};
    start = next;
  }
  return {};
}

}  // namespace blx
