// The /tmp/bl-{uid}/{box_id} symlinks that keep socket paths short. /tmp is
// world-writable, so the directory is opened with O_NOFOLLOW and checked on
// the fd, and every link operation is relative to that fd.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

// Open (creating if asked) the private link directory: a real directory,
// owned by uid, mode 0700. A looser mode is repaired; anything else refused.
Error open_link_dir(const LinkSpec& link, bool create, OwnedDir* out, bool* repaired) {
  const std::string& dir = link.parent;
  bool created = false;
  // It exists for every box but the first: look before making it. Any
  // failed look goes the making way, so errors read as they always did.
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  Fd fd(::open(dir.c_str(), kFlags));
  if (!fd.valid() && create) {
    if (::mkdir(dir.c_str(), 0700) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      return fail_errno("mkdir", dir);
    }
    fd.reset(::open(dir.c_str(), kFlags));
  }
  // A directory made here but not handed over (a failed open, stat, chown
  // or chmod) is removed again: left behind, root's and empty, every later
  // prepare would refuse it as foreign-owned, and neither cleanup nor gc
  // would repair that. rmdir never follows a symlink and never removes
  // anything but an empty directory.
  auto undo = [&](Error e) {
    if (created) ::rmdir(dir.c_str());
    return e;
  };
  if (!fd.valid()) {
    int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      FileStat what;
      bool is_link = !stat_at(AT_FDCWD, dir.c_str(), false, &what, dir) && S_ISLNK(what.mode);
      return is_link ? fail_reason(ELOOP, Reason::kSymlink, "open", dir)
                     : fail_reason(ENOTDIR, Reason::kNotDirectory, "open", dir);
    }
    return undo(fail(err, "open", dir));
  }
  FileStat st;
  if (Error e = stat_at(fd.get(), "", false, &st, dir)) return undo(e);
  if (!S_ISDIR(st.mode)) return fail_reason(ENOTDIR, Reason::kNotDirectory, "open", dir);
  // Root preparing boxes for a runtime user: the directory is theirs, not
  // root's (or their own runtime would refuse it). That holds for one another
  // root call made too and has not handed over yet (two prepares racing: the
  // loser of mkdir sees root's directory between mkdir and fchown), and for
  // one a crashed root call left: only root can own it, and root is who we
  // are. A directory of any other owner is refused below.
  if (st.uid != link.uid && ::geteuid() == 0 && (created || st.uid == 0)) {
    if (::fchown(fd.get(), link.uid, static_cast<gid_t>(-1)) != 0) return undo(fail_errno("fchown", dir));
    st.uid = link.uid;
  }
  if (st.uid != link.uid) return undo(fail_reason(EPERM, Reason::kForeignOwner, "open", dir, st.uid));
  if ((st.mode & 07777) != 0700) {
    if (::fchmod(fd.get(), 0700) != 0) return undo(fail_errno("fchmod", dir));
    if (repaired != nullptr) *repaired = true;
  }
  out->fd = std::move(fd);
  out->path = dir;
  return {};
}

}  // namespace

Error socket_link_ensure(const LinkSpec& link, const std::string& name, LinkResult* out) {
  *out = LinkResult{};
  const std::string link_path = join_path(link.parent, name);
  if (!is_plain_name(name)) return fail(EINVAL, "symlink", link.target, link_path);
  OwnedDir parent;
  if (Error e = open_link_dir(link, true, &parent, &out->mode_repaired)) return e;
  const int fd = parent.get();

  for (int attempt = 0; attempt < 8; attempt++) {
    if (::symlinkat(link.target.c_str(), fd, name.c_str()) == 0) {
      out->state = LinkState::kCreated;
      return {};
    }
    if (errno != EEXIST) return fail_errno("symlink", link.target, link_path);

    std::string current;
    if (!read_link_at(fd, name.c_str(), &current)) {
      if (errno == ENOENT) continue;  // removed under us: try again
      if (errno != EINVAL) return fail_errno("readlink", link_path);
      FileStat st;
      if (Error e = stat_at(fd, name.c_str(), false, &st, link_path)) {
        if (e.code == ENOENT) continue;
        return e;
      }
      Error e = fail_reason(EEXIST, Reason::kLinkOccupied, "symlink", link_path, st.mode & S_IFMT);
      e.dest = link_path;
      e.path = link.target;
      return e;
    }
    if (current == link.target) {
      out->state = LinkState::kKept;
      return {};
    }
    // Stale (another home, or dangling): swap atomically via a temp link.
    std::string tmp = "." + name + "." + random_suffix();
    if (::symlinkat(link.target.c_str(), fd, tmp.c_str()) != 0) {
      return fail_errno("symlink", link.target, parent.child(tmp));
    }
    if (::renameat(fd, tmp.c_str(), fd, name.c_str()) != 0) {
      Error e = fail_errno("rename", parent.child(tmp), link_path);
      ::unlinkat(fd, tmp.c_str(), 0);
      return e;
    }
    out->state = LinkState::kReplaced;
    out->previous_target = current;
    return {};
  }
  return fail(EAGAIN, "symlink", link.target, link_path);
}

Error socket_link_remove(const LinkSpec& link, const std::string& name, bool* removed) {
  *removed = false;
  const std::string link_path = join_path(link.parent, name);
  if (!is_plain_name(name)) return fail(EINVAL, "unlink", link_path);
  Fd fd(::open(link.parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return {};
    return fail_errno("open", link.parent);
  }
  std::string current;
  if (!read_link_at(fd.get(), name.c_str(), &current)) {
    // Missing, or not a link (not ours to delete).
    if (errno == ENOENT || errno == EINVAL) return {};
    return fail_errno("readlink", link_path);
  }
  if (current != link.target) return {};  // belongs to another home's box
  if (::unlinkat(fd.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("unlink", link_path);
  }
  *removed = true;
  return {};
}

Error socket_links_sweep(const LinkSpec& link, bool report_only, std::vector<std::string>* names) {
  names->clear();
  OwnedDir parent;
  if (Error e = open_link_dir(link, false, &parent, nullptr)) return e.code == ENOENT ? Error{} : e;
  const int fd = parent.get();
  std::vector<DirEntry> entries;
  if (Error e = list_dir(parent, &entries)) return e;
  for (const DirEntry& d : entries) {
    if (d.type != DT_LNK && d.type != DT_UNKNOWN) continue;
    const char* name = d.name.c_str();
    std::string target;
    if (!read_link_at(fd, name, &target)) continue;
    FileStat through;
    Error e = stat_at(fd, name, true, &through, parent.child(d.name));
    if (!e || (e.code != ENOENT && e.code != ENOTDIR)) continue;  // live
    if (report_only) {
      names->push_back(d.name);
      continue;
    }
    // Re-read right before unlinking: a link re-pointed meanwhile is live.
    std::string again;
    if (!read_link_at(fd, name, &again) || again != target) continue;
    if (::unlinkat(fd, name, 0) != 0) continue;
    // A box prepared again between the check and the unlink made the same
    // link, now live: put it back rather than break its sockets.
    FileStat revived;
    if (!stat_at(AT_FDCWD, target.c_str(), true, &revived, target)) {
      ::symlinkat(target.c_str(), fd, name);  // EEXIST: already back
      continue;
    }
    names->push_back(d.name);
  }
  return {};
}

}  // namespace blx
