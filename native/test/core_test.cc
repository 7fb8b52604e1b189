// Native unit tests of the Node-free core, run by ctest. Real syscalls on
// real filesystems. As root, the whole run happens in a private mount
// namespace with its own tmpfs on /tmp, so mounts and /tmp/bl-{uid} links
// never touch the host's; tests that need root skip (with a reason) only
// outside CI. Prints "core_test: N passed, N failed, N skipped".
#include "core.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "internal.h"

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

#define CHECK(cond)                                                                                                 \
  do {                                                                                                              \
    if (!(cond)) throw Failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + ": CHECK(" #cond ") failed"}; \
  } while (0)

#define CHECK_OK(expr)                                                                                               \
  do {                                                                                                               \
    blx::Error e_ = (expr);                                                                                          \
    if (e_)                                                                                                          \
      throw Failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #expr " failed: " +                  \
                    std::strerror(e_.code) + " (" + (e_.syscall ? e_.syscall : "?") + " " + e_.path +                \
                    (e_.reason != blx::Reason::kNone ? std::string(", ") + blx::reason_name(e_.reason) : "") + ")"}; \
  } while (0)

#define CHECK_ERR(expr, errno_, reason_)                                                               \
  do {                                                                                                 \
    blx::Error e_ = (expr);                                                                            \
    if (e_.code != (errno_) || !same_reason(e_.reason, reason_))                                       \
      throw Failure{std::string(__FILE__ ":") + std::to_string(__LINE__) + ": " #expr " gave errno " + \
                    std::to_string(e_.code) + " reason " +                                             \
                    (e_.reason != blx::Reason::kNone ? blx::reason_name(e_.reason) : "none") +         \
                    ", not " #errno_ " " #reason_};                                                    \
  } while (0)

bool same_reason(blx::Reason got, blx::Reason want) { return got == want; }

bool g_private_ns = false;  // running in our own mount namespace with a private /tmp

// A scratch directory removed (mounts detached, never following symlinks)
// at the end of every test, whatever happened.
class Scratch {
 public:
  Scratch() {
    char tmpl[] = "/tmp/blx-core-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw Failure{"mkdtemp failed"};
    path_ = tmpl;
  }
  ~Scratch() {
    static const std::string kTmp = "/tmp";
    blx::Fd tmp(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    blx::RemoveStats stats;
    blx::remove_tree_at(blx::Dir{tmp.get(), kTmp}, path_.substr(5), true, &stats);
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

void make_dir(const std::string& p, mode_t mode = 0755) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw Failure{"mkdir " + p + ": " + std::strerror(errno)};
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

mode_t mode_of(const std::string& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) throw Failure{"lstat " + p + ": " + std::strerror(errno)};
  return st.st_mode & 07777;
}

void need_root() {
  if (::geteuid() != 0) throw Skip{"needs root (mounts, chown); run as root"};
}

void need_private_ns() {
  need_root();
  if (!g_private_ns) throw Skip{"needs a private mount namespace (unshare failed)"};
}

blx::LinkSpec link_for(const Scratch& s, const std::string& id) {
  blx::LinkSpec l;
  l.parent = "/tmp/bl-" + std::to_string(::geteuid());
  l.uid = ::geteuid();
  l.target = s / ("home/boxes/" + id + "/sockets");
  return l;
}

blx::BoxRef box_ref(const Scratch& s, const std::string& id) { return blx::BoxRef{s / "home", "boxes", id}; }

// ---------------------------------------------------------------------------
// Resolve beneath

void test_open_beneath_refuses_symlinks() {
  Scratch s;
  make_dir(s / "root");
  make_dir(s / "root/a");
  make_dir(s / "elsewhere");
  CHECK(::symlink((s / "elsewhere").c_str(), (s / "root/a/link").c_str()) == 0);
  blx::Fd root(::open((s / "root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (blx::Trust trust : {blx::Trust::kNone, blx::Trust::kCheck}) {
    blx::OwnedDir out;
    CHECK_ERR(blx::open_dir_beneath(blx::Dir{root.get(), s / "root"}, "a/link", trust, &out, nullptr), ELOOP,
              blx::Reason::kSymlink);
    CHECK_ERR(blx::open_dir_beneath(blx::Dir{root.get(), s / "root"}, "a/link/x", trust, &out, nullptr), ELOOP,
              blx::Reason::kSymlink);
    CHECK_OK(blx::open_dir_beneath(blx::Dir{root.get(), s / "root"}, "a", trust, &out, nullptr));
  }
  blx::OwnedDir out;
  CHECK_ERR(blx::open_dir_beneath(blx::Dir{root.get(), s / "root"}, "../elsewhere", blx::Trust::kNone, &out, nullptr),
            EINVAL, blx::Reason::kNone);
  CHECK_ERR(
      blx::make_dir_beneath(blx::Dir{root.get(), s / "root"}, "a/link/new", 0755, blx::Trust::kNone, &out, nullptr),
      ELOOP, blx::Reason::kSymlink);
  CHECK(!exists_nofollow(s / "elsewhere/new"));
}

void test_make_dir_beneath_exact_modes() {
  Scratch s;
  blx::Fd root(::open(s.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  mode_t old = ::umask(0);
  blx::OwnedDir out;
  blx::Error e = blx::make_dir_beneath(blx::Dir{root.get(), s.path()}, "x/y", 0755, blx::Trust::kNone, &out, nullptr);
  ::umask(077);
  blx::Error e2 = blx::make_dir_beneath(blx::Dir{root.get(), s.path()}, "z", 0700, blx::Trust::kNone, &out, nullptr);
  ::umask(old);
  CHECK_OK(e);
  CHECK_OK(e2);
  CHECK(mode_of(s / "x") == 0755 && mode_of(s / "x/y") == 0755);
  CHECK(mode_of(s / "z") == 0700);
  // A umask that takes bits the mode has: the mode is set anyway.
  old = ::umask(077);
  blx::Error e3 = blx::make_dir_beneath(blx::Dir{root.get(), s.path()}, "u/v", 0755, blx::Trust::kNone, &out, nullptr,
                                        nullptr, true);
  blx::Error e4 = blx::make_leaf_dir(blx::Dir{root.get(), s.path()}, "leaf", 0755);
  blx::Error e5 = blx::make_leaf_dir(blx::Dir{root.get(), s.path()}, "leaf", 0755);  // there already
  ::umask(022);
  blx::Error e6 = blx::make_leaf_dir(blx::Dir{root.get(), s.path()}, "plain", 0755);
  ::umask(old);
  CHECK_OK(e3);
  CHECK_OK(e4);
  CHECK_OK(e5);
  CHECK_OK(e6);
  CHECK(mode_of(s / "u") == 0755 && mode_of(s / "u/v") == 0755);
  CHECK(mode_of(s / "leaf") == 0755 && mode_of(s / "plain") == 0755);
  // A leaf where a symlink is: refused, never followed.
  CHECK(::symlink((s / "plain").c_str(), (s / "link").c_str()) == 0);
  CHECK_ERR(blx::make_leaf_dir(blx::Dir{root.get(), s.path()}, "link", 0755), ELOOP, blx::Reason::kSymlink);
  CHECK_ERR(blx::make_leaf_dir(blx::Dir{root.get(), s.path()}, "a/b", 0755), EINVAL, blx::Reason::kNone);
}

void test_read_regular_refuses_fifos_and_caps() {
  Scratch s;
  blx::Fd root(::open(s.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK(::mkfifo((s / "fifo").c_str(), 0644) == 0);
  write_file(s / "big", std::string(5000, 'x'));
  write_file(s / "ok", "12345\n");
  write_file(s / "target", "secret");
  CHECK(::symlink((s / "target").c_str(), (s / "link").c_str()) == 0);
  std::string text;
  bool present = false;
  auto start = std::chrono::steady_clock::now();
  CHECK_ERR(blx::read_regular_beneath(blx::Dir{root.get(), s.path()}, "fifo", 4096, &text, &present), EINVAL,
            blx::Reason::kNotRegularFile);
  // Answered, not waited on (no writer will ever come).
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK_ERR(blx::read_regular_beneath(blx::Dir{root.get(), s.path()}, "big", 4096, &text, &present), EFBIG,
            blx::Reason::kTooLarge);
  CHECK_ERR(blx::read_regular_beneath(blx::Dir{root.get(), s.path()}, "link", 4096, &text, &present), ELOOP,
            blx::Reason::kSymlink);
  CHECK(text.empty());
  CHECK_OK(blx::read_regular_beneath(blx::Dir{root.get(), s.path()}, "missing", 4096, &text, &present));
  CHECK(!present);
  CHECK_OK(blx::read_regular_beneath(blx::Dir{root.get(), s.path()}, "ok", 4096, &text, &present));
  CHECK(present && text == "12345\n");
}

void test_open_typed_file_judges_before_opening() {
  Scratch s;
  blx::Fd root(::open(s.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK(::mkfifo((s / "fifo").c_str(), 0644) == 0);
  write_file(s / "ok", "QFI");
  CHECK(::symlink((s / "ok").c_str(), (s / "link").c_str()) == 0);
  blx::Fd fd;
  blx::FileStat st;
  CHECK_ERR(blx::open_typed_file(root.get(), "fifo", 0, true, s / "fifo", &fd, &st), EINVAL,
            blx::Reason::kNotRegularFile);
  CHECK(!fd.valid());
  CHECK_ERR(blx::open_typed_file(AT_FDCWD, "/dev/null", 0, true, "/dev/null", &fd, &st), EINVAL,
            blx::Reason::kNotRegularFile);
  CHECK_ERR(blx::open_typed_file(root.get(), "link", O_NOFOLLOW, false, s / "link", &fd, &st), ELOOP,
            blx::Reason::kSymlink);
  CHECK_ERR(blx::open_typed_file(root.get(), "missing", 0, false, s / "missing", &fd, &st), ENOENT, blx::Reason::kNone);
  // Through the link without O_NOFOLLOW, and directly: the file, open to read.
  for (const char* name : {"link", "ok"}) {
    CHECK_OK(blx::open_typed_file(root.get(), name, 0, false, s / name, &fd, &st));
    char buf[8] = {};
    CHECK(S_ISREG(st.mode) && ::read(fd.get(), buf, sizeof buf) == 3 && std::string(buf) == "QFI");
  }
}

void test_write_atomic_never_follows() {
  Scratch s;
  make_dir(s / "dir");
  write_file(s / "victim", "keep", 0600);
  CHECK(::symlink((s / "victim").c_str(), (s / "dir/name").c_str()) == 0);
  blx::Fd dir(::open((s / "dir").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  mode_t old = ::umask(0);
  blx::Error e = blx::write_atomic_at(blx::Dir{dir.get(), s / "dir"}, "name", "new", 0640);
  ::umask(old);
  CHECK_OK(e);
  // The symlink itself was replaced; its target is untouched, byte and mode.
  CHECK(read_file(s / "victim") == "keep" && mode_of(s / "victim") == 0600);
  CHECK(read_file(s / "dir/name") == "new" && mode_of(s / "dir/name") == 0640);
}

// ---------------------------------------------------------------------------
// The home and boxes

void test_home_prepare_and_trust() {
  Scratch s;
  blx::HomePrepareResult r;
  mode_t old = ::umask(0);
  blx::Error e = blx::home_prepare(s / "home", &r);
  ::umask(old);
  CHECK_OK(e);
  CHECK(mode_of(s / "home") == 0755 && mode_of(s / "home/boxes") == 0755 && mode_of(s / "home/tmp") == 0700);
  CHECK(mode_of(s / "home/images/disk-images") == 0755);
  CHECK(r.repaired.empty());
  // A loose mode we own is tightened and reported.
  CHECK(::chmod((s / "home/bases").c_str(), 0777) == 0);
  CHECK_OK(blx::home_prepare(s / "home", &r));
  CHECK(mode_of(s / "home/bases") == 0755);
  CHECK(r.repaired.size() == 1 && r.repaired[0] == s / "home/bases");
  // tmp replaced by a symlink to a directory full of data: refused.
  make_dir(s / "data");
  write_file(s / "data/precious", "p");
  CHECK(::rmdir((s / "home/tmp").c_str()) == 0);
  CHECK(::symlink((s / "data").c_str(), (s / "home/tmp").c_str()) == 0);
  CHECK_ERR(blx::home_prepare(s / "home", &r), ELOOP, blx::Reason::kSymlink);
  blx::GcScan scan;
  CHECK_ERR(blx::gc_scan(s / "home", link_for(s, "x"), &scan), ELOOP, blx::Reason::kSymlink);
  CHECK(read_file(s / "data/precious") == "p");
}

void test_home_foreign_owner_refused() {
  need_root();
  Scratch s;
  blx::HomePrepareResult r;
  CHECK_OK(blx::home_prepare(s / "home", &r));
  CHECK(::chown((s / "home/boxes").c_str(), 4242, 4242) == 0);
  blx::Error e = blx::home_prepare(s / "home", &r);
  CHECK_ERR(e, EPERM, blx::Reason::kForeignOwner);
  CHECK(e.value == 4242 && e.path == s / "home/boxes");
}

void test_box_prepare_cleanup() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  for (const char* d : {"sockets", "tmp", "disks", "shared", "logs"}) CHECK(mode_of(s / "home/boxes/b1/" + d) == 0755);
  CHECK(!exists_nofollow(s / "home/boxes/b1/mounts"));
  // Under a umask that trims 0755, every directory still gets it.
  mode_t old = ::umask(077);
  blx::Error strict = blx::box_prepare(box_ref(s, "b3"), true, link_for(s, "b3"), true, &p);
  ::umask(old);
  CHECK_OK(strict);
  for (const char* d : {"", "/sockets", "/tmp", "/disks", "/mounts", "/logs"}) {
    CHECK(mode_of(s / "home/boxes/b3" + std::string(d)) == 0755);
  }
  std::string target;
  CHECK(blx::read_link_at(AT_FDCWD, link_for(s, "b1").parent.append("/b1").c_str(), &target));
  CHECK(target == s / "home/boxes/b1/sockets");
  // A sentinel reached through symlinks inside the box survives cleanup.
  make_dir(s / "sentinel");
  write_file(s / "sentinel/keep", "k");
  CHECK(::symlink((s / "sentinel").c_str(), (s / "home/boxes/b1/shared/escape").c_str()) == 0);
  blx::CleanupResult c;
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
  CHECK(c.removed && c.link_removed && !c.link_error);
  CHECK(!exists_nofollow(s / "home/boxes/b1"));
  CHECK(read_file(s / "sentinel/keep") == "k");
  // Idempotent; a planted symlink in the box's place is unlinked, never followed.
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
  CHECK(!c.removed);
  CHECK(::symlink((s / "sentinel").c_str(), (s / "home/boxes/b2").c_str()) == 0);
  CHECK_OK(blx::box_cleanup(box_ref(s, "b2"), link_for(s, "b2"), false, true, &c));
  CHECK(c.removed && !exists_nofollow(s / "home/boxes/b2") && read_file(s / "sentinel/keep") == "k");
}

// What macOS 15.2 answers at a symlink (ELOOP) can never arise: a symlink
// is "nothing mounted" before any unmount is tried, even one that leads to a
// real mount, which stays mounted.
void test_detach_stack_skips_symlinks() {
  Scratch s;
  make_dir(s / "box");
  make_dir(s / "box/mounts");
  CHECK(::symlink("mounts", (s / "box/shared").c_str()) == 0);
  blx::Fd box(::open((s / "box").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  uint64_t detached = 9;
  CHECK_OK(blx::detach_stack_at(blx::Dir{box.get(), s / "box"}, "shared", &detached));
  CHECK(detached == 0);
  CHECK_OK(blx::detach_stack_at(blx::Dir{box.get(), s / "box"}, "missing", &detached));
  CHECK(detached == 0);
  std::string target;
  CHECK(blx::read_link_at(box.get(), "shared", &target) && target == "mounts");
#if defined(__linux__)
  need_root();
  need_private_ns();
  make_dir(s / "mnt");
  if (::mount("blx", (s / "mnt").c_str(), "tmpfs", 0, "size=1m") != 0) throw Failure{"mount tmpfs"};
  CHECK(::symlink((s / "mnt").c_str(), (s / "box/to-mount").c_str()) == 0);
  CHECK_OK(blx::detach_stack_at(blx::Dir{box.get(), s / "box"}, "to-mount", &detached));
  CHECK(detached == 0);
  blx::Fd root(::open((s / ".").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK_OK(blx::detach_stack_at(blx::Dir{root.get(), s.path()}, "mnt", &detached));
  CHECK(detached == 1);
#endif
}

void test_box_lock_would_block() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  blx::Fd held(::open((s / "home/boxes/b1").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK(::flock(held.get(), LOCK_EX) == 0);
  blx::CleanupResult c;
  CHECK_ERR(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, false, &c), EWOULDBLOCK,
            blx::Reason::kWouldBlock);
  CHECK(exists_nofollow(s / "home/boxes/b1/sockets"));
  held.reset();
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, false, &c));
}

void test_container_paths_refuse_guest_symlinks() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  make_dir(s / "elsewhere");
  // With isolation off the guest writes shared/: it plants containers -> elsewhere.
  CHECK(::symlink((s / "elsewhere").c_str(), (s / "home/boxes/b1/shared/containers").c_str()) == 0);
  CHECK_ERR(blx::container_exit_write(box_ref(s, "b1"), false, "c1", "{\"exit_code\":1}", true), ELOOP,
            blx::Reason::kSymlink);
  std::string json;
  bool present = false;
  CHECK_ERR(blx::container_exit_read(box_ref(s, "b1"), "c1", &json, &present), ELOOP, blx::Reason::kSymlink);
  // The container tree lives under mounts/ (BoxLite's shared_layout), made beneath the box.
  CHECK_OK(blx::container_prepare(box_ref(s, "b1"), "c1", true));
  CHECK(exists_nofollow(s / "home/boxes/b1/mounts/containers/c1/overlayfs/upper"));
  CHECK(exists_nofollow(s / "home/boxes/b1/mounts/containers/c1/volumes"));
  CHECK(::rmdir((s / "elsewhere").c_str()) == 0);  // still empty
}

void test_shim_install_refuses_bin_symlink_and_fifos() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  make_dir(s / "dist");
  write_file(s / "dist/boxlite-shim", "shim", 0755);
  write_file(s / "dist/libkrunfw.so.5", "lib");
  make_dir(s / "target");
  CHECK(::symlink((s / "target").c_str(), (s / "home/boxes/b1/bin").c_str()) == 0);
  std::vector<blx::CloneResult> files;
  CHECK_ERR(blx::shim_install(box_ref(s, "b1"), s / "dist/boxlite-shim", blx::CloneMode::kAuto, true, &files), ELOOP,
            blx::Reason::kSymlink);
  CHECK(::rmdir((s / "target").c_str()) == 0);  // nothing was written there
  CHECK(::unlink((s / "home/boxes/b1/bin").c_str()) == 0);
  CHECK(::mkfifo((s / "dist/libkrunfw.fifo").c_str(), 0644) == 0);
  CHECK_ERR(blx::shim_install(box_ref(s, "b1"), s / "dist/boxlite-shim", blx::CloneMode::kAuto, true, &files), EINVAL,
            blx::Reason::kNotRegularFile);
  CHECK(!exists_nofollow(s / "home/boxes/b1/bin"));  // bad input: nothing created
  CHECK(::unlink((s / "dist/libkrunfw.fifo").c_str()) == 0);
  CHECK_OK(blx::shim_install(box_ref(s, "b1"), s / "dist/boxlite-shim", blx::CloneMode::kAuto, true, &files));
  CHECK(files.size() == 2 && files[0].name == "boxlite-shim" && files[1].name == "libkrunfw.so.5");
  CHECK(mode_of(s / "home/boxes/b1/bin/boxlite-shim") == 0755 &&
        read_file(s / "home/boxes/b1/bin/boxlite-shim") == "shim");
  CHECK_OK(blx::shim_install(box_ref(s, "b1"), s / "dist/boxlite-shim", blx::CloneMode::kAuto, true, &files));
  CHECK(files[0].method == blx::CloneMethod::kSkipped);
}

#if defined(__linux__)
void test_shared_mount_read_only(bool legacy) {
  need_private_ns();
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), true, link_for(s, "b1"), true, &p));
  write_file(s / "home/boxes/b1/mounts/host-file", "host");
  blx::MountResult m;
  CHECK_OK(blx::shared_mount(box_ref(s, "b1"), true, legacy, true, &m));
  CHECK(m.method == (legacy ? blx::MountMethod::kBindRoLegacy : blx::MountMethod::kBindRo) && !m.reused);
  CHECK(read_file(s / "home/boxes/b1/shared/host-file") == "host");
  CHECK(::open((s / "home/boxes/b1/shared/new").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644) < 0 && errno == EROFS);
  blx::SharedState st;
  CHECK_OK(blx::shared_inspect(box_ref(s, "b1"), true, &st));
  CHECK(st.kind == blx::SharedKind::kMount && st.read_only && st.shows_mounts && st.writable_submounts.empty());
  CHECK_OK(blx::shared_mount(box_ref(s, "b1"), true, legacy, true, &m));
  CHECK(m.reused);
  blx::CleanupResult c;
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
  CHECK(c.stats.unmounted == 1 && !exists_nofollow(s / "home/boxes/b1"));
}

void test_shared_mount_new_api() { test_shared_mount_read_only(false); }
void test_shared_mount_legacy() { test_shared_mount_read_only(true); }

void test_cleanup_never_deletes_through_a_mount() {
  need_private_ns();
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  make_dir(s / "data");
  write_file(s / "data/host-file", "host");
  make_dir(s / "home/boxes/b1/tmp/m");
  CHECK(::mount((s / "data").c_str(), (s / "home/boxes/b1/tmp/m").c_str(), nullptr, MS_BIND, nullptr) == 0);
  blx::CleanupResult c;
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
  CHECK(c.stats.unmounted == 1);
  CHECK(read_file(s / "data/host-file") == "host");
}
#endif

// ---------------------------------------------------------------------------
// Locks, records, gc

void test_runtime_lock() {
  Scratch s;
  int fd = -1;
  CHECK_ERR(blx::runtime_lock(s / "missing", &fd), ENOENT, blx::Reason::kNotPrepared);
  CHECK(!exists_nofollow(s / "missing"));
  make_dir(s / "home");
  CHECK_OK(blx::runtime_lock(s / "home", &fd));
  blx::Fd held(fd);
  CHECK(read_file(s / "home/.lock") == std::to_string(::getpid()) + "\n");
  blx::Error e = blx::runtime_lock(s / "home", &fd);
  CHECK_ERR(e, EBUSY, blx::Reason::kRuntimeLocked);
  CHECK(e.value == ::getpid());
  held.reset();
  // A hard-linked .lock would have its other name truncated: refused.
  CHECK(::unlink((s / "home/.lock").c_str()) == 0);
  write_file(s / "victim", "precious");
  CHECK(::link((s / "victim").c_str(), (s / "home/.lock").c_str()) == 0);
  CHECK_ERR(blx::runtime_lock(s / "home", &fd), EMLINK, blx::Reason::kHardLinked);
  CHECK(read_file(s / "victim") == "precious");
}

void test_lock_manager() {
  Scratch s;
  blx::DirRef dir{s.path(), "locks"};
  uint32_t a = 99, b = 99;
  CHECK_OK(blx::lock_allocate(dir, &a));
  CHECK_OK(blx::lock_allocate(dir, &b));
  CHECK(a == 0 && b == 1);
  int fd1 = -1, fd2 = -1;
  bool got = false;
  CHECK_OK(blx::lock_acquire(dir, 0, false, false, &fd1, &got));
  CHECK(got);
  blx::Fd held(fd1);
  CHECK_OK(blx::lock_acquire(dir, 0, false, false, &fd2, &got));
  CHECK(!got && fd2 < 0);
  CHECK_ERR(blx::lock_acquire(dir, 0, true, false, &fd2, &got), EWOULDBLOCK, blx::Reason::kWouldBlock);
  CHECK_ERR(blx::lock_acquire(dir, 7, true, true, &fd2, &got), ENOENT, blx::Reason::kNotAllocated);
  CHECK_OK(blx::lock_free(dir, 0));
  CHECK_OK(blx::lock_free(dir, 0));
  CHECK(::mkfifo((s / "locks/5").c_str(), 0644) == 0);
  CHECK_ERR(blx::lock_acquire(dir, 5, true, true, &fd2, &got), EINVAL, blx::Reason::kNotRegularFile);
}

void test_pid_records() {
  Scratch s;
  blx::DirRef dir{s.path(), ""};
  std::string start;
  CHECK_OK(blx::pid_write(dir, "shim.pid", ::getpid(), {"cap-a"}, &start));
  blx::PidRead r;
  CHECK_OK(blx::pid_read(dir, "shim.pid", &r));
  CHECK(r.present && r.pid == ::getpid() && r.process.alive);
#if defined(__linux__)
  CHECK(!start.empty() && r.process.start_time == start);
  CHECK(r.text == std::to_string(::getpid()) + "\n" + start + "\ncap-a\n");
#endif
  CHECK(::unlink((s / "shim.pid").c_str()) == 0);
  CHECK(::mkfifo((s / "shim.pid").c_str(), 0644) == 0);
  CHECK_ERR(blx::pid_read(dir, "shim.pid", &r), EINVAL, blx::Reason::kNotRegularFile);
  bool renamed = false;
  CHECK_OK(blx::file_rename(dir, "exit", "exit.previous", &renamed));
  CHECK(!renamed);
}

void test_shim_prepare() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  const std::string box = s / "home/boxes/b1";
  write_file(box + "/exit", "{\"type\":\"error\",\"exit_code\":1,\"message\":\"m\"}");
  write_file(box + "/logs/console.log", "last run\n");
  CHECK(::rmdir((box + "/sockets").c_str()) == 0);
  blx::ShimPrepareResult r;
  CHECK_OK(blx::shim_prepare(box_ref(s, "b1"), link_for(s, "b1"), true, &r));
  CHECK(r.rotated && r.stderr_fd >= 0);
  CHECK(::write(r.stderr_fd, "a\n", 2) == 2);
  ::close(r.stderr_fd);
  CHECK(read_file(box + "/exit").empty() && mode_of(box + "/exit") == 0644);
  CHECK(read_file(box + "/exit.previous").find("exit_code") != std::string::npos);
  CHECK(read_file(box + "/logs/console.log") == "last run\n");
  CHECK(exists_nofollow(box + "/sockets"));
  CHECK_OK(blx::shim_prepare(box_ref(s, "b1"), link_for(s, "b1"), true, &r));
  CHECK(::write(r.stderr_fd, "b\n", 2) == 2);
  ::close(r.stderr_fd);
  CHECK(read_file(box + "/shim.stderr") == "a\nb\n");
  CHECK(read_file(box + "/exit.previous").empty());
  // A planted shim.stderr link is refused, its target untouched.
  write_file(s / "outside", "keep");
  CHECK(::unlink((box + "/shim.stderr").c_str()) == 0);
  CHECK(::symlink((s / "outside").c_str(), (box + "/shim.stderr").c_str()) == 0);
  CHECK_ERR(blx::shim_prepare(box_ref(s, "b1"), link_for(s, "b1"), true, &r), ELOOP, blx::Reason::kSymlink);
  CHECK(read_file(s / "outside") == "keep");
}

void test_macos_canonical() {
  Scratch s;
  make_dir(s / "private");
  make_dir(s / "private/tmp-like");
  CHECK(::symlink("private/tmp-like", (s / "tmp").c_str()) == 0);
  make_dir(s / "tmp/dir");
  CHECK(::symlink("dir", (s / "tmp/link").c_str()) == 0);
  CHECK(blx::macos_canonical(s / "tmp/dir") == s / "private/tmp-like/dir");
  // A missing tail is re-appended to the resolved ancestor.
  CHECK(blx::macos_canonical(s / "tmp/dir/a/b.sock") == s / "private/tmp-like/dir/a/b.sock");
  // A symlink leaf keeps its name; only its parent is resolved.
  CHECK(blx::macos_canonical(s / "tmp/link") == s / "private/tmp-like/link");
  CHECK(blx::macos_canonical(s / "tmp/link/x.sock") == s / "private/tmp-like/link/x.sock");
  CHECK(blx::macos_canonical("/") == "/");
}

// shim_alive judges a pid file as the facade's judgeIdentity does.
void test_shim_alive_judgement() {
  auto judged = [](const std::string& text) {
    blx::PidRead r;
    r.present = true;
    r.text = text;
    blx::read_pid_facts(&r);
    return blx::shim_alive(r);
  };
  blx::ProcessFacts me;
  blx::process_facts(::getpid(), &me);
  const std::string pid = std::to_string(::getpid());
  CHECK(judged(pid + "\n"));               // legacy: alive, no fingerprint
  CHECK(judged(pid + "\n\ncap\n"));        // legacy with capability lines
  CHECK(judged(pid + " \n"));              // trailing blanks are trimmed, as the facade trims
  CHECK(judged(" " + pid + "\n"));         // leading ones too, as parsePidFile trims line 1
  CHECK(!judged(pid + "x\n"));             // malformed line 1
  CHECK(!judged(pid + "\nnot-digits\n"));  // malformed line 2
  CHECK(!judged("0" + pid + "\n"));        // a leading zero is not a pid the facade accepts
  CHECK(!judged("2147483647\n"));          // nobody there
#if defined(__linux__)
  CHECK(!me.start_time.empty());
  CHECK(judged(pid + "\n" + me.start_time + "\n"));    // verified
  CHECK(!judged(pid + "\n" + me.start_time + "1\n"));  // another start time: a reused pid
  // A fingerprint is a number: zeros padding it (past 20 digits too) change nothing.
  CHECK(judged(pid + "\n" + std::string(30, '0') + me.start_time + "\n"));
  CHECK(!judged(pid + "\n18446744073709551616\n"));  // beyond u64: malformed
#endif
  blx::PidRead absent;
  CHECK(!blx::shim_alive(absent));
}

// Adopting a lock passed down as a fd: only the open file description that
// holds this home's .lock is accepted; another fd of the same file is
// refused while the lock is held, any other file is "not this lock".
void test_runtime_lock_adopt() {
  Scratch s;
  bool adopted = true;
  CHECK_ERR(blx::runtime_lock_adopt(s / "missing", 0, &adopted), ENOENT, blx::Reason::kNotPrepared);
  make_dir(s / "home");
  CHECK_OK(blx::runtime_lock_adopt(s / "home", 0, &adopted));
  CHECK(!adopted);  // no .lock yet
  int fd = -1;
  CHECK_OK(blx::runtime_lock(s / "home", &fd));
  blx::Fd held(fd);
  CHECK(::fcntl(held.get(), F_SETFD, 0) == 0);
  CHECK_OK(blx::runtime_lock_adopt(s / "home", held.get(), &adopted));
  CHECK(adopted);
  CHECK((::fcntl(held.get(), F_GETFD) & FD_CLOEXEC) != 0);  // a shim the adopter spawns does not keep it
  blx::Fd other(::open((s / "home/.lock").c_str(), O_RDONLY | O_CLOEXEC));
  blx::Error e = blx::runtime_lock_adopt(s / "home", other.get(), &adopted);
  CHECK_ERR(e, EBUSY, blx::Reason::kRuntimeLocked);
  CHECK(!adopted);
  write_file(s / "elsewhere", "x");
  blx::Fd unrelated(::open((s / "elsewhere").c_str(), O_RDONLY | O_CLOEXEC));
  CHECK_OK(blx::runtime_lock_adopt(s / "home", unrelated.get(), &adopted));
  CHECK(!adopted);
  CHECK_OK(blx::runtime_lock_adopt(s / "home", -1, &adopted));
  CHECK(!adopted);
  // A number that is not open (a lock fd the parent did not pass down) is
  // "not this lock", whichever descriptors the adopt opens itself land on:
  // free the k lowest numbers and name the highest, for every k.
  held.reset();
  other.reset();
  for (int k = 1; k <= 8; k++) {
    std::vector<int> freed;
    for (int i = 0; i < k; i++) freed.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    for (int f : freed) ::close(f);
    CHECK_OK(blx::runtime_lock_adopt(s / "home", freed.back(), &adopted));
    CHECK(!adopted);
  }
}

// gc_scan says which boxes are locked (being set up) and when each changed.
void test_gc_scan_sees_box_locks() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  CHECK_OK(blx::box_prepare(box_ref(s, "b2"), false, link_for(s, "b2"), true, &p));
  blx::Fd held(::open((s / "home/boxes/b1").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK(::flock(held.get(), LOCK_EX) == 0);
  blx::GcScan scan;
  CHECK_OK(blx::gc_scan(s / "home", link_for(s, "b1"), &scan));
  CHECK(scan.boxes.size() == 2);
  CHECK(scan.boxes[0].locked && !scan.boxes[1].locked);
  struct stat st;
  CHECK(::stat((s / "home/boxes/b2").c_str(), &st) == 0);
  CHECK(scan.boxes[1].changed_sec == st.st_mtime);
  // The scan only tried the lock: b2's is free afterwards.
  blx::Fd b2(::open((s / "home/boxes/b2").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  CHECK(::flock(b2.get(), LOCK_EX | LOCK_NB) == 0);
  b2.reset();
  held.reset();
  blx::CleanupResult c;
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
  CHECK_OK(blx::box_cleanup(box_ref(s, "b2"), link_for(s, "b2"), false, true, &c));
}

void test_gc_scan_reports_without_hanging() {
  Scratch s;
  blx::BoxPrepareResult p;
  CHECK_OK(blx::box_prepare(box_ref(s, "b1"), false, link_for(s, "b1"), true, &p));
  CHECK(::mkfifo((s / "home/boxes/b1/shim.pid").c_str(), 0644) == 0);
  write_file(s / "home/boxes/stray-file", "x");
  make_dir(s / "home/boxes/.trash-b9-00000000");
  make_dir(s / "home/boxes/b1/bin");
  write_file(s / "home/boxes/b1/bin/.boxlite-shim.blx-0123456789abcdef", "partial");
  blx::GcScan scan;
  CHECK_OK(blx::gc_scan(s / "home", link_for(s, "b1"), &scan));
  CHECK(scan.boxes.size() == 3);
  CHECK(scan.boxes[0].name == ".trash-b9-00000000" && scan.boxes[0].kind == blx::EntryKind::kTrash);
  CHECK(scan.boxes[1].name == "b1" && scan.boxes[1].kind == blx::EntryKind::kBox);
  CHECK(same_reason(scan.boxes[1].pid_error.reason, blx::Reason::kNotRegularFile));
  CHECK(scan.boxes[1].partial_copies.size() == 1);
  CHECK(scan.boxes[2].kind == blx::EntryKind::kStray);
  blx::RemoveStats stats;
  CHECK_OK(blx::gc_remove(s / "home", "boxes/b1/bin", ".boxlite-shim.blx-0123456789abcdef", &stats));
  CHECK(stats.entries == 1);
  blx::CleanupResult c;
  CHECK_OK(blx::box_cleanup(box_ref(s, "b1"), link_for(s, "b1"), false, true, &c));
}

// ---------------------------------------------------------------------------
// Copies, sockets, facts

void test_clone_file() {
  Scratch s;
  write_file(s / "src", "content", 0751);
  blx::CloneResult r;
  CHECK_OK(blx::clone_file(s / "src", s / "dst", blx::CloneMode::kAuto, &r));
  CHECK(read_file(s / "dst") == "content" && mode_of(s / "dst") == 0751 && r.bytes == 7);
  CHECK_OK(blx::clone_file(s / "src", s / "never", blx::CloneMode::kNever, &r));
  CHECK(r.method == blx::CloneMethod::kCopy);
  blx::Error e = blx::clone_file(s / "src", s / "forced", blx::CloneMode::kForce, &r);
  CHECK(!e || (e.code == ENOTSUP && same_reason(e.reason, blx::Reason::kNoReflink)));
  CHECK(::mkfifo((s / "fifo").c_str(), 0644) == 0);
  CHECK_ERR(blx::clone_file(s / "fifo", s / "x", blx::CloneMode::kAuto, &r), EINVAL, blx::Reason::kNotRegularFile);
  CHECK(!exists_nofollow(s / "x"));
}

void test_socket_links() {
  Scratch s;
  blx::LinkSpec link{s / "bl", ::geteuid(), s / "target"};
  make_dir(s / "target");
  blx::LinkResult r;
  CHECK_OK(blx::socket_link_ensure(link, "b1", &r));
  CHECK(r.state == blx::LinkState::kCreated && mode_of(s / "bl") == 0700);
  CHECK_OK(blx::socket_link_ensure(link, "b1", &r));
  CHECK(r.state == blx::LinkState::kKept);
  CHECK(::chmod((s / "bl").c_str(), 0755) == 0);
  CHECK_OK(blx::socket_link_ensure(link, "b1", &r));
  CHECK(r.mode_repaired && mode_of(s / "bl") == 0700);
  blx::LinkSpec other{s / "bl", ::geteuid(), s / "gone"};
  CHECK_OK(blx::socket_link_ensure(other, "b2", &r));
  std::vector<std::string> names;
  CHECK_OK(blx::socket_links_sweep(link, true, &names));
  CHECK(names.size() == 1 && names[0] == "b2" && exists_nofollow(s / "bl/b2"));
  CHECK_OK(blx::socket_links_sweep(link, false, &names));
  CHECK(names.size() == 1 && !exists_nofollow(s / "bl/b2"));
  write_file(s / "bl/b3", "file");
  CHECK_ERR(blx::socket_link_ensure(link, "b3", &r), EEXIST, blx::Reason::kLinkOccupied);
  bool removed = false;
  CHECK_OK(blx::socket_link_remove(link, "b1", &removed));
  CHECK(removed && !exists_nofollow(s / "bl/b1"));
  // A symlinked link dir is refused (squatting).
  CHECK(::symlink((s / "target").c_str(), (s / "bl2").c_str()) == 0);
  blx::LinkSpec squatted{s / "bl2", ::geteuid(), s / "target"};
  CHECK_ERR(blx::socket_link_ensure(squatted, "b1", &r), ELOOP, blx::Reason::kSymlink);
}

void test_probe_and_same_filesystem() {
  Scratch s;
  blx::FsFacts root;
  CHECK_OK(blx::probe("/", &root));
  CHECK(root.is_mount_root);
  blx::FsFacts dir;
  make_dir(s / "d");
  CHECK_OK(blx::probe(s / "d", &dir));
  CHECK(!dir.is_mount_root && dir.fs_name.find("unknown") == std::string::npos);
  CHECK(blx::probe(s / "missing", &dir).code == ENOENT);
  std::vector<blx::Device> devs;
  CHECK_OK(blx::same_filesystem({s.path(), s / "d", "/proc"}, &devs));
  CHECK(devs.size() == 3 && devs[0].major == devs[1].major && devs[0].minor == devs[1].minor);
  CHECK(devs[2].minor != devs[0].minor || devs[2].major != devs[0].major);
}

#if defined(__linux__)
void test_mount_id_fallback_matches_statx() {
  Scratch s;
  blx::FileStat st;
  CHECK_OK(blx::stat_at(AT_FDCWD, s.path().c_str(), true, &st, s.path()));
  if (!st.mount_id_known) throw Skip{"this kernel reports no mount ids"};
  uint64_t via_handle = 0;
  if (!blx::mount_id_via_handle(AT_FDCWD, s.path().c_str(), true, &via_handle)) {
    throw Skip{"this filesystem has no file handles"};
  }
  CHECK(via_handle == st.mount_id);
}
#endif

struct Case {
  const char* name;
  std::function<void()> fn;
};

// As root: our own mount namespace (a single-threaded process can unshare),
// nothing propagating back, and a fresh tmpfs on /tmp.
void enter_private_namespace() {
#if defined(__linux__)
  if (::geteuid() != 0) return;
  if (::unshare(CLONE_NEWNS) != 0) return;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return;
  if (::mount("blx-core-test", "/tmp", "tmpfs", 0, "mode=1777,size=256m") != 0) return;
  g_private_ns = true;
#endif
}

}  // namespace

void test_manifest_generation() {
  CHECK(blx::manifest_generation("{\n  \"version\": 1,\n  \"generation\": \"V1StGXR8_Z5j\"\n}") == "V1StGXR8_Z5j");
  CHECK(blx::manifest_generation("{\"generation\" : \"a-b_C\"}") == "a-b_C");
  CHECK(blx::manifest_generation("{\"generation\":\"../etc\"}").empty());
  CHECK(blx::manifest_generation("{\"generation\":\"\"}").empty());
  CHECK(blx::manifest_generation("{\"generation\":\"a\",\"generation\":\"b\"}").empty());
  CHECK(blx::manifest_generation("{\"generation\":7}").empty());
  CHECK(blx::manifest_generation("{\"generation\":\"unterminated").empty());
  CHECK(blx::is_generation_name(std::string(64, 'a')));
  CHECK(!blx::is_generation_name(std::string(65, 'a')));
  CHECK(!blx::is_generation_name("a.b"));
}

int main() {
  enter_private_namespace();
  const std::vector<Case> cases = {
    {"open_beneath_refuses_symlinks", test_open_beneath_refuses_symlinks},
    {"make_dir_beneath_exact_modes", test_make_dir_beneath_exact_modes},
    {"read_regular_refuses_fifos_and_caps", test_read_regular_refuses_fifos_and_caps},
    {"open_typed_file_judges_before_opening", test_open_typed_file_judges_before_opening},
    {"write_atomic_never_follows", test_write_atomic_never_follows},
    {"home_prepare_and_trust", test_home_prepare_and_trust},
    {"home_foreign_owner_refused", test_home_foreign_owner_refused},
    {"box_prepare_cleanup", test_box_prepare_cleanup},
    {"detach_stack_skips_symlinks", test_detach_stack_skips_symlinks},
    {"box_lock_would_block", test_box_lock_would_block},
    {"container_paths_refuse_guest_symlinks", test_container_paths_refuse_guest_symlinks},
    {"shim_install_refuses_bin_symlink_and_fifos", test_shim_install_refuses_bin_symlink_and_fifos},
#if defined(__linux__)
    {"shared_mount_new_api", test_shared_mount_new_api},
    {"shared_mount_legacy", test_shared_mount_legacy},
    {"cleanup_never_deletes_through_a_mount", test_cleanup_never_deletes_through_a_mount},
    {"mount_id_fallback_matches_statx", test_mount_id_fallback_matches_statx},
#endif
    {"runtime_lock", test_runtime_lock},
    {"lock_manager", test_lock_manager},
    {"pid_records", test_pid_records},
    {"shim_prepare", test_shim_prepare},
    {"macos_canonical", test_macos_canonical},
    {"gc_scan_reports_without_hanging", test_gc_scan_reports_without_hanging},
    {"runtime_lock_adopt", test_runtime_lock_adopt},
    {"shim_alive_judgement", test_shim_alive_judgement},
    {"gc_scan_sees_box_locks", test_gc_scan_sees_box_locks},
    {"clone_file", test_clone_file},
    {"socket_links", test_socket_links},
    {"probe_and_same_filesystem", test_probe_and_same_filesystem},
    {"manifest_generation", test_manifest_generation},
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
