// shared/ shows mounts/ read-only: the operations around the platform's
// bind primitives (linux/mount.cc), decided by mount ids and statvfs flags,
// never by reading mountinfo on the way.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// What is at box/shared, relative to box/mounts.
Error inspect_at(Dir box_dir, SharedState* out) {
  *out = SharedState{};
  const int box_fd = box_dir.fd;
  const std::string where = box_dir.child("shared");
  FileStat t;
  if (Error e = stat_at(box_fd, "shared", false, &t, where)) return e.code == ENOENT ? Error{} : e;
  if (S_ISLNK(t.mode)) {
    out->kind = SharedKind::kSymlink;
    if (!read_link_at(box_fd, "shared", &out->link_target)) return fail_errno("readlink", where);
    out->shows_mounts = out->link_target == "mounts" || out->link_target == box_dir.child("mounts");
    return {};
  }
  if (!S_ISDIR(t.mode)) {
    out->kind = SharedKind::kOther;
    return {};
  }
  FileStat box;
  if (Error e = stat_at(box_fd, "", false, &box, box_dir.path)) return e;
  Fd fd(::openat(box_fd, "shared", kDirFlags));
  if (!fd.valid()) return fail_errno("openat", where);
  if (!is_mount_point_at(box_fd, "shared", t, box, where)) {
    out->kind = SharedKind::kDirectory;
    std::vector<DirEntry> entries;
    if (Error e = list_dir(Dir{fd.get(), where}, &entries)) return e;
    out->empty = entries.empty();
    return {};
  }
  out->kind = SharedKind::kMount;
  if (Error e = mount_read_only(Dir{fd.get(), where}, &out->read_only)) return e;
  FileStat m;
  Error me = stat_at(box_fd, "mounts", false, &m, box_dir.child("mounts"));
  if (me && me.code != ENOENT) return me;
  out->shows_mounts = !me && S_ISDIR(m.mode) && same_inode(m, t);
  return {};
}

// Make the empty directory box/shared show mounts read-only, or, where
// mounting is refused, a symlink to it. `prior` is what shared/ was before
// this call, put back when a read-only mount is required and impossible.
Error bind_or_link(const BoxDirs& d, Dir mounts, SharedKind prior, bool require_read_only, bool force_legacy,
                   MountResult* out) {
  const std::string& source = mounts.path;
  const std::string target = d.box.child("shared");
  BindMethod used = BindMethod::kNewApi;
  Error e = bind_readonly_at(mounts, d.box, "shared", force_legacy, &used);
  if (!e) {
    out->method = used == BindMethod::kNewApi ? MountMethod::kBindRo : MountMethod::kBindRoLegacy;
    return {};
  }
  if (e.code != EPERM && e.code != EACCES && e.code != ENOTSUP) return e;
  if (require_read_only) {
    if (prior != SharedKind::kDirectory) ::unlinkat(d.box.get(), "shared", AT_REMOVEDIR);
    if (prior == SharedKind::kSymlink) ::symlinkat("mounts", d.box.get(), "shared");
    e.reason = Reason::kReadOnlyImpossible;
    e.path = source;
    e.dest = target;
    return e;
  }
  if (::unlinkat(d.box.get(), "shared", AT_REMOVEDIR) != 0) return fail_errno("rmdir", target);
  if (::symlinkat("mounts", d.box.get(), "shared") != 0) return fail_errno("symlink", "mounts", target);
  out->method = MountMethod::kSymlink;
  out->fallback = e;
  return {};
}

Error make_shared_dir(const BoxDirs& d) {
  // Missing until the first mount: mkdirat before the look; the mount goes
  // onto it by name, so no descriptor is kept.
  return make_leaf_dir(d.box, "shared", 0755);
}

// Whether something is mounted at parent/name, decided by looking, the same
// way on every platform, before any unmount is tried. A symlink is never a
// mount point: it is the `shared -> mounts` fallback every isolating box has
// on macOS, where unmount(MNT_NOFOLLOW) follows it (macOS 11-15.1, which
// ignore the flag) or refuses it with ELOOP (15.2 and later, where the flag
// means "no symlink anywhere"). Missing: nothing mounted.
Error mounted_at(Dir parent, const char* name, bool* mounted) {
  *mounted = false;
  const std::string where = parent.child(name);
  FileStat st;
  if (Error e = stat_at(parent.fd, name, false, &st, where)) return e.code == ENOENT ? Error{} : e;
  if (S_ISLNK(st.mode)) return {};
  FileStat parent_st;  // needed where the child's own stat cannot tell (no statx MOUNT_ROOT, macOS)
  if (!st.mount_root_known) {
    if (Error e = stat_at(parent.fd, "", false, &parent_st, where)) return e;
  }
  *mounted = is_mount_point_at(parent.fd, name, st, parent_st, where);
  return {};
}

}  // namespace

Error detach_stack_at(Dir parent, const char* name, uint64_t* detached) {
  *detached = 0;
  const std::string where = parent.child(name);
  // Two racing binders without the box lock could have stacked mounts.
  for (int i = 0; i < 64; i++) {
    bool mounted = false;
    if (Error e = mounted_at(parent, name, &mounted)) return e;
    if (!mounted) return {};
    Error e = detach_mount_at(parent.fd, name, where);
    if (!e) {
      (*detached)++;
      continue;
    }
    // The kernel's own "not a mount point".
    if (e.code == EINVAL || e.code == ENOENT) return {};
    // Anything else (EPERM unprivileged, ELOOP where macOS met a symlink,
    // EBUSY): done only if nothing is mounted there now.
    bool still = true;
    if (Error le = mounted_at(parent, name, &still)) return le;
    return still ? e : Error{};
  }
  return fail_reason(EBUSY, Reason::kMountInTheWay, "umount2", where);
}

Error shared_mount(const BoxRef& ref, bool require_read_only, bool force_legacy, bool may_block, MountResult* out) {
  *out = MountResult{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir mounts;
  if (Error e = open_dir_beneath(d.box, "mounts", Trust::kNone, &mounts, nullptr)) {
    if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
    return e;
  }
  SharedState state;
  if (Error e = inspect_at(d.box, &state)) return e;
  const std::string target = d.box.child("shared");
  switch (state.kind) {
    case SharedKind::kMount: {
      if (!state.shows_mounts || !state.read_only) {
        return fail_reason(EBUSY, Reason::kSharedWrongMount, "mount", target, state.shows_mounts ? 1 : 0);
      }
      // Submounts that reached shared/ later by slave propagation arrive
      // writable: re-seal the whole tree read-only on every call.
      Fd shared(::openat(d.box.get(), "shared", kDirFlags));
      if (!shared.valid()) return fail_errno("openat", target);
      if (Error e = reseal_readonly_at(Dir{shared.get(), target}, force_legacy)) return e;
      out->method = !force_legacy && new_mount_api_available() ? MountMethod::kBindRo : MountMethod::kBindRoLegacy;
      out->reused = true;
      return {};
    }
    case SharedKind::kSymlink: {
      if (!state.shows_mounts) return fail_reason(EEXIST, Reason::kSharedOccupied, "mount", target);
      // A symlink left by an earlier unprivileged run: try to upgrade it.
      if (::unlinkat(d.box.get(), "shared", 0) != 0) return fail_errno("unlink", target);
      if (Error e = make_shared_dir(d)) return e;
      Error e = bind_or_link(d, mounts, SharedKind::kSymlink, require_read_only, force_legacy, out);
      if (!e && out->method == MountMethod::kSymlink) out->reused = true;
      return e;
    }
    case SharedKind::kDirectory:
      if (!state.empty) return fail_reason(ENOTEMPTY, Reason::kSharedNotEmpty, "mount", target);
      return bind_or_link(d, mounts, SharedKind::kDirectory, require_read_only, force_legacy, out);
    case SharedKind::kMissing:
      if (Error e = make_shared_dir(d)) return e;
      return bind_or_link(d, mounts, SharedKind::kMissing, require_read_only, force_legacy, out);
    case SharedKind::kOther:
      break;
  }
  return fail_reason(EEXIST, Reason::kSharedOccupied, "mount", target);
}

Error shared_unmount(const BoxRef& ref, bool may_block, UnmountOutcome* out) {
  *out = UnmountOutcome::kNone;
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  const std::string target = d.box.child("shared");
  uint64_t detached = 0;
  if (Error e = detach_stack_at(d.box, "shared", &detached)) return e;
  if (detached > 0) {
    *out = UnmountOutcome::kUnmounted;
    return {};
  }
  std::string link;
  if (read_link_at(d.box.get(), "shared", &link) && link == "mounts") {
    if (::unlinkat(d.box.get(), "shared", 0) != 0) return fail_errno("unlink", target);
    *out = UnmountOutcome::kUnlinked;
  }
  return {};
}

Error shared_state_at(Dir box, bool submounts, SharedState* out) {
  if (Error e = inspect_at(box, out)) return e;
  if (out->kind != SharedKind::kMount || !submounts) return {};
  const std::string where = box.child("shared");
  Fd shared(::openat(box.fd, "shared", kDirFlags));
  if (!shared.valid()) return fail_errno("openat", where);
  std::vector<MountBelow> mounts;
  if (Error e = mounts_below(Dir{shared.get(), where}, &mounts)) return e;
  for (const MountBelow& m : mounts) {
    if (!m.read_only) out->writable_submounts.push_back(join_path(where, m.rel));
  }
  if (!out->writable_submounts.empty()) out->read_only = false;
  return {};
}

Error shared_inspect(const BoxRef& ref, bool submounts, SharedState* out) {
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, false, false, Trust::kCheck, &d, nullptr)) return e;
  return shared_state_at(d.box, submounts, out);
}

}  // namespace blx
