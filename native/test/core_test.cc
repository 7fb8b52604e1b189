// Native unit tests of the Node-free core, run by ctest. Real syscalls on
// real filesystems; mount tests need root and skip (with a reason) only
// outside CI. Prints "core_test: N passed, N failed, N skipped".
#include "core.h"
#include "internal.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#if defined(__linux__)
#include <sys/mount.h>
#endif

namespace {

struct Failure {
  std::string message;
};

struct Skip {
  std::string reason;
};

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) throw Failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + \
                               ": CHECK(" #cond ") failed"};                          \
  } while (0)

#define CHECK_OK(expr)                                                                        \
  do {                                                                                        \
    blx::Error e_ = (expr);                                                                   \
    if (e_) throw Failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #expr \
                          " failed: " + std::strerror(e_.code) + " (" +                       \
                          (e_.syscall ? e_.syscall : "?") + " " + e_.path + ")"};             \
  } while (0)

// A scratch directory removed (with rm -rf semantics, mounts detached) at
// the end of every test, whatever happened.
class Scratch {
 public:
  Scratch() {
    char tmpl[] = "/tmp/blx-core-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw Failure{"mkdtemp failed"};
    path_ = tmpl;
  }
  ~Scratch() {
    blx::RemoveStats stats;
    blx::remove_tree(blx::dir_name(path_), blx::base_name(path_), true, &stats);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool exists_nofollow(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

void write_file(const std::string& p, const std::string& content, mode_t mode = 0644) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw Failure{"open " + p + ": " + std::strerror(errno)};
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    ::close(fd);
    throw Failure{"write " + p};
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

std::string read_file(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Failure{"open " + p + ": " + std::strerror(errno)};
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void need_root() {
  if (::geteuid() != 0) throw Skip{"needs root (mount tests); run as root"};
}

size_t count_prefix(const std::string& dir, const std::string& prefix) {
  size_t n = 0;
  if (auto* d = ::opendir(dir.c_str())) {
    while (auto* ent = ::readdir(d)) {
      if (std::strncmp(ent->d_name, prefix.c_str(), prefix.size()) == 0) n++;
    }
    ::closedir(d);
  }
  return n;
}

// ---------------------------------------------------------------------------

void test_make_dirs() {
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "a/b/c", s / "a/d"}, 0755));
  struct stat st;
  CHECK(::stat((s / "a/b/c").c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  CHECK_OK(blx::make_dirs({s / "a/b/c"}, 0755));  // idempotent
  write_file(s / "file", "x");
  blx::Error e = blx::make_dirs({s / "file"}, 0755);
  CHECK(e.code == ENOTDIR);
  CHECK(e.path == s / "file");
  e = blx::make_dirs({s / "file/sub"}, 0755);
  CHECK(e.code == ENOTDIR);
}

void test_probe_and_same_filesystem() {
  Scratch s;
  blx::FsFacts root;
  CHECK_OK(blx::probe("/", &root));
  CHECK(root.is_mount_root);
  blx::FsFacts dir;
  CHECK_OK(blx::make_dirs({s / "d"}, 0755));
  CHECK_OK(blx::probe(s / "d", &dir));
  CHECK(!dir.is_mount_root);
  CHECK(dir.fs_name.find("unknown") == std::string::npos);

  blx::Error e = blx::probe(s / "missing", &dir);
  CHECK(e.code == ENOENT);
  CHECK(std::string(e.syscall) == "statx" || std::string(e.syscall) == "stat");
  CHECK(e.path == s / "missing");

  blx::SameFilesystem same;
  CHECK_OK(blx::same_filesystem({s.path(), s / "d"}, &same));
  CHECK(same.same && same.odd_index == -1 && same.dev_major.size() == 2);
  CHECK_OK(blx::same_filesystem({s.path(), s / "d", "/proc"}, &same));
  CHECK(!same.same && same.odd_index == 2);
}

#if defined(__linux__)
void test_mount_id_fallback_matches_statx() {
  Scratch s;
  blx::FileStat st;
  CHECK_OK(blx::stat_at(AT_FDCWD, s.path().c_str(), true, &st, s.path()));
  CHECK(st.mount_id_known);
  uint64_t via_handle = 0;
  CHECK(blx::mount_id_via_handle(AT_FDCWD, s.path().c_str(), true, &via_handle));
  CHECK(via_handle == st.mount_id);
}
#endif

void test_remove_tree_never_follows_symlinks() {
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "box/a/b", s / "sentinel"}, 0755));
  write_file(s / "sentinel/keep", "precious");
  write_file(s / "box/a/b/f", "x");
  write_file(s / "box/top", "y");
  CHECK(::symlink((s / "sentinel").c_str(), (s / "box/a/escape").c_str()) == 0);
  CHECK(::symlink("/", (s / "box/root-link").c_str()) == 0);
  blx::RemoveStats stats;
  CHECK_OK(blx::remove_tree(s.path(), "box", true, &stats));
  CHECK(!exists_nofollow(s / "box"));
  CHECK(read_file(s / "sentinel/keep") == "precious");
  CHECK(stats.entries == 7);  // box a b f top escape root-link
  CHECK(stats.unmounted == 0);
  // Missing: nothing to do. A name with a slash: refused.
  CHECK_OK(blx::remove_tree(s.path(), "box", true, &stats));
  CHECK(blx::remove_tree(s.path(), "../x", true, &stats).code == EINVAL);
  CHECK(blx::remove_tree(s.path(), "..", true, &stats).code == EINVAL);
}

void test_remove_tree_box_dir_is_symlink() {
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "elsewhere"}, 0755));
  write_file(s / "elsewhere/keep", "k");
  CHECK(::symlink((s / "elsewhere").c_str(), (s / "box").c_str()) == 0);
  blx::RemoveStats stats;
  CHECK_OK(blx::remove_tree(s.path(), "box", true, &stats));
  CHECK(!exists_nofollow(s / "box"));
  CHECK(read_file(s / "elsewhere/keep") == "k");
}

#if defined(__linux__)
void test_remove_tree_with_mount() {
  need_root();
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "box/m", s / "data"}, 0755));
  write_file(s / "data/host-file", "host");
  CHECK(::mount((s / "data").c_str(), (s / "box/m").c_str(), nullptr, MS_BIND, nullptr) == 0);
  blx::RemoveStats stats;
  blx::Error e = blx::remove_tree(s.path(), "box", false, &stats);
  CHECK(e.code == EBUSY);
  CHECK(read_file(s / "data/host-file") == "host");
  CHECK(read_file(s / "box/m/host-file") == "host");  // still mounted, untouched
  CHECK_OK(blx::remove_tree(s.path(), "box", true, &stats));
  CHECK(stats.unmounted == 1);
  CHECK(!exists_nofollow(s / "box"));
  CHECK(read_file(s / "data/host-file") == "host");
  std::vector<blx::MountEntry> left;
  CHECK_OK(blx::mounts_under(s.path(), &left));
  CHECK(left.empty());
}

void test_bind_readonly(bool legacy) {
  need_root();
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "mounts/sub", s / "shared"}, 0755));
  CHECK(::mount("t", (s / "mounts/sub").c_str(), "tmpfs", MS_NOSUID | MS_NODEV, nullptr) == 0);
  blx::BindMethod used;
  blx::Error e = blx::bind_readonly(s / "mounts", s / "shared", legacy, &used);
  if (!e) {
    CHECK(used == (legacy ? blx::BindMethod::kLegacy : blx::BindMethod::kNewApi));
    blx::SharedState st;
    CHECK_OK(blx::inspect_shared(s / "mounts", s / "shared", &st));
    CHECK(st.kind == blx::SharedKind::kMount && st.read_only && st.shows_source);
    int fd = ::open((s / "shared/x").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd < 0 && errno == EROFS);
    fd = ::open((s / "shared/sub/x").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd < 0 && errno == EROFS);
    write_file(s / "mounts/sub/host", "h");  // host side stays writable
    CHECK(read_file(s / "shared/sub/host") == "h");
    std::vector<blx::MountEntry> under;
    CHECK_OK(blx::mounts_under(s / "shared", &under));
    CHECK(under.size() == 2);
    CHECK(under[0].mount_point == s / "shared/sub");  // deepest first
    CHECK_OK(blx::reseal_readonly(s / "shared", legacy));
  }
  bool was = false;
  blx::unmount(s / "shared", &was);
  blx::unmount(s / "mounts/sub", &was);
  CHECK_OK(e);
  CHECK_OK(blx::unmount(s / "shared", &was));
  CHECK(!was);
}

void test_bind_readonly_new_api() { test_bind_readonly(false); }
void test_bind_readonly_legacy() { test_bind_readonly(true); }

void test_mounts_under_unescapes() {
  need_root();
  Scratch s;
  std::string odd = s / "with space\tand\\slash";
  CHECK_OK(blx::make_dirs({odd}, 0755));
  CHECK(::mount("t", odd.c_str(), "tmpfs", 0, nullptr) == 0);
  std::vector<blx::MountEntry> under;
  blx::Error e = blx::mounts_under(s.path(), &under);
  bool was = false;
  blx::unmount(odd, &was);
  CHECK_OK(e);
  CHECK(was);
  CHECK(under.size() == 1);
  CHECK(under[0].mount_point == odd);
  CHECK(under[0].fs_type == "tmpfs");
}
#endif

void test_clone_file() {
  Scratch s;
  std::string payload(300000, 'q');
  write_file(s / "shim", payload, 0755);
  blx::CloneJob job;
  job.src = s / "shim";
  job.dst = s / "bin-shim";
  job.mode = blx::CloneMode::kAuto;
  CHECK_OK(blx::clone_file(&job));
  CHECK(job.method != blx::CloneMethod::kSkipped);
  CHECK(job.bytes == payload.size());
  CHECK(read_file(s / "bin-shim") == payload);
  struct stat a, b;
  CHECK(::stat((s / "shim").c_str(), &a) == 0 && ::stat((s / "bin-shim").c_str(), &b) == 0);
  CHECK((b.st_mode & 07777) == 0755);
  CHECK(a.st_ino != b.st_ino);
  CHECK(a.st_mtime == b.st_mtime);

  job.skip_unchanged = true;
  CHECK_OK(blx::clone_file(&job));
  CHECK(job.method == blx::CloneMethod::kSkipped);

  job.skip_unchanged = false;
  job.mode = blx::CloneMode::kNever;
  CHECK_OK(blx::clone_file(&job));
  CHECK(job.method == blx::CloneMethod::kCopy);
  CHECK(read_file(s / "bin-shim") == payload);
  CHECK(count_prefix(s.path(), ".bin-shim.blx-") == 0);
}

void test_clone_file_errors_leave_nothing() {
  Scratch s;
  CHECK_OK(blx::make_dirs({s / "dir", s / "out"}, 0755));
  blx::CloneJob job;
  job.src = s / "missing";
  job.dst = s / "out/x";
  blx::Error e = blx::clone_file(&job);
  CHECK(e.code == ENOENT && e.path == s / "missing");
  job.src = s / "dir";
  CHECK(blx::clone_file(&job).code == EISDIR);
  write_file(s / "src", "data");
  job.src = s / "src";
  job.dst = s / "nodir/x";
  CHECK(blx::clone_file(&job).code == ENOENT);
  CHECK(count_prefix(s / "out", ".x.blx-") == 0);
}

void test_socket_links() {
  Scratch s;
  std::string dir = s / "bl";
  blx::LinkResult r;
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "box1", s / "target1", &r));
  CHECK(r.state == blx::LinkState::kCreated);
  struct stat st;
  CHECK(::lstat(dir.c_str(), &st) == 0 && (st.st_mode & 07777) == 0700);
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "box1", s / "target1", &r));
  CHECK(r.state == blx::LinkState::kKept);
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "box1", s / "target2", &r));
  CHECK(r.state == blx::LinkState::kReplaced && r.previous_target == s / "target1");
  CHECK(count_prefix(dir, ".box1.") == 0);

  ::chmod(dir.c_str(), 0755);
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "box1", s / "target2", &r));
  CHECK(r.mode_repaired);
  CHECK(::lstat(dir.c_str(), &st) == 0 && (st.st_mode & 07777) == 0700);

  write_file(dir + "/file", "f");
  blx::Error e = blx::socket_link_ensure(dir, ::geteuid(), "file", s / "t", &r);
  CHECK(e.code == EEXIST && e.detail == "regular-file");
  CHECK(read_file(dir + "/file") == "f");

  e = blx::socket_link_ensure(dir, ::geteuid() + 1, "box9", s / "t", &r);
  CHECK(e.code == EPERM && e.detail.rfind("owner=", 0) == 0);

  CHECK(::symlink(dir.c_str(), (s / "squat").c_str()) == 0);
  e = blx::socket_link_ensure(s / "squat", ::geteuid(), "box1", s / "t", &r);
  CHECK(e.code == ELOOP && e.detail == "symlink");

  bool removed = false;
  CHECK_OK(blx::socket_link_remove(dir, "box1", s / "someone-else", &removed));
  CHECK(!removed && exists_nofollow(dir + "/box1"));
  CHECK_OK(blx::socket_link_remove(dir, "box1", s / "target2", &removed));
  CHECK(removed && !exists_nofollow(dir + "/box1"));
  CHECK_OK(blx::socket_link_remove(dir, "box1", s / "target2", &removed));
  CHECK(!removed);
  CHECK_OK(blx::socket_link_remove(dir, "file", s / "target2", &removed));
  CHECK(!removed && exists_nofollow(dir + "/file"));

  CHECK_OK(blx::make_dirs({s / "live"}, 0755));
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "live", s / "live", &r));
  CHECK_OK(blx::socket_link_ensure(dir, ::geteuid(), "dead", s / "gone", &r));
  std::vector<std::string> swept;
  CHECK_OK(blx::sweep_dangling_links(dir, ::geteuid(), &swept));
  CHECK(swept.size() == 1 && swept[0] == "dead");
  CHECK(exists_nofollow(dir + "/live") && exists_nofollow(dir + "/file"));
}

void test_flock() {
  Scratch s;
  write_file(s / "lock", "");
  blx::Fd a(::open((s / "lock").c_str(), O_RDWR | O_CLOEXEC));
  blx::Fd b(::open((s / "lock").c_str(), O_RDWR | O_CLOEXEC));
  bool got = false;
  CHECK_OK(blx::lock_fd(a.get(), true, false, &got));
  CHECK(got);
  CHECK_OK(blx::lock_fd(b.get(), true, false, &got));
  CHECK(!got);
  CHECK_OK(blx::unlock_fd(a.get()));
  CHECK_OK(blx::lock_fd(b.get(), true, false, &got));
  CHECK(got);
  CHECK(blx::lock_fd(-1, true, false, &got).code == EBADF);
}

struct Case {
  const char* name;
  std::function<void()> fn;
};

}  // namespace

int main() {
  const std::vector<Case> cases = {
      {"make_dirs", test_make_dirs},
      {"probe_and_same_filesystem", test_probe_and_same_filesystem},
#if defined(__linux__)
      {"mount_id_fallback_matches_statx", test_mount_id_fallback_matches_statx},
#endif
      {"remove_tree_never_follows_symlinks", test_remove_tree_never_follows_symlinks},
      {"remove_tree_box_dir_is_symlink", test_remove_tree_box_dir_is_symlink},
#if defined(__linux__)
      {"remove_tree_with_mount", test_remove_tree_with_mount},
      {"bind_readonly_new_api", test_bind_readonly_new_api},
      {"bind_readonly_legacy", test_bind_readonly_legacy},
      {"mounts_under_unescapes", test_mounts_under_unescapes},
#endif
      {"clone_file", test_clone_file},
      {"clone_file_errors_leave_nothing", test_clone_file_errors_leave_nothing},
      {"socket_links", test_socket_links},
      {"flock", test_flock},
  };
  const char* ci = std::getenv("CI");
  bool in_ci = ci != nullptr && std::strcmp(ci, "true") == 0;
  int passed = 0, failed = 0, skipped = 0;
  for (const Case& c : cases) {
    try {
      c.fn();
      std::printf("ok   %s\n", c.name);
      passed++;
    } catch (const Skip& s) {
      if (in_ci) {
        std::printf("FAIL %s: skipped under CI=true: %s\n", c.name, s.reason.c_str());
        failed++;
      } else {
        std::printf("skip %s: %s\n", c.name, s.reason.c_str());
        skipped++;
      }
    } catch (const Failure& f) {
      std::printf("FAIL %s: %s\n", c.name, f.message.c_str());
      failed++;
    }
  }
  std::printf("core_test: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
