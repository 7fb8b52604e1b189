// Error values and path helpers, the same on every POSIX system.
#include <sys/stat.h>

#include <cerrno>
#include <climits>

#include "../internal.h"

namespace blx {

Error fail(int code, const char* syscall, std::string path, std::string dest) {
  Error e;
  e.code = code;
  e.syscall = syscall;
  e.path = std::move(path);
  e.dest = std::move(dest);
  return e;
}

Error fail_errno(const char* syscall, std::string path, std::string dest) {
  return fail(errno, syscall, std::move(path), std::move(dest));
}

Error fail_reason(int code, Reason why, const char* syscall, std::string path, int64_t value) {
  Error e = fail(code, syscall, std::move(path));
  e.reason = why;
  e.value = value;
  return e;
}

Error check_typed_file(const FileStat& st, bool nofollow, bool block_ok, const std::string& display) {
  if (S_ISREG(st.mode) || (block_ok && S_ISBLK(st.mode))) return {};
  // What an O_NOFOLLOW open of a symlink says.
  if (nofollow && S_ISLNK(st.mode)) return fail_reason(ELOOP, Reason::kSymlink, "open", display);
  return fail_reason(EINVAL, Reason::kNotRegularFile, "open", display, st.mode & S_IFMT);
}

// The names JS sees for the other enums of core.h. Each switch covers every
// value and has no default (-Wswitch); the return after it is unreachable
// for a valid value and only keeps compilers quiet about a cast-in integer.
const char* entry_kind_name(EntryKind k) {
  switch (k) {
    case EntryKind::kBox:
      return "box";
    case EntryKind::kTrash:
      return "trash";
    case EntryKind::kStray:
      return "stray";
  }
  return "unknown";
}

const char* link_state_name(LinkState s) {
  switch (s) {
    case LinkState::kCreated:
      return "created";
    case LinkState::kKept:
      return "kept";
    case LinkState::kReplaced:
      return "replaced";
  }
  return "unknown";
}

const char* mount_method_name(MountMethod m) {
  switch (m) {
    case MountMethod::kBindRo:
      return "bind-ro";
    case MountMethod::kBindRoLegacy:
      return "bind-ro-legacy";
    case MountMethod::kSymlink:
      return "symlink";
  }
  return "unknown";
}

const char* unmount_outcome_name(UnmountOutcome o) {
  switch (o) {
    case UnmountOutcome::kUnmounted:
      return "unmounted";
    case UnmountOutcome::kUnlinked:
      return "unlinked";
    case UnmountOutcome::kNone:
      return "none";
  }
  return "unknown";
}

const char* shared_kind_name(SharedKind k) {
  switch (k) {
    case SharedKind::kMissing:
      return "missing";
    case SharedKind::kDirectory:
      return "directory";
    case SharedKind::kSymlink:
      return "symlink";
    case SharedKind::kMount:
      return "mount";
    case SharedKind::kOther:
      return "other";
  }
  return "unknown";
}

const char* clone_method_name(CloneMethod m) {
  switch (m) {
    case CloneMethod::kReflink:
      return "reflink";
    case CloneMethod::kClonefile:
      return "clonefile";
    case CloneMethod::kCopyFileRange:
      return "copy_file_range";
    case CloneMethod::kCopy:
      return "copy";
    case CloneMethod::kSkipped:
      return "skipped";
  }
  return "unknown";
}

const char* link_info_state_name(LinkInfo::State s) {
  switch (s) {
    case LinkInfo::State::kOk:
      return "ok";
    case LinkInfo::State::kMissing:
      return "missing";
    case LinkInfo::State::kForeign:
      return "foreign";
    case LinkInfo::State::kNotALink:
      return "not-a-link";
  }
  return "unknown";
}

const char* socket_state_name(SocketState s) {
  switch (s) {
    case SocketState::kMissing:
      return "missing";
    case SocketState::kListening:
      return "listening";
    case SocketState::kRefused:
      return "refused";
    case SocketState::kNotSocket:
      return "not-a-socket";
  }
  return "unknown";
}

const char* path_kind_name(PathKind k) {
  switch (k) {
    case PathKind::kMissing:
      return "missing";
    case PathKind::kDirectory:
      return "directory";
    case PathKind::kFile:
      return "file";
    case PathKind::kSymlink:
      return "symlink";
    case PathKind::kOther:
      return "other";
  }
  return "unknown";
}

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::kNone:
      return nullptr;
    case Reason::kSymlink:
      return "symlink";
    case Reason::kNotDirectory:
      return "not-a-directory";
    case Reason::kNotRegularFile:
      return "not-a-regular-file";
    case Reason::kHardLinked:
      return "hard-linked";
    case Reason::kTooLarge:
      return "too-large";
    case Reason::kForeignOwner:
      return "foreign-owner";
    case Reason::kLooseMode:
      return "loose-mode";
    case Reason::kWouldBlock:
      return "would-block";
    case Reason::kRemovedWhileWaiting:
      return "removed-while-waiting";
    case Reason::kReplacedWhileWaiting:
      return "replaced-while-waiting";
    case Reason::kRuntimeLocked:
      return "runtime-locked";
    case Reason::kNotAllocated:
      return "not-allocated";
    case Reason::kIdsExhausted:
      return "ids-exhausted";
    case Reason::kMountInTheWay:
      return "mount-in-the-way";
    case Reason::kNotPrepared:
      return "not-prepared";
    case Reason::kSharedNotEmpty:
      return "shared-not-empty";
    case Reason::kSharedOccupied:
      return "shared-occupied";
    case Reason::kSharedWrongMount:
      return "shared-wrong-mount";
    case Reason::kReadOnlyImpossible:
      return "read-only-impossible";
    case Reason::kNoReflink:
      return "no-reflink";
    case Reason::kLinkOccupied:
      return "link-occupied";
    case Reason::kShimAlive:
      return "shim-alive";
    case Reason::kBoxBusy:
      return "box-busy";
    case Reason::kTreeMoved:
      return "tree-moved";
    case Reason::kBackingChain:
      return "backing-chain";
    case Reason::kUnsupported:
      return "unsupported";
    case Reason::kCaseCollision:
      return "case-collision";
  }
  return nullptr;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (name.empty()) return dir;
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

void split_path(const std::string& path, std::string* dir, std::string* name) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') end--;
  size_t slash = end == 0 ? std::string::npos : path.rfind('/', end - 1);
  if (slash == std::string::npos) {
    *dir = ".";
    *name = path.substr(0, end);
    return;
  }
  *dir = slash == 0 ? "/" : path.substr(0, slash);
  *name = path.substr(slash + 1, end - slash - 1);
}

bool is_plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

std::string random_suffix() {
  unsigned char bytes[8];
  random_bytes(bytes, sizeof bytes);
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  return s;
}

bool read_link_at(int dirfd, const char* name, std::string* out) {
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
  if (n < 0) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

bool same_inode(const FileStat& a, const FileStat& b) {
  return a.ino == b.ino && a.dev_major == b.dev_major && a.dev_minor == b.dev_minor;
}

bool different_mount(const FileStat& a, const FileStat& b) {
  if (a.dev_major != b.dev_major || a.dev_minor != b.dev_minor) return true;
  if (a.mount_id_known && b.mount_id_known) return a.mount_id != b.mount_id;
  return false;
}

}  // namespace blx
