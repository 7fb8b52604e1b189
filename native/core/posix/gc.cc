// What the CLI's inspect and gc read, and the repairs gc makes. gc decides
// in TypeScript (which boxes are live, what to do); every fact it decides on
// comes from one gc_scan, and every repair is one call here, beneath the
// home's fds. Nothing here waits: pid files and exit records are read
// without blocking and with a cap, box locks are only ever tried.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "../internal.h"

namespace blx {

namespace {

constexpr size_t kPidFileCap = 4096;
constexpr size_t kExitRecordCap = 64 * 1024;
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

}  // namespace

// bin/.{name}.blx-{16 hex}: a copy interrupted before its rename.
bool is_partial_copy(const std::string& name) {
  // A view, not a static std::string: nothing with a destructor that exit()
  // runs while a pool thread may still be in gc.
  constexpr std::string_view kMark = ".blx-";
  if (name.size() < 1 + 1 + kMark.size() + 16 || name[0] != '.') return false;
  size_t mark = name.size() - 16 - kMark.size();
  if (name.compare(mark, kMark.size(), kMark) != 0 || mark < 2) return false;
  return std::all_of(name.end() - 16, name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

namespace {

void read_pid(Dir box, PidRead* pid, Error* error) {
  *error = read_regular_beneath(box, "shim.pid", kPidFileCap, &pid->text, &pid->present);
  if (!*error && pid->present) read_pid_facts(pid);
}

Error list_partial_copies(Dir box, std::vector<std::string>* out) {
  OwnedDir bin;
  if (Error e = open_dir_beneath(box, "bin", Trust::kNone, &bin, nullptr)) return e.code == ENOENT ? Error{} : e;
  std::vector<DirEntry> entries;
  if (Error e = list_dir(bin, &entries)) return e;
  for (const DirEntry& d : entries) {
    if (is_partial_copy(d.name)) out->push_back(d.name);
  }
  std::sort(out->begin(), out->end());
  return {};
}

void link_info(const LinkSpec& link, const std::string& id, LinkInfo* out) {
  *out = LinkInfo{};
  Fd dir(::open(link.parent.c_str(), kDirFlags));
  if (!dir.valid()) return;
  if (!read_link_at(dir.get(), id.c_str(), &out->target)) {
    out->state = errno == EINVAL ? LinkInfo::State::kNotALink : LinkInfo::State::kMissing;
    return;
  }
  out->state = out->target == link.target ? LinkInfo::State::kOk : LinkInfo::State::kForeign;
}

Error bin_files(Dir box, std::vector<BinFile>* out) {
  OwnedDir bin;
  if (Error e = open_dir_beneath(box, "bin", Trust::kNone, &bin, nullptr)) return e.code == ENOENT ? Error{} : e;
  std::vector<DirEntry> entries;
  if (Error e = list_dir(bin, &entries)) return e;
  for (const DirEntry& d : entries) {
    const std::string where = bin.child(d.name);
    Fd fd(::openat(bin.get(), d.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) continue;  // a symlink or gone: not an installed file
    FileStat st;
    if (Error e = stat_at(fd.get(), "", false, &st, where)) return e;
    if (!S_ISREG(st.mode)) continue;
    BinFile f;
    f.name = d.name;
    f.bytes = st.size;
    f.mode = st.mode & 07777;
    if (Error e = extents_shared_fd(fd.get(), where, &f.shares_extents)) return e;
    out->push_back(std::move(f));
  }
  std::sort(out->begin(), out->end(), [](const BinFile& a, const BinFile& b) { return a.name < b.name; });
  return {};
}

// Detach the mount mount_id at rel beneath top, reached without symlinks
// and checked against its id first, so a path swapped since the listing is
// left alone.
Error unmount_beneath(Dir top, const std::string& rel, uint64_t mount_id, bool* detached) {
  *detached = false;
  size_t slash = rel.rfind('/');
  std::string dir = slash == std::string::npos ? std::string() : rel.substr(0, slash);
  std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
  const std::string where = top.child(rel);
  if (!is_plain_name(name)) return fail(EINVAL, "umount2", where);
  OwnedDir at;
  if (Error e = open_dir_beneath(top, dir, Trust::kNone, &at, nullptr)) {
    return e.code == ENOENT ? Error{} : e;
  }
  FileStat st;
  if (Error e = stat_at(at.get(), name.c_str(), false, &st, where)) return e.code == ENOENT ? Error{} : e;
  if (!st.mount_id_known) return fail_reason(ENOTSUP, Reason::kUnsupported, "statx", where);
  if (st.mount_id != mount_id) return {};  // moved or already gone
  if (Error e = detach_mount_at(at.get(), name.c_str(), where)) return e;
  *detached = true;
  return {};
}

// Try the lock of boxes/owner (a box, or a trash dir whose cleanup may still
// be removing it: the rename keeps the inode, and with it the lock). Held in
// *lock until the caller is done; a holder (EBUSY box-busy) means someone is
// at work there. Never waited for. ENOENT: no such entry any more.
Error try_lock_entry(Dir boxes, const std::string& owner, Fd* lock) {
  const std::string where = boxes.child(owner);
  if (!is_plain_name(owner)) return fail(EINVAL, "openat", where);
  lock->reset(::openat(boxes.fd, owner.c_str(), kDirFlags));
  if (!lock->valid()) return fail_errno("openat", where);
  if (::flock(lock->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return fail_reason(EBUSY, Reason::kBoxBusy, "flock", where);
    return fail_errno("flock", where);
  }
  return {};
}

}  // namespace

// The home gc works on: it must exist (never created) and every home
// directory that exists must pass the trust checks (never repaired here).
Error open_home_for_gc(const std::string& home, OwnedDir* root) {
  if (Error e = open_root(home, false, 0, Trust::kCheck, root, nullptr)) {
    if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
    return e;
  }
  for (const char* rel : {"boxes", "bases", "tmp", "images", "locks", "logs"}) {
    OwnedDir dir;
    Error e = open_dir_beneath(*root, rel, Trust::kCheck, &dir, nullptr);
    if (e && e.code != ENOENT) return e;
  }
  return {};
}

Error box_inspect(const BoxRef& ref, const LinkSpec& link, const std::vector<std::string>& socket_names,
                  BoxInspection* out) {
  *out = BoxInspection{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, false, false, Trust::kCheck, &d, nullptr)) return e;
  FileStat m;
  out->isolates = !stat_at(d.box.get(), "mounts", false, &m, d.box.path) && S_ISDIR(m.mode);
  if (Error e = shared_state_at(d.box, true, &out->shared)) return e;
  link_info(link, ref.id, &out->link);
  if (Error e = bin_files(d.box, &out->bin)) return e;
  read_pid(d.box, &out->pid, &out->pid_error);
  out->exit_error = read_regular_beneath(d.box, "exit", kExitRecordCap, &out->exit_text, &out->exit_present);
  out->exit_previous_error = read_regular_beneath(d.box, "exit.previous", kExitRecordCap, &out->exit_previous_text,
                                                  &out->exit_previous_present);
  probe_sockets(d.box, join_path(link.parent, ref.id), out->link.state == LinkInfo::State::kOk, socket_names,
                &out->sockets);
  return {};
}

Error gc_scan(const std::string& home, const LinkSpec& link, GcScan* out) {
  *out = GcScan{};
  OwnedDir root;
  if (Error e = open_home_for_gc(home, &root)) return e;
  OwnedDir boxes;
  Error be = open_dir_beneath(root, "boxes", Trust::kCheck, &boxes, nullptr);
  if (be && be.code != ENOENT) return be;
  if (!be) {
    std::vector<BoxEntry> entries;
    if (Error e = list_box_entries(boxes, &entries)) return e;
    for (const BoxEntry& entry : entries) {
      GcBox b;
      b.name = entry.name;
      b.kind = entry.kind;
      if (entry.kind == EntryKind::kTrash) {
        // A cleanup still removing it holds its lock: gc leaves it alone.
        Fd trash;
        b.locked = try_lock_entry(boxes, entry.name, &trash).reason == Reason::kBoxBusy;
      } else if (entry.kind == EntryKind::kBox) {
        OwnedDir box{Fd(::openat(boxes.get(), entry.name.c_str(), kDirFlags)), boxes.child(entry.name)};
        if (!box.valid()) {
          b.pid_error = fail_errno("openat", box.path);
        } else {
          read_pid(box, &b.pid, &b.pid_error);
          // Someone is setting the box up (or tearing it down) right now:
          // gc leaves it alone. Tried, never waited for.
          if (::flock(box.get(), LOCK_EX | LOCK_NB) == 0) {
            ::flock(box.get(), LOCK_UN);
          } else {
            b.locked = errno == EWOULDBLOCK;
          }
          FileStat st;
          if (!stat_at(box.get(), "", false, &st, box.path)) b.changed_sec = st.mtime_sec;
          if (Error e = list_partial_copies(box, &b.partial_copies)) b.pid_error = e;
          if (Error e = boot_leftovers(box, &b.boot_leftovers)) b.pid_error = e;
        }
      }
      out->boxes.push_back(std::move(b));
    }
    std::vector<MountBelow> mounts;
    if (Error e = mounts_below(boxes, &mounts)) return e;
    for (const MountBelow& mb : mounts) {
      if (mb.rel.empty()) continue;  // the boxes dir itself: not ours to detach
      out->mounts.push_back(GcMount{mb.rel.substr(0, mb.rel.find('/')), mb.rel, mb.mount_id});
    }
    // Deepest (and most recently stacked) first: a safe unmount order.
    std::reverse(out->mounts.begin(), out->mounts.end());
  }
  OwnedDir tmp;
  Error te = open_dir_beneath(root, "tmp", Trust::kCheck, &tmp, nullptr);
  if (te && te.code != ENOENT) return te;
  if (!te) {
    std::vector<DirEntry> entries;
    if (Error e = list_dir(tmp, &entries)) return e;
    for (const DirEntry& d : entries) out->tmp_entries.push_back(d.name);
    std::sort(out->tmp_entries.begin(), out->tmp_entries.end());
  }
  out->links_error = socket_links_sweep(link, true, &out->dangling_links);
  std::sort(out->dangling_links.begin(), out->dangling_links.end());
  return {};
}

Error gc_unmount(const std::string& home, const std::string& owner, const std::vector<GcMount>& mounts,
                 std::vector<GcUnmount>* out) {
  out->clear();
  OwnedDir root;
  if (Error e = open_home_for_gc(home, &root)) return e;
  OwnedDir boxes;
  if (Error e = open_dir_beneath(root, "boxes", Trust::kCheck, &boxes, nullptr)) return e;
  // A jailer script may be mounting this box right now, or a cleanup
  // detaching what is in this trash: only an owner whose lock is free is
  // touched, and it stays locked until we are done.
  Fd lock;
  if (Error e = try_lock_entry(boxes, owner, &lock)) return e;
  for (const GcMount& m : mounts) {
    GcUnmount u;
    u.rel = m.rel;
    u.error = unmount_beneath(boxes, m.rel, m.mount_id, &u.detached);
    out->push_back(std::move(u));
  }
  return {};
}

Error gc_remove(const std::string& home, const std::string& rel_dir, const std::string& name, RemoveStats* out) {
  *out = RemoveStats{};
  OwnedDir root;
  if (Error e = open_home_for_gc(home, &root)) return e;
  // The home's own directory (boxes, tmp) is trust-checked; inside a box
  // (boxes/ID/bin) only "never through a symlink" applies.
  size_t slash = rel_dir.find('/');
  std::string top = rel_dir.substr(0, slash);
  std::string rest = slash == std::string::npos ? std::string() : rel_dir.substr(slash + 1);
  OwnedDir dir;
  if (Error e = open_dir_beneath(root, top, Trust::kCheck, &dir, nullptr)) return e;
  // Inside boxes/, the box (or trash dir) the entry belongs to is locked
  // first: an install's partial copy or a cleanup's trash is left to the
  // call that holds the lock.
  Fd lock;
  if (top == "boxes") {
    if (Error e = try_lock_entry(dir, rest.empty() ? name : rest.substr(0, rest.find('/')), &lock)) {
      return e.code == ENOENT ? Error{} : e;
    }
  }
  OwnedDir inner;
  if (Error e = open_dir_beneath(dir, rest, Trust::kNone, &inner, nullptr)) return e;
  return remove_tree_at(inner, name, true, out);
}

}  // namespace blx
