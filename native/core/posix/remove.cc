// Removal of a box tree that cannot be talked into deleting anything else:
// every step is relative to a directory fd opened with O_NOFOLLOW, every
// directory is checked for being a mount before we descend, symlinks are
// unlinked, never followed. Iterative, with a bounded number of open fds, so
// a hostile 100 000-level tree neither overflows the stack nor runs out of
// fds: below kKeepFds levels a parent is reopened through ".." and verified.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

constexpr size_t kKeepFds = 64;   // parent fds kept open while descending
constexpr int kMaxAttempts = 64;  // per entry: stacked mounts, a racing writer
constexpr int kMaxRelists = 64;   // per directory: a writer adding entries

bool same_dir(const FileStat& a, const FileStat& b) {
  return same_inode(a, b) && (!a.mount_id_known || !b.mount_id_known || a.mount_id == b.mount_id);
}

struct Frame {
  std::string name;  // its name in the parent directory
  FileStat st;       // its identity
  Fd fd;             // open while this frame is current or shallow
  std::vector<DirEntry> entries;
  size_t next = 0;
  int relists = 0;
};

class Remover {
 public:
  Remover(const std::string& parent_path, bool detach, RemoveStats* stats)
      : parent_path_(parent_path), detach_(detach), stats_(stats) {}

  Error run(int parent_fd, const FileStat& parent_st, const std::string& name) {
    parent_fd_ = parent_fd;
    parent_st_ = parent_st;
    parent_st_known_ = true;
    Fd fd;
    FileStat st;
    Step s = open_or_remove(parent_fd, parent_st, name, DT_UNKNOWN, &fd, &st);
    if (s.error) return s.error;
    if (!s.descend) return {};
    return descend(name, std::move(fd), st);
  }

  // The top directory is open already (and known to be no mount point);
  // the parent's stat is taken only if a relist of the top needs it.
  Error run_open(int parent_fd, const std::string& name, Fd fd, const FileStat& st) {
    parent_fd_ = parent_fd;
    parent_st_known_ = false;
    return descend(name, std::move(fd), st);
  }

 private:
  Error descend(const std::string& name, Fd fd, const FileStat& st) {
    std::vector<Frame> stack;
    stack.push_back(Frame{name, st, std::move(fd), {}, 0, 0});
    if (Error e = list_top(stack)) return e;

    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next < f.entries.size()) {
        const DirEntry entry = f.entries[f.next++];
        Fd child;
        FileStat cst;
        Step c = open_or_remove(f.fd.get(), f.st, entry.name, entry.type, &child, &cst, &stack);
        if (c.error) return c.error;
        if (!c.descend) continue;
        if (stack.size() > kKeepFds) f.fd.reset();  // reopened through ".." on the way up
        stack.push_back(Frame{entry.name, cst, std::move(child), {}, 0, 0});
        if (Error e = list_top(stack)) return e;
        continue;
      }
      // Every entry handled: go up and remove the directory itself.
      Fd up;
      int up_fd = parent_fd_;
      const FileStat* up_st = nullptr;  // the top's parent: parent_stat() when needed
      if (stack.size() >= 2) {
        Frame& p = stack[stack.size() - 2];
        up_st = &p.st;
        if (!p.fd.valid()) {
          up.reset(::openat(f.fd.get(), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          FileStat got;
          if (!up.valid() || stat_at(up.get(), "", false, &got, "..") || !same_dir(got, p.st)) {
            // The tree was moved under us: stop rather than guess.
            return fail_reason(EAGAIN, Reason::kTreeMoved, "openat", display(stack, ".."));
          }
          p.fd = std::move(up);
        }
        up_fd = p.fd.get();
      }
      f.fd.reset();
      int rc = ::unlinkat(up_fd, f.name.c_str(), AT_REMOVEDIR);
      int err = rc == 0 ? 0 : errno;
      if (rc == 0 || err == ENOENT) {
        if (rc == 0) stats_->entries++;
        stack.pop_back();
        continue;
      }
      if ((err == ENOTEMPTY || err == EEXIST || err == EBUSY) && f.relists < kMaxRelists) {
        // A racing writer (or a new mount): look again, from the same checks.
        std::string name_copy = f.name;
        int relists = f.relists + 1;
        stack.pop_back();
        if (up_st == nullptr) {
          if (Error e = parent_stat(&up_st)) return e;
        }
        Fd again;
        FileStat ast;
        Step s2 = open_or_remove(up_fd, *up_st, name_copy, DT_DIR, &again, &ast, &stack);
        if (s2.error) return s2.error;
        if (!s2.descend) continue;
        stack.push_back(Frame{name_copy, ast, std::move(again), {}, 0, relists});
        if (Error e = list_top(stack)) return e;
        continue;
      }
      return fail(err, "unlinkat", display(stack, ""));
    }
    return {};
  }

  Error parent_stat(const FileStat** out) {
    if (!parent_st_known_) {
      if (Error e = stat_at(parent_fd_, "", false, &parent_st_, parent_path_)) return e;
      parent_st_known_ = true;
    }
    *out = &parent_st_;
    return {};
  }

  struct Step {
    Error error;
    bool descend = false;
  };

  // The path of stack + name, for messages and the mountinfo fallback only:
  // O(depth), so never built per level on the way down.
  std::string display(const std::vector<Frame>& stack, const std::string& name) const {
    std::string p = parent_path_;
    for (const Frame& f : stack) {
      if (!p.empty() && p.back() != '/') p += '/';
      p += f.name;
    }
    if (!name.empty()) {
      if (!p.empty() && p.back() != '/') p += '/';
      p += name;
    }
    return p;
  }

  Error list_top(std::vector<Frame>& stack) const {
    Error e = list_dir(Dir{stack.back().fd.get(), std::string()}, &stack.back().entries);
    if (e) e.path = display(stack, "");
    return e;
  }

  bool is_mount(int dirfd, const FileStat& st, const FileStat& parent, const std::string& name,
                const std::vector<Frame>* stack) {
    auto where = [&] { return stack == nullptr ? join_path(parent_path_, name) : display(*stack, name); };
    return is_mount_point_at(dirfd, name.c_str(), st, parent, where());
  }

  Error detach(int dirfd, const std::string& name, const std::string& where) {
    if (!detach_) return fail_reason(EBUSY, Reason::kMountInTheWay, "umount2", where);
    if (Error e = detach_mount_at(dirfd, name.c_str(), where)) {
      // Whatever the reason, the answer is the same: it is still mounted
      // and nothing below it was touched.
      return fail_reason(EBUSY, Reason::kMountInTheWay, e.syscall, where, e.code);
    }
    stats_->unmounted++;
    return {};
  }

  // Remove dirfd/name if it is not a directory; if it is one (and not a
  // mount, after detaching any), open it for descent.
  Step open_or_remove(int dirfd, const FileStat& parent, const std::string& name, unsigned char type, Fd* out,
                      FileStat* st, const std::vector<Frame>* stack = nullptr) {
    const char* n = name.c_str();
    auto where = [&] { return stack == nullptr ? join_path(parent_path_, name) : display(*stack, name); };
    // An empty directory goes straight to rmdir: the kernel refuses a mount
    // point (EBUSY), and there is nothing inside to delete through.
    if (type == DT_DIR) {
      if (::unlinkat(dirfd, n, AT_REMOVEDIR) == 0) {
        stats_->entries++;
        return {};
      }
      if (errno == ENOENT) return {};
    }
    // Plain files go straight to unlinkat; only a surprise costs more.
    if (type != DT_DIR && type != DT_UNKNOWN) {
      if (::unlinkat(dirfd, n, 0) == 0) {
        stats_->entries++;
        return {};
      }
      if (errno == ENOENT) return {};
      if (errno != EBUSY && errno != EISDIR && errno != EPERM) return {fail_errno("unlinkat", where())};
    }
    for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
      Fd fd(::openat(dirfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) {
        int err = errno;
        if (err == ENOENT) return {};
        if (err != ENOTDIR && err != ELOOP) return {fail(err, "openat", where())};
        // Not a directory (a file, a symlink, or a bind mount on a file).
        if (::unlinkat(dirfd, n, 0) == 0) {
          stats_->entries++;
          return {};
        }
        if (errno == ENOENT) return {};
        if (errno != EBUSY && errno != EISDIR) return {fail_errno("unlinkat", where())};
        FileStat fst;
        if (Error e = stat_at(dirfd, n, false, &fst, where())) return {e.code == ENOENT ? Error{} : e};
        if (S_ISDIR(fst.mode)) continue;  // swapped for a directory: look again
        if (Error e = detach(dirfd, name, where())) return {e};
        continue;
      }
      if (Error e = stat_at(fd.get(), "", false, st, where())) return {e};
      if (is_mount(dirfd, *st, parent, name, stack)) {
        fd.reset();
        if (Error e = detach(dirfd, name, where())) return {e};
        continue;
      }
      *out = std::move(fd);
      return {Error{}, true};
    }
    return {fail_reason(EBUSY, Reason::kMountInTheWay, "unlinkat", where())};
  }

  std::string parent_path_;
  bool detach_;
  RemoveStats* stats_;
  int parent_fd_ = -1;
  FileStat parent_st_;
  bool parent_st_known_ = false;
};

}  // namespace

Error remove_tree_at(Dir parent, const std::string& name, bool detach_mounts, RemoveStats* stats) {
  *stats = RemoveStats{};
  if (!is_plain_name(name)) return fail(EINVAL, "unlinkat", parent.child(name));
  FileStat pst;
  if (Error e = stat_at(parent.fd, "", false, &pst, parent.path)) return e;
  Remover r(parent.path, detach_mounts, stats);
  return r.run(parent.fd, pst, name);
}

Error remove_open_tree_at(Dir parent, const std::string& name, Fd dir, const FileStat& st, bool detach_mounts,
                          RemoveStats* stats) {
  *stats = RemoveStats{};
  if (!is_plain_name(name)) return fail(EINVAL, "unlinkat", parent.child(name));
  Remover r(parent.path, detach_mounts, stats);
  return r.run_open(parent.fd, name, std::move(dir), st);
}

}  // namespace blx
