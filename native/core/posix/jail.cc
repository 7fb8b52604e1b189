// What a jailer does around a shim's start, beneath the box: the socket
// link, the exit record's rotation, the files the shim is granted
// read-write (pre-created so the policy can name them), and the append fd
// of shim.stderr. Plus the macOS canonical form of a host path, which the
// seatbelt profile is written in.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>

#include "../internal.h"

namespace blx {

namespace {

// A file the shim writes, opened for writing beneath dir: created 0644
// (whatever the umask) when missing, never through a symlink, never a FIFO
// or device. O_NONBLOCK only for the open (a FIFO must not hang us).
Error open_shim_file(Dir dir, const char* name, int extra, Fd* out) {
  const std::string where = dir.child(name);
  bool created = true;
  Error e = open_beneath(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | extra, 0644, out);
  if (e.code == EEXIST) {
    created = false;
    e = open_beneath(dir, name, O_WRONLY | O_NONBLOCK | extra, 0, out);
  }
  if (e) return e;
  FileStat st;
  if (Error s = stat_at(out->get(), "", false, &st, where)) return s;
  if (!S_ISREG(st.mode)) return fail_reason(EINVAL, Reason::kNotRegularFile, "open", where, st.mode & S_IFMT);
  if (created && ::fchmod(out->get(), 0644) != 0) return fail_errno("fchmod", where);
  int flags = ::fcntl(out->get(), F_GETFL);
  if (flags < 0 || ::fcntl(out->get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return fail_errno("fcntl", where);
  return {};
}

}  // namespace

Error shim_prepare(const BoxRef& ref, const LinkSpec& link, bool may_block, ShimPrepareResult* out) {
  *out = ShimPrepareResult{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  // sockets/ and the link first: the policy grants them only if they exist.
  OwnedDir sockets;
  if (Error e = make_dir_beneath(d.box, "sockets", 0755, Trust::kNone, &sockets, nullptr)) return e;
  if (Error e = socket_link_ensure(link, ref.id, &out->link)) return e;
  // One slot of history: the last run's record (or its empty file).
  if (::renameat(d.box.get(), "exit", d.box.get(), "exit.previous") == 0) {
    out->rotated = true;
  } else if (errno != ENOENT) {
    return fail_errno("rename", d.box.child("exit"), d.box.child("exit.previous"));
  }
  // An empty exit means "no record" to every reader; it exists so that a
  // jail can grant it read-write (a jail binds only what exists).
  Fd exit;
  if (Error e = open_shim_file(d.box, "exit", O_TRUNC, &exit)) return e;
  OwnedDir logs;
  if (Error e = make_dir_beneath(d.box, "logs", 0755, Trust::kNone, &logs, nullptr)) return e;
  // Never truncated: the last run's console is what explains its failure.
  Fd console;
  if (Error e = open_shim_file(logs, "console.log", 0, &console)) return e;
  Fd err;
  if (Error e = open_shim_file(d.box, "shim.stderr", O_APPEND, &err)) return e;
  out->stderr_fd = err.release();
  return {};
}

std::string macos_canonical(const std::string& path) {
  // Walk up to the nearest ancestor that exists, remembering the tail.
  std::string head = path;
  std::vector<std::string> tail;
  FileStat st;
  while (stat_at(AT_FDCWD, head.c_str(), false, &st, head)) {
    std::string dir, name;
    split_path(head, &dir, &name);
    if (name.empty() || dir == head) return path;
    if (name != ".") tail.push_back(name);
    head = dir;
  }
  std::string base;
  auto resolved = [](const std::string& p) {
    char* r = ::realpath(p.c_str(), nullptr);
    if (r == nullptr) return p;
    std::string s(r);
    std::free(r);
    return s;
  };
  if (S_ISLNK(st.mode)) {
    // A symlink leaf is kept as named (the sandbox checks the link itself);
    // only its parent is resolved.
    std::string dir, name;
    split_path(head, &dir, &name);
    base = join_path(resolved(dir), name);
  } else {
    base = resolved(head);
  }
  for (auto it = tail.rbegin(); it != tail.rend(); ++it) base = join_path(base, *it);
  return base;
}

}  // namespace blx
