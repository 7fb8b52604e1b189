// The /tmp/bl-{uid}/{box_id} symlinks that keep socket paths short. /tmp is
// world-writable, so the directory is opened with O_NOFOLLOW and checked on
// the fd, and every link operation is relative to that fd.
#include "../internal.h"

#include <cerrno>
#include <climits>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>

namespace blx {

namespace {

// Open (creating if asked) a private directory: a real directory, owned by
// uid, mode 0700. A looser mode is repaired; anything else is refused.
Error open_private_dir(const std::string& dir, uid_t uid, bool create, Fd* out, bool* repaired) {
  bool created = false;
  if (create) {
    if (::mkdir(dir.c_str(), 0700) == 0) {
      created = true;
    } else if (errno != EEXIST) {
      return fail_errno("mkdir", dir);
    }
  }
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      // Linux says ENOTDIR for a symlink opened O_DIRECTORY|O_NOFOLLOW;
      // tell the two apart for the message.
      FileStat what;
      bool is_link = !stat_at(AT_FDCWD, dir.c_str(), false, &what, dir) && S_ISLNK(what.mode);
      Error e = fail(is_link ? ELOOP : ENOTDIR, "open", dir);
      e.detail = is_link ? "symlink" : "not-a-directory";
      return e;
    }
    return fail(err, "open", dir);
  }
  FileStat st;
  if (Error e = stat_at(fd.get(), "", false, &st, dir)) return e;
  if (!S_ISDIR(st.mode)) {
    Error e = fail(ENOTDIR, "open", dir);
    e.detail = "not-a-directory";
    return e;
  }
  // Root preparing boxes for a runtime user: the directory we just made is
  // theirs, not root's (or their own runtime would refuse it).
  if (created && st.uid != uid && ::geteuid() == 0) {
    if (::fchown(fd.get(), uid, static_cast<gid_t>(-1)) != 0) return fail_errno("fchown", dir);
    st.uid = uid;
  }
  if (st.uid != uid) {
    Error e = fail(EPERM, "open", dir);
    e.detail = "owner=" + std::to_string(st.uid);
    return e;
  }
  if ((st.mode & 07777) != 0700) {
    if (::fchmod(fd.get(), 0700) != 0) return fail_errno("fchmod", dir);
    if (repaired != nullptr) *repaired = true;
  }
  *out = std::move(fd);
  return {};
}

const char* describe(uint32_t mode) {
  if (S_ISDIR(mode)) return "directory";
  if (S_ISREG(mode)) return "regular-file";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISFIFO(mode)) return "fifo";
  return "other";
}

}  // namespace

Error socket_link_ensure(const std::string& dir, uid_t uid, const std::string& name,
                         const std::string& target, LinkResult* out) {
  *out = LinkResult{};
  Fd fd;
  if (Error e = open_private_dir(dir, uid, true, &fd, &out->mode_repaired)) return e;
  std::string display = join_path(dir, name);

  for (int attempt = 0; attempt < 8; attempt++) {
    if (::symlinkat(target.c_str(), fd.get(), name.c_str()) == 0) {
      out->state = LinkState::kCreated;
      return {};
    }
    if (errno != EEXIST) return fail_errno("symlink", target, display);

    std::string current;
    if (!read_link_at(fd.get(), name.c_str(), &current)) {
      if (errno == ENOENT) continue;  // removed under us: try again
      if (errno != EINVAL) return fail_errno("readlink", display);
      FileStat st;
      if (Error e = stat_at(fd.get(), name.c_str(), false, &st, display)) {
        if (e.code == ENOENT) continue;
        return e;
      }
      Error e = fail(EEXIST, "symlink", target, display);
      e.detail = describe(st.mode);
      return e;
    }
    if (current == target) {
      out->state = LinkState::kKept;
      return {};
    }
    // Stale (another home, or dangling): swap atomically via a temp link.
    std::string tmp = "." + name + "." + random_suffix();
    if (::symlinkat(target.c_str(), fd.get(), tmp.c_str()) != 0) {
      return fail_errno("symlink", target, join_path(dir, tmp));
    }
    if (::renameat(fd.get(), tmp.c_str(), fd.get(), name.c_str()) != 0) {
      Error e = fail_errno("rename", join_path(dir, tmp), display);
      ::unlinkat(fd.get(), tmp.c_str(), 0);
      return e;
    }
    out->state = LinkState::kReplaced;
    out->previous_target = current;
    return {};
  }
  return fail(EAGAIN, "symlink", target, display);
}

Error socket_link_remove(const std::string& dir, const std::string& name, const std::string& target,
                         bool* removed) {
  *removed = false;
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return {};
    return fail_errno("open", dir);
  }
  std::string display = join_path(dir, name);
  std::string current;
  if (!read_link_at(fd.get(), name.c_str(), &current)) {
    // Missing, or not a link (not ours to delete).
    if (errno == ENOENT || errno == EINVAL) return {};
    return fail_errno("readlink", display);
  }
  if (current != target) return {};  // belongs to another home's box
  if (::unlinkat(fd.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("unlink", display);
  }
  *removed = true;
  return {};
}

Error sweep_dangling_links(const std::string& dir, uid_t uid, std::vector<std::string>* removed) {
  removed->clear();
  Fd fd;
  if (Error e = open_private_dir(dir, uid, false, &fd, nullptr)) {
    if (e.code == ENOENT) return {};
    return e;
  }
  std::vector<DirEntry> entries;
  if (Error e = list_dir(fd.get(), dir, &entries)) return e;
  std::vector<std::string> names;
  for (const DirEntry& d : entries) {
    if (d.type == DT_LNK || d.type == DT_UNKNOWN) names.push_back(d.name);
  }
  for (const std::string& name : names) {
    std::string target;
    if (!read_link_at(fd.get(), name.c_str(), &target)) continue;
    FileStat through;
    Error e = stat_at(fd.get(), name.c_str(), true, &through, join_path(dir, name));
    if (!e || (e.code != ENOENT && e.code != ENOTDIR)) continue;
    // Re-read right before unlinking: a link re-pointed meanwhile is live.
    std::string again;
    if (!read_link_at(fd.get(), name.c_str(), &again) || again != target) continue;
    if (::unlinkat(fd.get(), name.c_str(), 0) != 0) continue;
    // A box prepared again between the check and the unlink made the same
    // link, now live: put it back rather than break its sockets.
    FileStat revived;
    if (!stat_at(AT_FDCWD, target.c_str(), true, &revived, target)) {
      ::symlinkat(target.c_str(), fd.get(), name.c_str());  // EEXIST: already back
      continue;
    }
    removed->push_back(name);
  }
  return {};
}

}  // namespace blx
