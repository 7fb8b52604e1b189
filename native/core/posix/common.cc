// Errors, path helpers, directory creation, same-device checks and flock: the same on every POSIX.
#include "../internal.h"

#include <cerrno>
#include <climits>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

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

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string dir_name(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') end--;
  size_t slash = path.rfind('/', end - 1);
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') end--;
  size_t slash = path.rfind('/', end - 1);
  return path.substr(slash == std::string::npos ? 0 : slash + 1, end - (slash == std::string::npos ? 0 : slash + 1));
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

bool different_mount(const FileStat& a, const FileStat& b) {
  if (a.dev_major != b.dev_major || a.dev_minor != b.dev_minor) return true;
  if (a.mount_id_known && b.mount_id_known) return a.mount_id != b.mount_id;
  return false;
}

static Error make_dir_all(const std::string& path, mode_t mode, int depth) {
  if (::mkdir(path.c_str(), mode) == 0) return {};
  int err = errno;
  if (err == EEXIST) {
    FileStat st;
    if (Error e = stat_at(AT_FDCWD, path.c_str(), true, &st, path)) return e;
    if (!S_ISDIR(st.mode)) return fail(ENOTDIR, "mkdir", path);
    return {};
  }
  if (err != ENOENT || depth > 4096) return fail(err, "mkdir", path);
  std::string parent = dir_name(path);
  if (parent == path) return fail(err, "mkdir", path);
  if (Error e = make_dir_all(parent, mode, depth + 1)) return e;
  if (::mkdir(path.c_str(), mode) == 0) return {};
  // Someone else created it between our two attempts: fine if it is a dir.
  if (errno == EEXIST) return make_dir_all(path, mode, depth + 1);
  return fail_errno("mkdir", path);
}

Error make_dirs(const std::vector<std::string>& paths, mode_t mode) {
  for (const std::string& p : paths) {
    if (p.empty()) return fail(EINVAL, "mkdir", p);
    if (Error e = make_dir_all(p, mode, 0)) return e;
  }
  return {};
}

Error same_filesystem(const std::vector<std::string>& paths, SameFilesystem* out) {
  *out = SameFilesystem{};
  for (size_t i = 0; i < paths.size(); i++) {
    FileStat st;
    if (Error e = stat_at(AT_FDCWD, paths[i].c_str(), true, &st, paths[i])) return e;
    out->dev_major.push_back(st.dev_major);
    out->dev_minor.push_back(st.dev_minor);
    if (out->same && i > 0 && (st.dev_major != out->dev_major[0] || st.dev_minor != out->dev_minor[0])) {
      out->same = false;
      out->odd_index = static_cast<int>(i);
    }
  }
  return {};
}

}  // namespace blx
