// inspect_shared(): what occupies a box's shared/, decided by statx mount
// ids (or device numbers) and statvfs flags, never by reading mountinfo.
#include "../internal.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

namespace blx {

Error inspect_shared(const std::string& source, const std::string& target, SharedState* out) {
  *out = SharedState{};
  FileStat t;
  if (Error e = stat_at(AT_FDCWD, target.c_str(), false, &t, target)) {
    if (e.code == ENOENT) return {};
    return e;
  }
  if (S_ISLNK(t.mode)) {
    out->kind = SharedKind::kSymlink;
    if (!read_link_at(AT_FDCWD, target.c_str(), &out->link_target)) return fail_errno("readlink", target);
    return {};
  }
  if (!S_ISDIR(t.mode)) {
    out->kind = SharedKind::kOther;
    return {};
  }
  if (!mounted_at(target, t)) {
    out->kind = SharedKind::kDirectory;
    Fd fd(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("open", target);
    std::vector<DirEntry> entries;
    if (Error e = list_dir(fd.get(), target, &entries)) return e;
    out->empty = entries.empty();
    return {};
  }
  out->kind = SharedKind::kMount;
  struct statvfs sv;
  if (::statvfs(target.c_str(), &sv) != 0) return fail_errno("statvfs", target);
  out->read_only = (sv.f_flag & ST_RDONLY) != 0;
  FileStat s;
  if (Error e = stat_at(AT_FDCWD, source.c_str(), false, &s, source)) {
    if (e.code != ENOENT) return e;
    return {};
  }
  out->shows_source = s.ino == t.ino && s.dev_major == t.dev_major && s.dev_minor == t.dev_minor;
  return {};
}

}  // namespace blx
