// The resolve-beneath primitives every operation is built from (internal.h):
// open, make and read paths below a directory fd the operation holds,
// without following a symlink and without leaving that directory.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// The components of a relative path; empty ones ("a//b") are skipped.
// ".." never appears in the paths the facade builds; refuse it anyway.
bool split_rel(const std::string& rel, std::vector<std::string>* out) {
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string comp = rel.substr(start, slash - start);
    if (comp == "..") return false;
    if (!comp.empty() && comp != ".") out->push_back(std::move(comp));
    start = slash + 1;
  }
  return true;
}

// Why opening dirfd/name as a directory failed, told precisely: a symlink
// (whatever errno the platform chose for it), something else, or errno.
Error open_dir_error(int err, int dirfd, const std::string& name, const std::string& where) {
  if (err == ELOOP || err == ENOTDIR || err == EMLINK) {
    FileStat st;
    if (!stat_at(dirfd, name.c_str(), false, &st, where)) {
      if (S_ISLNK(st.mode)) return fail_reason(ELOOP, Reason::kSymlink, "openat", where);
      if (!S_ISDIR(st.mode)) return fail_reason(ENOTDIR, Reason::kNotDirectory, "openat", where);
    }
  }
  return fail(err, "openat", where);
}

// mkdir -p of an operator path, as given (the kernel resolves "..").
Error make_path(const std::string& path, mode_t mode, int depth, bool* created) {
  if (::mkdir(path.c_str(), mode) == 0) {
    *created = true;
    return {};
  }
  int err = errno;
  if (err == EEXIST) return {};
  if (err != ENOENT || depth > 256) return fail(err, "mkdir", path);
  std::string parent, name;
  split_path(path, &parent, &name);
  if (parent == path || name.empty()) return fail(err, "mkdir", path);
  bool ignored = false;
  if (Error e = make_path(parent, 0755, depth + 1, &ignored)) return e;
  if (::mkdir(path.c_str(), mode) == 0) {
    *created = true;
    return {};
  }
  if (errno == EEXIST) return {};
  return fail_errno("mkdir", path);
}

// A directory mkdirat just made has mode & ~umask. Almost always that is
// already the mode we promise (umask 022 takes nothing from 0755 or 0700):
// a statx says so, where an fchmod would be a metadata transaction (and a
// log write on XFS) on every directory made. Only a mode the umask trimmed
// is set, on the fd itself.
Error exact_mode(int fd, mode_t mode, const std::string& where) {
  FileStat st;
  if (Error e = stat_at(fd, "", false, &st, where)) return e;
  if ((st.mode & 07777) == mode) return {};
  if (::fchmod(fd, mode) != 0) return fail_errno("fchmod", where);
  return {};
}

// One step of a walk: open (making it first when mode != 0) the directory
// name beneath cur, then check it.
//
// make_first: the caller expects name to be missing (a box's subdirectory
// in a box this call made), so mkdirat comes before the look that would
// fail with ENOENT.
//
// A directory this call made needs no trust check: its parent is trusted
// (checked, or made by us) or trust is not asked for, so only we (or root)
// could have put anything else under the name, and exact_mode gives it
// exactly the mode we promise, whatever the umask. O_NOFOLLOW|O_DIRECTORY
// on the open still refuses anything but a directory.
Error step_into(int cur, const std::string& name, mode_t make_mode, bool make_first, const std::string& where,
                Trust trust, Fd* out, Repairs* repairs, bool* created) {
  *created = false;
  for (int attempt = 0; attempt < 8; attempt++) {
    if (make_mode != 0 && (make_first || attempt > 0) && !*created) {
      if (::mkdirat(cur, name.c_str(), make_mode) == 0) {
        *created = true;
      } else if (errno != EEXIST) {
        return fail_errno("mkdirat", where);
      }
      // EEXIST: a racing creator, or it was there: open theirs, checked.
    }
    Fd fd(::openat(cur, name.c_str(), kDirFlags));
    if (!fd.valid()) {
      int err = errno;
      if (err != ENOENT || make_mode == 0) return open_dir_error(err, cur, name, where);
      *created = false;  // removed between our mkdirat and the open: again
      continue;
    }
    if (*created) {
      if (Error e = exact_mode(fd.get(), make_mode, where)) return e;
      if ((make_mode & 022) == 0) {
        *out = std::move(fd);
        return {};
      }
    }
    // O_DIRECTORY made sure it is a directory; that is all kNone asks.
    if (trust != Trust::kNone) {
      if (Error e = check_trusted_dir(Dir{fd.get(), where}, trust, false, repairs)) return e;
    }
    *out = std::move(fd);
    return {};
  }
  return fail(EAGAIN, "mkdirat", where);
}

Error walk(Dir at, const std::string& rel, mode_t make_mode, bool make_first, Trust trust, OwnedDir* out,
           Repairs* repairs, bool* created) {
  std::vector<std::string> comps;
  if (!split_rel(rel, &comps)) return fail(EINVAL, "openat", at.child(rel));
  // The first step starts from the caller's fd, borrowed; each later one
  // from the fd the step before opened. Only an empty rel (the directory
  // itself) needs a descriptor of its own: a dup, as O_NOFOLLOW open of ".".
  if (comps.empty()) {
    Fd self(::openat(at.fd, ".", kDirFlags));
    if (!self.valid()) return fail_errno("openat", at.path);
    if (created != nullptr) *created = false;
    out->fd = std::move(self);
    out->path = at.path;
    return {};
  }
  Fd cur;
  std::string where = at.path;
  bool made = false;
  for (size_t i = 0; i < comps.size(); i++) {
    where = join_path(where, comps[i]);
    Fd next;
    // Below a directory we just made, everything is missing too.
    const bool first = (make_first && i + 1 == comps.size()) || made;
    if (Error e =
            step_into(i == 0 ? at.fd : cur.get(), comps[i], make_mode, first, where, trust, &next, repairs, &made)) {
      return e;
    }
    cur = std::move(next);
  }
  if (created != nullptr) *created = made;
  out->fd = std::move(cur);
  out->path = at.child(rel);
  return {};
}

}  // namespace

Error check_trusted_dir(Dir dir, Trust trust, bool sticky_ok, Repairs* repairs) {
  FileStat st;
  if (Error e = stat_at(dir.fd, "", false, &st, dir.path)) return e;
  return check_trusted_stat(dir, st, trust, sticky_ok, repairs);
}

Error check_trusted_stat(Dir dir, const FileStat& st, Trust trust, bool sticky_ok, Repairs* repairs) {
  if (!S_ISDIR(st.mode)) return fail_reason(ENOTDIR, Reason::kNotDirectory, "open", dir.path);
  if (trust == Trust::kNone) return {};
  // Root-owned with no group/other write (the usual home and box) needs no
  // euid: root may own anything we use, and nothing is loose.
  if (st.uid == 0 && (st.mode & 022) == 0) return {};
  const uid_t me = ::geteuid();
  if (st.uid != me && st.uid != 0) return fail_reason(EPERM, Reason::kForeignOwner, "open", dir.path, st.uid);
  if ((st.mode & 022) == 0) return {};
  if (sticky_ok && (st.mode & S_ISVTX) != 0) return {};
  if (trust == Trust::kRepair && st.uid == me) {
    if (::fchmod(dir.fd, (st.mode & 07777) & ~022u) != 0) return fail_errno("fchmod", dir.path);
    if (repairs != nullptr) repairs->push_back(dir.path);
    return {};
  }
  return fail_reason(EPERM, Reason::kLooseMode, "open", dir.path, st.mode & 07777);
}

Error open_root(const std::string& path, bool create, mode_t mode, Trust trust, OwnedDir* out, Repairs* repairs) {
  if (path.empty()) return fail(EINVAL, "open", path);
  bool created = false;
  // The home exists for every call but the first: look before making it.
  // Any failed look goes the making way, so a failure is reported as the
  // mkdir that meets it (a file where a directory should be, say).
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() && create) {
    if (Error e = make_path(path, mode, 0, &created)) return e;
    fd.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  if (!fd.valid()) {
    int err = errno;
    if (err == ENOTDIR) return fail_reason(ENOTDIR, Reason::kNotDirectory, "open", path);
    return fail(err, "open", path);
  }
  if (created && ::fchmod(fd.get(), mode) != 0) return fail_errno("fchmod", path);
  if (Error e = check_trusted_dir(Dir{fd.get(), path}, trust, true, repairs)) return e;
  out->fd = std::move(fd);
  out->path = path;
  return {};
}

Error open_dir_beneath(Dir at, const std::string& rel, Trust trust, OwnedDir* out, Repairs* repairs) {
  if (trust == Trust::kNone && !rel.empty()) {
    // One syscall where the kernel can; on any failure the walk below
    // answers, precisely and just as safely.
    int fd = openat2_beneath(at.fd, rel.c_str(), O_RDONLY | O_DIRECTORY, 0);
    if (fd >= 0) {
      out->fd = Fd(fd);
      out->path = at.child(rel);
      return {};
    }
  }
  return walk(at, rel, 0, false, trust, out, repairs, nullptr);
}

Error make_dir_beneath(Dir at, const std::string& rel, mode_t mode, Trust trust, OwnedDir* out, Repairs* repairs,
                       bool* created, bool expect_missing) {
  return walk(at, rel, mode, expect_missing, trust, out, repairs, created);
}

Error make_leaf_dir(Dir at, const std::string& name, mode_t mode) {
  std::string where = at.child(name);
  if (!is_plain_name(name)) return fail(EINVAL, "mkdirat", where);
  if (::mkdirat(at.fd, name.c_str(), mode) == 0) {
    // Ours, beneath a directory only we (or root) can write: its mode is
    // all there is to see, and the name needs no descriptor for that.
    FileStat st;
    if (Error e = stat_at(at.fd, name.c_str(), false, &st, where)) return e;
    if (S_ISDIR(st.mode) && (st.mode & 07777) == mode) return {};
    // The umask trimmed it: set the mode on the directory itself, opened
    // without following, and only if it is still the one just stat'ed.
    Fd fd(::openat(at.fd, name.c_str(), kDirFlags));
    if (!fd.valid()) return open_dir_error(errno, at.fd, name, where);
    FileStat now;
    if (Error e = stat_at(fd.get(), "", false, &now, where)) return e;
    if (!same_inode(st, now)) return fail(EAGAIN, "mkdirat", where);
    if (::fchmod(fd.get(), mode) != 0) return fail_errno("fchmod", where);
    return {};
  }
  if (errno != EEXIST) return fail_errno("mkdirat", where);
  // There already (a box prepared again): opened and judged as any walk does.
  OwnedDir there;
  return walk(at, name, mode, false, Trust::kNone, &there, nullptr, nullptr);
}

Error open_beneath(Dir at, const std::string& rel, int flags, mode_t mode, Fd* out) {
  size_t slash = rel.rfind('/');
  std::string dir = slash == std::string::npos ? std::string() : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  std::string where = at.child(rel);
  if (!is_plain_name(name)) return fail(EINVAL, "openat", where);
  OwnedDir parent;
  int parent_fd = at.fd;
  if (!dir.empty()) {
    if (Error e = open_dir_beneath(at, dir, Trust::kNone, &parent, nullptr)) return e;
    parent_fd = parent.get();
  }
  Fd fd(::openat(parent_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode));
  if (!fd.valid()) {
    int err = errno;
    if (err == ELOOP) return fail_reason(ELOOP, Reason::kSymlink, "openat", where);
    return fail(err, "openat", where);
  }
  *out = std::move(fd);
  return {};
}

Error read_regular_beneath(Dir at, const std::string& rel, size_t cap, std::string* out, bool* present) {
  out->clear();
  *present = false;
  std::string where = at.child(rel);
  Fd fd;
  if (Error e = open_beneath(at, rel, O_RDONLY | O_NONBLOCK, 0, &fd)) {
    return e.code == ENOENT ? Error{} : e;
  }
  FileStat st;
  if (Error e = stat_at(fd.get(), "", false, &st, where)) return e;
  if (!S_ISREG(st.mode)) return fail_reason(EINVAL, Reason::kNotRegularFile, "open", where, st.mode & S_IFMT);
  if (st.size > cap) return fail_reason(EFBIG, Reason::kTooLarge, "read", where, static_cast<int64_t>(cap));
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", where);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    // It grew since the fstat: still capped.
    if (out->size() > cap) return fail_reason(EFBIG, Reason::kTooLarge, "read", where, static_cast<int64_t>(cap));
  }
  *present = true;
  return {};
}

Error write_atomic_at(Dir dir, const std::string& name, const std::string& data, mode_t mode) {
  const int dirfd = dir.fd;
  std::string where = dir.child(name);
  if (!is_plain_name(name)) return fail(EINVAL, "openat", where);
  // The same temporary-name shape as shim copies. gc removes interrupted
  // ones only in bin/; elsewhere a crash can leave one (a small file, never
  // read as the record it was to become).
  std::string tmp = "." + name.substr(0, 200) + ".blx-" + random_suffix();
  Fd fd(::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return fail_errno("openat", where);
  Error e;
  size_t done = 0;
  while (!e && done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno != EINTR) e = fail_errno("write", where);
      continue;
    }
    done += static_cast<size_t>(n);
  }
  if (!e && ::fchmod(fd.get(), mode) != 0) e = fail_errno("fchmod", where);
  fd.reset();
  if (!e && ::renameat(dirfd, tmp.c_str(), dirfd, name.c_str()) != 0) e = fail_errno("rename", where);
  if (e) ::unlinkat(dirfd, tmp.c_str(), 0);
  return e;
}

Error open_dir_ref(const DirRef& ref, bool create, OwnedDir* out) {
  OwnedDir root;
  if (Error e = open_root(ref.root, create, 0755, Trust::kCheck, &root, nullptr)) return e;
  if (create) return make_dir_beneath(root, ref.rel, 0755, Trust::kCheck, out, nullptr);
  return open_dir_beneath(root, ref.rel, Trust::kCheck, out, nullptr);
}

namespace {

Error open_boxes(const BoxRef& ref, BoxOpen how, Trust trust, BoxDirs* out, Repairs* repairs) {
  if (!is_plain_name(ref.id)) return fail(EINVAL, "openat", join_path(join_path(ref.root, ref.boxes), ref.id));
  const bool create = how == BoxOpen::kCreate;
  if (Error e = open_root(ref.root, create, 0755, trust, &out->root, repairs)) {
    if (e.code == ENOENT && !create) e.reason = Reason::kNotPrepared;
    return e;
  }
  out->boxes.path = out->root.child(ref.boxes);
  Error e = create ? make_dir_beneath(out->root, ref.boxes, 0755, trust, &out->boxes, repairs)
                   : open_dir_beneath(out->root, ref.boxes, trust, &out->boxes, repairs);
  if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
  return e;
}

// ASCII letters compared without case: ids are [A-Za-z0-9_-], so this is
// exactly how a folding filesystem compares an id with any name.
bool folds_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

// On a filesystem that folds case, "abc" and "ABC" are one directory entry,
// so a lookup of either opens the other's box. Decided by listing the boxes
// dir, which names every entry as it is spelled on disk, not by trusting a
// lookup: any entry spelled differently from id that folds to it is a
// collision. The same code runs on macOS and on Linux under
// BOXLITE_LAYOUT_CASE_INSENSITIVE=1, where only the answer of
// names_fold_case() is forced.
Error check_case_twin(Dir boxes, const std::string& id, const std::string& where) {
  Fd dir(::openat(boxes.fd, ".", kDirFlags));
  if (!dir.valid()) return fail_errno("openat", boxes.path);
  std::vector<DirEntry> entries;
  if (Error e = list_dir(Dir{dir.get(), boxes.path}, &entries)) return e;
  for (const DirEntry& d : entries) {
    if (d.name != id && folds_equal(d.name, id)) {
      Error e = fail_reason(EEXIST, Reason::kCaseCollision, "openat", where);
      e.dest = boxes.child(d.name);
      return e;
    }
  }
  return {};
}

}  // namespace

Error open_box(const BoxRef& ref, BoxOpen how, bool lock, bool may_block, Trust trust, BoxDirs* out, Repairs* repairs) {
  if (Error e = open_boxes(ref, how, trust, out, repairs)) return e;
  out->box.path = out->boxes.child(ref.id);
  const char* id = ref.id.c_str();
  const std::string& where = out->box.path;
  const bool fold = names_fold_case(out->boxes.get());
  for (int attempt = 0; attempt < 16; attempt++) {
    bool created = false;
    if (how == BoxOpen::kCreate) {
      if (::mkdirat(out->boxes.get(), id, 0755) == 0) {
        created = true;
      } else if (errno != EEXIST) {
        return fail_errno("mkdirat", where);
      }
    }
    Fd box(::openat(out->boxes.get(), id, kDirFlags));
    if (!box.valid()) {
      int err = errno;
      if (err == ENOENT && how == BoxOpen::kCreate) continue;  // a cleanup took it between mkdir and open
      Error e = open_dir_error(err, out->boxes.get(), ref.id, where);
      if (e.code == ENOENT) {
        e.reason = Reason::kNotPrepared;
        // Where only the check is forced (Linux), a twin is named as a
        // folding filesystem's lookup would have found it.
        if (fold) {
          if (Error ce = check_case_twin(out->boxes, ref.id, where)) return ce;
        }
      }
      return e;
    }
    // Before the lock: a twin's lock is not ours to wait for.
    if (fold) {
      if (Error e = check_case_twin(out->boxes, ref.id, where)) {
        if (created) ::unlinkat(out->boxes.get(), id, AT_REMOVEDIR);  // ours, empty (a non-folding fs let us make it)
        return e;
      }
    }
    // A box made just now is ours, beneath the trusted boxes dir: no trust
    // check, only its mode made exact (after the lock, from the stat the
    // lock's check takes anyway).
    // With the lock, the check reads the stat the lock's identity check
    // takes anyway: nothing is done to the box before it passes.
    if (!created && !lock) {
      if (Error e = check_trusted_dir(Dir{box.get(), where}, trust, false, repairs)) return e;
    } else if (!lock && ::fchmod(box.get(), 0755) != 0) {
      return fail_errno("fchmod", where);
    }
    if (lock) {
      int rc;
      do {
        rc = ::flock(box.get(), LOCK_EX | (may_block ? 0 : LOCK_NB));
      } while (rc != 0 && errno == EINTR);
      if (rc != 0) {
        if (errno == EWOULDBLOCK) return fail_reason(EWOULDBLOCK, Reason::kWouldBlock, "flock", where);
        return fail_errno("flock", where);
      }
      // Whoever held the lock may have removed the box (cleanup renames it
      // to trash) or made a new one under the name.
      FileStat held, named;
      if (Error e = stat_at(box.get(), "", false, &held, where)) return e;
      Error ne = stat_at(out->boxes.get(), id, false, &named, where);
      if (ne && ne.code != ENOENT) return ne;
      const bool gone = static_cast<bool>(ne);
      if (gone || !same_inode(held, named)) {
        if (how == BoxOpen::kCreate) continue;
        return gone ? fail_reason(ENOENT, Reason::kRemovedWhileWaiting, "flock", where)
                    : fail_reason(ESTALE, Reason::kReplacedWhileWaiting, "flock", where);
      }
      if (created && (held.mode & 07777) != 0755) {
        if (::fchmod(box.get(), 0755) != 0) return fail_errno("fchmod", where);
        held.mode = (held.mode & ~07777u) | 0755;
      }
      if (!created) {
        if (Error e = check_trusted_stat(Dir{box.get(), where}, held, trust, false, repairs)) return e;
      }
      out->box_stat = held;
      out->box_stat_known = true;
    }
    out->box_created = created;
    out->box.fd = std::move(box);
    return {};
  }
  return fail_reason(ESTALE, Reason::kReplacedWhileWaiting, "flock", where);
}

Error open_shared_root(Dir box, OwnedDir* out) {
  out->path = box.child("shared");
  Fd fd(::openat(box.fd, "shared", kDirFlags));
  if (fd.valid()) {
    out->fd = std::move(fd);
    return {};
  }
  int err = errno;
  std::string target;
  if ((err == ELOOP || err == ENOTDIR) && read_link_at(box.fd, "shared", &target) && target == "mounts") {
    out->path = box.child("mounts");
    fd.reset(::openat(box.fd, "mounts", kDirFlags));
    if (!fd.valid()) return open_dir_error(errno, box.fd, "mounts", out->path);
    out->fd = std::move(fd);
    return {};
  }
  return open_dir_error(err, box.fd, "shared", out->path);
}

}  // namespace blx
