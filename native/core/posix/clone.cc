// clone_file(): the atomic install around the platform's clone_into().
#include "../internal.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>

namespace blx {

Error copy_read_write(int src_fd, int dst_fd, const CloneJob& job) {
  static constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk, '\0');
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(src_fd, &buf[0], kChunk, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", job.src);
    }
    if (n == 0) return {};
    size_t done = 0;
    while (done < static_cast<size_t>(n)) {
      ssize_t w = ::write(dst_fd, buf.data() + done, static_cast<size_t>(n) - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write", job.dst);
      }
      done += static_cast<size_t>(w);
    }
    offset += n;
  }
}

namespace {

// What a batch shares: the destination dir fd (a shim set lands in one
// bin/) and one random stem for temp names, numbered per file, so a batch
// costs one open and one getrandom, not one per file.
class CloneBatch {
 public:
  Error dir_fd(const std::string& dir, int* out) {
    if (!dirfd_.valid() || dir != dir_) {
      dirfd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dirfd_.valid()) {
        dir_.clear();
        return fail_errno("open", dir);
      }
      dir_ = dir;
    }
    *out = dirfd_.get();
    return {};
  }

  // 16 hex digits, like random_suffix(): 12 random, 4 of sequence.
  std::string temp_name(const std::string& base) {
    if (stem_.empty()) stem_ = random_suffix().substr(0, 12);
    static const char hex[] = "0123456789abcdef";
    unsigned n = seq_++;
    std::string s = stem_;
    for (int shift = 12; shift >= 0; shift -= 4) s += hex[(n >> shift) & 15];
    return "." + base.substr(0, 200) + ".blx-" + s;
  }

 private:
  std::string dir_;
  Fd dirfd_;
  std::string stem_;
  unsigned seq_ = 0;
};

Error clone_one(CloneJob* job, CloneBatch* batch) {
  job->bytes = 0;
  Fd src(::open(job->src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!src.valid()) return fail_errno("open", job->src);
  FileStat s;
  if (Error e = stat_at(src.get(), "", true, &s, job->src)) return e;
  if (S_ISDIR(s.mode)) return fail(EISDIR, "open", job->src);
  if (!S_ISREG(s.mode)) {
    Error e = fail(EINVAL, "open", job->src);
    e.detail = "not-a-regular-file";
    return e;
  }

  std::string dir = dir_name(job->dst);
  std::string base = base_name(job->dst);
  if (base.empty() || base == "." || base == ".." || base == "/") return fail(EINVAL, "open", job->dst);
  int dirfd = -1;
  if (Error e = batch->dir_fd(dir, &dirfd)) return e;

  if (job->skip_unchanged) {
    FileStat d;
    Error de = stat_at(dirfd, base.c_str(), false, &d, job->dst);
    if (de && de.code != ENOENT) return de;
    if (!de && S_ISDIR(d.mode)) return fail(EISDIR, "rename", job->src, job->dst);
    // Never "unchanged" when dst is the source itself (a hard link): the
    // box would share, and could write, the host's binary.
    bool same_inode = !de && d.ino == s.ino && d.dev_major == s.dev_major && d.dev_minor == s.dev_minor;
    if (!de && !same_inode && S_ISREG(d.mode) && d.size == s.size && d.mtime_sec == s.mtime_sec &&
        d.mtime_nsec == s.mtime_nsec && (d.mode & 07777) == (s.mode & 07777)) {
      job->method = CloneMethod::kSkipped;
      job->bytes = s.size;
      return {};
    }
  }

  // Never a half-written binary under its real name: build it aside, rename.
  std::string tmp = batch->temp_name(base);
  Fd out;
  if (Error e = clone_into(src.get(), s, dirfd, tmp.c_str(), job->mode, *job, &job->method, &out)) {
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
  if (::fchmod(out.get(), s.mode & 07777) != 0) {
    e = fail_errno("fchmod", job->dst);
  } else if (::futimens(out.get(), times) != 0) {
    e = fail_errno("futimens", job->dst);
  } else if (::renameat(dirfd, tmp.c_str(), dirfd, base.c_str()) != 0) {
    // A directory in dst's place: rename says EISDIR, as before.
    e = fail_errno("rename", join_path(dir, tmp), job->dst);
    if (e.code == EISDIR) e.path = job->src;
  }
  if (e) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return e;
  }
  job->bytes = s.size;
  return {};
}

}  // namespace

Error clone_files(std::vector<CloneJob>* jobs, size_t* done) {
  CloneBatch batch;
  for (*done = 0; *done < jobs->size(); (*done)++) {
    if (Error e = clone_one(&(*jobs)[*done], &batch)) return e;
  }
  return {};
}

Error clone_file(CloneJob* job) {
  CloneBatch batch;
  return clone_one(job, &batch);
}

}  // namespace blx
