// Copies that are never half-written and never shared: cloneFile, and the
// shim set installed into a box's bin/, both around the platform's
// clone_into() (FICLONE / clonefile, then copy_file_range, then read/write).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>

#include "../internal.h"

namespace blx {

Error copy_read_write(int src_fd, int dst_fd, const std::string& src_display, const std::string& dst_display) {
  static constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk, '\0');
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(src_fd, &buf[0], kChunk, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", src_display);
    }
    if (n == 0) return {};
    size_t done = 0;
    while (done < static_cast<size_t>(n)) {
      ssize_t w = ::write(dst_fd, buf.data() + done, static_cast<size_t>(n) - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write", dst_display);
      }
      done += static_cast<size_t>(w);
    }
    offset += n;
  }
}

Error adopt_clone_at(int dirfd, const char* tmp_name, const std::string& dst_display, Fd* out, int* refused) {
  *refused = 0;
  Fd fd(::openat(dirfd, tmp_name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (fd.valid()) {
    *out = std::move(fd);
    return {};
  }
  int err = errno;
  Error e = fail(err, "open", dst_display);
  if (::unlinkat(dirfd, tmp_name, 0) != 0) return fail_errno("unlink", dst_display);
  if (err != EACCES && err != EPERM) return e;
  *refused = err;
  return {};
}

namespace {

constexpr const char* kLibraryPrefix = "libkrunfw.";

// Temporary names for one batch: one random stem numbered per file, so a
// shim set costs one getrandom, not one per file. The shape
// (.{name}.blx-{16 hex}) is what gc recognises as an interrupted copy.
class TempNames {
 public:
  std::string next(const std::string& base) {
    if (stem_.empty()) stem_ = random_suffix().substr(0, 12);
    static const char hex[] = "0123456789abcdef";
    unsigned n = seq_++;
    std::string s = stem_;
    for (int shift = 12; shift >= 0; shift -= 4) s += hex[(n >> shift) & 15];
    return "." + base.substr(0, 200) + ".blx-" + s;
  }

 private:
  std::string stem_;
  unsigned seq_ = 0;
};

// A copy source: the operator's path, followed, but only a regular file,
// and opened O_NONBLOCK so a FIFO in its place answers instead of hanging.
Error open_source(int dirfd, const std::string& name, const std::string& display, Fd* out, FileStat* st) {
  Fd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("open", display);
  if (Error e = stat_at(fd.get(), "", false, st, display)) return e;
  if (!S_ISREG(st->mode)) {
    return fail_reason(S_ISDIR(st->mode) ? EISDIR : EINVAL, Reason::kNotRegularFile, "open", display,
                       st->mode & S_IFMT);
  }
  *out = std::move(fd);
  return {};
}

struct Source {
  std::string name;
  std::string display;
  Fd fd;
  FileStat st;
};

// The mode a copy gets: the source's, without write for group and others
// (a shim or library anyone could rewrite is code anyone could inject).
mode_t copy_mode(const FileStat& s) { return static_cast<mode_t>(s.mode & 07777 & ~022u); }

// Install src as dir/name: built aside under a temporary name, given
// src's mode (copy_mode) and mtime, renamed into place.
Error install_at(Source& src, Dir dir, const std::string& name, CloneMode mode, bool skip_unchanged, TempNames* temps,
                 CloneResult* out) {
  const int dirfd = dir.fd;
  const std::string dst = dir.child(name);
  out->name = name;
  out->bytes = 0;
  const FileStat& s = src.st;
  if (skip_unchanged) {
    FileStat d;
    Error de = stat_at(dirfd, name.c_str(), false, &d, dst);
    if (de && de.code != ENOENT) return de;
    if (!de && S_ISDIR(d.mode)) return fail(EISDIR, "rename", src.display, dst);
    // Never "unchanged" when dst is the source itself (a hard link): the
    // box would share, and could write, the host's binary.
    if (!de && !same_inode(d, s) && S_ISREG(d.mode) && d.size == s.size && d.mtime_sec == s.mtime_sec &&
        d.mtime_nsec == s.mtime_nsec && (d.mode & 07777) == copy_mode(s)) {
      out->method = CloneMethod::kSkipped;
      out->bytes = s.size;
      return {};
    }
  }
  std::string tmp = temps->next(name);
  Fd copy;
  if (Error e = clone_into(src.fd.get(), s, dirfd, tmp.c_str(), mode, src.display, dst, &out->method, &copy)) {
    return e;
  }
  Error e;
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = s.mtime_sec;
  times[1].tv_nsec = s.mtime_nsec;
  // The mode goes on after the data: a clone may strip set-id bits, and the
  // temp file was created 0600 so nobody runs it half-written.
  if (::fchmod(copy.get(), copy_mode(s)) != 0) {
    e = fail_errno("fchmod", dst);
  } else if (::futimens(copy.get(), times) != 0) {
    e = fail_errno("futimens", dst);
  } else if (::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) {
    e = fail_errno("rename", dir.child(tmp), dst);
    if (e.code == EISDIR) e.path = src.display;
  }
  if (e) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return e;
  }
  out->bytes = s.size;
  return {};
}

}  // namespace

Error clone_file(const std::string& src_path, const std::string& dst_path, CloneMode mode, CloneResult* out) {
  Source src;
  src.display = src_path;
  if (Error e = open_source(AT_FDCWD, src_path, src_path, &src.fd, &src.st)) return e;
  std::string dir, name;
  split_path(dst_path, &dir, &name);
  if (!is_plain_name(name)) return fail(EINVAL, "open", dst_path);
  OwnedDir parent;
  if (Error e = open_root(dir, false, 0, Trust::kNone, &parent, nullptr)) return e;
  TempNames temps;
  return install_at(src, parent, name, mode, false, &temps, out);
}

Error shim_install(const BoxRef& ref, const std::string& shim, CloneMode mode, bool may_block,
                   std::vector<CloneResult>* out) {
  out->clear();
  // The input first: bad input leaves nothing behind.
  std::string shim_dir, shim_name;
  split_path(shim, &shim_dir, &shim_name);
  Fd src_dir(::open(shim_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src_dir.valid()) return fail_errno("open", shim);
  std::vector<Source> sources(1);
  sources[0].name = shim_name;
  sources[0].display = shim;
  if (Error e = open_source(src_dir.get(), shim_name, shim, &sources[0].fd, &sources[0].st)) return e;
  std::vector<DirEntry> entries;
  if (Error e = list_dir(Dir{src_dir.get(), shim_dir}, &entries)) return e;
  std::vector<std::string> libraries;
  for (const DirEntry& d : entries) {
    if (d.name.compare(0, 10, kLibraryPrefix) == 0 && d.name != shim_name) libraries.push_back(d.name);
  }
  std::sort(libraries.begin(), libraries.end());
  for (const std::string& name : libraries) {
    Source lib;
    lib.name = name;
    lib.display = join_path(shim_dir, name);
    if (Error e = open_source(src_dir.get(), name, lib.display, &lib.fd, &lib.st)) return e;
    sources.push_back(std::move(lib));
  }

  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir bin;
  if (Error e = make_dir_beneath(d.box, "bin", 0755, Trust::kNone, &bin, nullptr, nullptr, true)) return e;
  TempNames temps;
  for (Source& src : sources) {
    CloneResult r;
    if (Error e = install_at(src, bin, src.name, mode, true, &temps, &r)) return e;
    out->push_back(std::move(r));
  }
  return {};
}

}  // namespace blx
