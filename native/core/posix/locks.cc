// flock locks: the runtime lock on {home}/.lock and per-entity lock files.
// Every lock file is opened O_NOFOLLOW | O_NONBLOCK and must be a regular
// file, so a planted symlink, FIFO or device is refused, never followed or
// waited on. The box lock lives with the box (beneath.cc open_box).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

constexpr uint64_t kMaxLockId = 0xffffffffull;

Error check_lock_file(int fd, const std::string& where) {
  FileStat st;
  if (Error e = stat_at(fd, "", false, &st, where)) return e;
  if (!S_ISREG(st.mode)) return fail_reason(EINVAL, Reason::kNotRegularFile, "open", where, st.mode & S_IFMT);
  return {};
}

Error open_lock_file(Dir dir, const std::string& name, int flags, Fd* out) {
  const std::string where = dir.child(name);
  out->reset(::openat(dir.fd, name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644));
  if (!out->valid()) {
    if (errno == ELOOP) return fail_reason(ELOOP, Reason::kSymlink, "open", where);
    return fail_errno("open", where);
  }
  return check_lock_file(out->get(), where);
}

// After the lock: is the file still the one under its name? free() and a
// new allocate() can put another inode there while we waited.
Error check_still_named(Dir dir, const std::string& name, int fd) {
  const std::string where = dir.child(name);
  FileStat held, named;
  if (Error e = stat_at(fd, "", false, &held, where)) return e;
  Error ne = stat_at(dir.fd, name.c_str(), false, &named, where);
  if (ne && ne.code != ENOENT) return ne;
  if (ne) return fail_reason(ENOENT, Reason::kRemovedWhileWaiting, "flock", where);
  if (!same_inode(held, named)) return fail_reason(ESTALE, Reason::kReplacedWhileWaiting, "flock", where);
  return {};
}

int flock_retry(int fd, int op) {
  int rc;
  do {
    rc = ::flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

// The pid a runtime lock's holder wrote, or -1.
int64_t holder_pid(int fd) {
  char buf[24];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n <= 0) return -1;
  return pid_of_text(std::string(buf, static_cast<size_t>(n)));
}

// The home whose .lock is wanted: it must exist (never created here).
Error open_lock_home(const std::string& home, OwnedDir* root) {
  Error e = open_root(home, false, 0, Trust::kCheck, root, nullptr);
  if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
  return e;
}

}  // namespace

bool lock_id_of_name(const std::string& name, uint32_t* id) {
  if (name.empty() || name.size() > 10 || (name[0] == '0' && name.size() > 1)) return false;
  uint64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > kMaxLockId) return false;
  *id = static_cast<uint32_t>(n);
  return true;
}

Error runtime_lock(const std::string& home, int* out) {
  *out = -1;
  OwnedDir root;
  if (Error e = open_lock_home(home, &root)) return e;
  const std::string where = root.child(".lock");
  Fd fd;
  if (Error e = open_lock_file(root, ".lock", O_RDWR | O_CREAT, &fd)) return e;
  FileStat st;
  if (Error e = stat_at(fd.get(), "", false, &st, where)) return e;
  // Hard-linked: writing our pid would truncate whatever else it names.
  if (st.nlink > 1) return fail_reason(EMLINK, Reason::kHardLinked, "open", where, static_cast<int64_t>(st.nlink));
  if (st.uid != ::geteuid()) return fail_reason(EPERM, Reason::kForeignOwner, "open", where, st.uid);
  if (flock_retry(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return fail_reason(EBUSY, Reason::kRuntimeLocked, "flock", where, holder_pid(fd.get()));
    return fail_errno("flock", where);
  }
  // The holder's pid, for the message whoever comes next reads; written
  // through the fd we hold, only once the lock is ours.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0) return fail_errno("ftruncate", where);
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return fail_errno("write", where);
  }
  *out = fd.release();
  return {};
}

Error runtime_lock_adopt(const std::string& home, int fd, bool* adopted) {
  *adopted = false;
  // The fd is judged before anything is opened here. A number that is not
  // open (a lock the parent did not pass down) would otherwise be taken by
  // the home's or .lock's own descriptor, pass for the lock, and be closed
  // on return: the caller would "hold" a lock through a closed fd. Not an
  // open fd is not this home's lock; the caller takes the lock itself.
  FileStat given;
  const bool is_open = fd >= 0 && !stat_at(fd, "", false, &given, home);
  OwnedDir root;
  if (Error e = open_lock_home(home, &root)) return e;
  if (!is_open) return {};
  const std::string where = root.child(".lock");
  Fd named;
  if (Error e = open_lock_file(root, ".lock", O_RDONLY, &named)) return e.code == ENOENT ? Error{} : e;
  FileStat want;
  if (Error e = stat_at(named.get(), "", false, &want, where)) return e;
  if (!same_inode(want, given)) return {};
  // The inherited open file description holds the flock, so asking for it
  // again through it succeeds at once; a fd that merely names the file
  // while another process holds the lock gets EWOULDBLOCK.
  if (flock_retry(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return fail_reason(EBUSY, Reason::kRuntimeLocked, "flock", where, holder_pid(named.get()));
    return fail_errno("flock", where);
  }
  // Ours now: a shim this process spawns must not inherit it.
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return fail_errno("fcntl", where);
  *adopted = true;
  return {};
}

Error lock_allocate(const DirRef& dir, uint32_t* id) {
  OwnedDir held;
  if (Error e = open_dir_ref(dir, true, &held)) return e;
  std::vector<DirEntry> entries;
  if (Error e = list_dir(held, &entries)) return e;
  std::vector<bool> used;
  for (const DirEntry& d : entries) {
    uint32_t n;
    if (!lock_id_of_name(d.name, &n)) continue;
    if (n < entries.size() + 1) {
      if (used.size() <= n) used.resize(n + 1, false);
      used[n] = true;
    }
  }
  // The smallest free id; O_EXCL settles a race with another allocator.
  for (uint64_t n = 0; n <= kMaxLockId; n++) {
    if (n < used.size() && used[n]) continue;
    const std::string name = std::to_string(n);
    Fd fd(::openat(held.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.valid()) {
      *id = static_cast<uint32_t>(n);
      return {};
    }
    if (errno != EEXIST) return fail_errno("open", held.child(name));
  }
  return fail_reason(EAGAIN, Reason::kIdsExhausted, "open", held.path);
}

Error lock_acquire(const DirRef& dir, uint32_t id, bool wait, bool may_block, int* out, bool* acquired) {
  *out = -1;
  *acquired = false;
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e;
  const std::string name = std::to_string(id);
  const std::string where = held.child(name);
  Fd fd;
  if (Error e = open_lock_file(held, name, O_RDWR, &fd)) {
    if (e.code == ENOENT) e.reason = Reason::kNotAllocated;
    return e;
  }
  if (flock_retry(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return fail_errno("flock", where);
    if (!wait) return {};
    if (!may_block) return fail_reason(EWOULDBLOCK, Reason::kWouldBlock, "flock", where);
    if (flock_retry(fd.get(), LOCK_EX) != 0) return fail_errno("flock", where);
  }
  if (Error e = check_still_named(held, name, fd.get())) return e;
  *acquired = true;
  *out = fd.release();
  return {};
}

Error lock_free(const DirRef& dir, uint32_t id) {
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e.code == ENOENT ? Error{} : e;
  const std::string name = std::to_string(id);
  if (::unlinkat(held.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return fail_errno("unlink", held.child(name));
  }
  return {};
}

}  // namespace blx
