// What the core's operation files share: owned fds, file facts, the
// resolve-beneath primitives and the platform hooks. Not part of core.h.
//
// The rule every operation follows (docs/design.md, "Resolve beneath"): a
// home or box is reached from a directory fd the operation holds; every path
// below it is resolved beneath that fd without following a symlink; mkdir,
// create, chmod, rename and unlink are *at() calls on held fds; chmod is only
// ever fchmod on an fd opened O_NOFOLLOW; files a guest or shim can reach are
// opened O_NOFOLLOW | O_NONBLOCK, checked to be regular files and read with a
// size cap.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core.h"

namespace blx {

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Errors and paths

Error fail(int code, const char* syscall, std::string path = {}, std::string dest = {});
// fail() with the current errno.
Error fail_errno(const char* syscall, std::string path = {}, std::string dest = {});
// An error with a documented reason (core.h, enum Reason).
Error fail_reason(int code, Reason reason, const char* syscall, std::string path, int64_t value = -1);

// dir + "/" + name, unless dir already ends with "/" (Rust's PathBuf::join,
// which is how BoxLite builds every path); an empty name adds nothing.
std::string join_path(const std::string& dir, const std::string& name);

// "/a/b/c" -> "/a/b" and "c" (trailing slashes ignored); "c" -> "." and "c".
void split_path(const std::string& path, std::string* dir, std::string* name);

// Whether name is one plain path component: not empty, ".", ".." and
// without "/".
bool is_plain_name(const std::string& name);

// 16 hex chars from the kernel's CSPRNG, for temporary names.
std::string random_suffix();

// readlinkat into a string; false (errno set) when not a symlink etc.
bool read_link_at(int dirfd, const char* name, std::string* out);

// ---------------------------------------------------------------------------
// Directory handles: an fd and the path it was opened as, which is only ever
// shown (error paths, repairs), never resolved again. Every error path below
// a directory is built by child() from that one string, so it reads as the
// operator's own path however the fd was reached. A function about one
// entry or one open file (stat_at, detach_mount_at, clone_into, ...) takes
// that entry's own path as a `display` string instead: there is no
// directory to build it from.

// A borrowed directory: the fd and the path belong to an OwnedDir (or a
// caller's Fd and string) that outlives it. Passed by value.
struct Dir {
  int fd;
  const std::string& path;

  // The path of rel ("a" or "a/b") beneath it, joined as BoxLite joins
  // paths (join_path); "" is the directory itself.
  std::string child(const std::string& rel) const { return join_path(path, rel); }
};

// A directory the holder owns: closing the fd is the OwnedDir's.
struct OwnedDir {
  Fd fd;
  std::string path;

  int get() const { return fd.get(); }
  bool valid() const { return fd.valid(); }
  Dir dir() const { return Dir{fd.get(), path}; }
  operator Dir() const { return dir(); }  // NOLINT: borrowing is the point
  std::string child(const std::string& rel) const { return join_path(path, rel); }
};

// ---------------------------------------------------------------------------
// File facts

// What the core needs to know about one directory entry or open file.
struct FileStat {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint64_t nlink = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units allocated (st_blocks)
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t ino = 0;
  uint64_t mount_id = 0;
  bool mount_id_known = false;
  bool mount_root = false;
  bool mount_root_known = false;
};

// stat of dirfd/name (name "" means dirfd itself). Linux uses statx with the
// mount id; other systems fstatat, where the device stands in for the mount.
Error stat_at(int dirfd, const char* name, bool follow, FileStat* out, const std::string& display);

bool same_inode(const FileStat& a, const FileStat& b);

// Whether a and b (each stat'ed with stat_at) live on different mounts.
bool different_mount(const FileStat& a, const FileStat& b);

#if defined(__linux__)
// The mount id by name_to_handle_at, the fallback stat_at uses on kernels
// whose statx has no STATX_MNT_ID (< 5.8). Exposed for the native tests.
bool mount_id_via_handle(int dirfd, const char* name, bool follow, uint64_t* out);
#endif

// ---------------------------------------------------------------------------
// Resolve beneath

// What an operation demands of the directories on its way to a box: the
// home, its own directories and the box dir itself.
enum class Trust {
  kNone,    // only "a real directory" (inside a box)
  kCheck,   // a real directory owned by us or root, not writable by group or others
  kRepair,  // kCheck, but a loose mode on a directory we own is tightened and reported
};

// Collects the directories whose loose mode an operation tightened.
using Repairs = std::vector<std::string>;

// The trust check on an open directory (see Trust). `sticky_ok` lets a
// world-writable sticky directory (/tmp) pass, for the operator's own root.
Error check_trusted_dir(Dir dir, Trust trust, bool sticky_ok, Repairs* repairs);
// The same judgement of a stat already taken of dir.
Error check_trusted_stat(Dir dir, const FileStat& st, Trust trust, bool sticky_ok, Repairs* repairs);

// Open an operator-given root directory as given: the kernel resolves it,
// symlinks and ".." included (it is configuration, not content). With
// create, missing directories are made first (mode applies to the last).
Error open_root(const std::string& path, bool create, mode_t mode, Trust trust, OwnedDir* out, Repairs* repairs);

// Open the directory rel ("a/b", "" for at itself) beneath at, never
// through a symlink and never above at. With trust other than kNone each
// component is opened and checked on the way (a walk); otherwise openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) does it in
// one call where the kernel has it. out's path is at.child(rel).
Error open_dir_beneath(Dir at, const std::string& rel, Trust trust, OwnedDir* out, Repairs* repairs);

// mkdir -p of rel beneath at: each missing component is made with
// mkdirat and given `mode` exactly (an fchmod where the umask trimmed it), each
// existing one must be a real directory (ELOOP for a symlink). *created
// tells whether the last component was made now. expect_missing: the
// caller knows the last component is almost surely missing (a box's
// subdirectory in a box this call made), so mkdirat is tried before the
// open. A directory made now is not trust-checked: it is ours, beneath a
// directory that was, and has exactly `mode`.
Error make_dir_beneath(Dir at, const std::string& rel, mode_t mode, Trust trust, OwnedDir* out, Repairs* repairs,
                       bool* created = nullptr, bool expect_missing = false);

// The directory name (one component) made beneath at with exactly `mode`,
// when the caller needs no descriptor for it: mkdirat, then a statx of the
// name shows the mode (the fd, and an fchmod, only when the umask trimmed
// it). An existing entry is opened and judged as make_dir_beneath does.
Error make_leaf_dir(Dir at, const std::string& name, mode_t mode);

// Open the file rel beneath at with flags (O_NOFOLLOW, O_CLOEXEC and
// O_NOCTTY are added): no symlink anywhere on the way, the final component
// included.
Error open_beneath(Dir at, const std::string& rel, int flags, mode_t mode, Fd* out);

// The contents of the regular file rel beneath at, at most cap bytes.
// Opened O_NOFOLLOW | O_NONBLOCK, so a FIFO or device answers at once
// (reason not-a-regular-file) instead of hanging; larger files are
// too-large. *present is false (no error) when it does not exist.
Error read_regular_beneath(Dir at, const std::string& rel, size_t cap, std::string* out, bool* present);

// Readers see the old or the new file, never a partial one: data goes to an
// O_CREAT | O_EXCL | O_NOFOLLOW temporary in dir, gets `mode` by fchmod,
// and is renamed over name.
Error write_atomic_at(Dir dir, const std::string& name, const std::string& data, mode_t mode);

// Fill pid and process from the text of a pid file (records.cc).
void read_pid_facts(PidRead* out);

// The pid on line 1 of a pid file's text, leading whitespace skipped as the
// facade's parser skips it; -1 when it does not start with one in
// 1..2^31-1.
int64_t pid_of_text(const std::string& text);

// Open a DirRef's directory: root as given, rel beneath it, every step
// trust-checked (kCheck). With create, missing directories are made (0755).
Error open_dir_ref(const DirRef& ref, bool create, OwnedDir* out);

// Platform hook: openat2(dirfd, rel, flags | O_CLOEXEC, RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS). Returns the fd, or -1 with
// errno; ENOSYS where the kernel (or platform) has no openat2.
int openat2_beneath(int dirfd, const char* rel, int flags, mode_t mode);

// ---------------------------------------------------------------------------
// Box directories

// The fds an operation on one box holds: the anchor root, the boxes dir and
// the box dir, each with its path. box is flocked when opened with a lock.
struct BoxDirs {
  OwnedDir root;
  OwnedDir boxes;
  OwnedDir box;
  bool box_created = false;  // open_box made the box dir now
  FileStat box_stat;         // the box dir under its lock (with lock only)
  bool box_stat_known = false;
};

enum class BoxOpen {
  kExisting,  // the box must exist (ENOENT otherwise)
  kCreate,    // make it (and the home and boxes dir) when missing
};

// Open a box's directories (trust-checked), and with lock the box dir's
// flock: when !may_block and another holder has it, EWOULDBLOCK with
// reason would-block (the caller retries where it may block). After the
// lock, the box dir must still be the one under its name; kCreate makes a
// new one when a cleanup removed it meanwhile, kExisting fails ENOENT
// (removed-while-waiting) or ESTALE (replaced-while-waiting).
Error open_box(const BoxRef& ref, BoxOpen how, bool lock, bool may_block, Trust trust, BoxDirs* out, Repairs* repairs);

// The entries of an open boxes dir, classified and sorted (home_ops.cc).
Error list_box_entries(Dir boxes, std::vector<BoxEntry>* out);

// The box's shared root for reading what the guest wrote: shared/ itself
// (a directory or the read-only mount), or mounts/ when shared/ is the
// symlink fallback this package made (the only symlink it ever follows,
// because it made it).
Error open_shared_root(Dir box, OwnedDir* out);

// ---------------------------------------------------------------------------
// Platform hooks

// FIEMAP on an open file: 1 shares extents (a reflink), 0 not, -1 the
// filesystem cannot say.
Error extents_shared_fd(int fd, const std::string& display, int* out);

// The extents of an open regular file, each handed to sink (physical
// offset and length in bytes, whether FIEMAP flags it shared). *known is
// false when the filesystem (or platform: macOS) cannot say.
class ExtentSink {
 public:
  virtual void extent(uint64_t physical, uint64_t length, bool shared) = 0;

 protected:
  ~ExtentSink() = default;
};
Error file_extents(int fd, const std::string& display, ExtentSink* sink, bool* known);

// Create dirfd/tmp_name exclusively with the contents of src_fd by the
// fastest method `mode` allows, leaving it open in *out. On error nothing is
// left at dirfd/tmp_name. src and dst are for messages.
Error clone_into(int src_fd, const FileStat& src, int dirfd, const char* tmp_name, CloneMode mode,
                 const std::string& src_display, const std::string& dst_display, CloneMethod* method, Fd* out);

// A copy a platform made in one call by name (macOS's clonefile), carrying
// the source's mode: opened O_RDONLY, all install_at needs (fchmod and
// futimens need ownership, not write access), so a 0555 or 0444 source
// works for a non-root owner, where reopening for writing failed EACCES. If
// even that is refused (a mode without owner read; EACCES, EPERM), the copy
// is removed and *refused holds the errno: the caller makes a plain copy.
// Other errors remove it too and are returned.
Error adopt_clone_at(int dirfd, const char* tmp_name, const std::string& dst_display, Fd* out, int* refused);

// Portable read/write copy, the last resort of every platform.
Error copy_read_write(int src_fd, int dst_fd, const std::string& src_display, const std::string& dst_display);

// The start time of pid as the kernel records it (Linux: field 22 of
// /proc/PID/stat); "" when gone or unknown.
std::string process_start_time(int64_t pid);

// Whether the filesystem of the directory dirfd folds letter case in names
// (macOS: fpathconf _PC_CASE_SENSITIVE is 0, APFS's and HFS+'s default; an
// unanswered query counts as folding). Linux: only when
// BOXLITE_LAYOUT_CASE_INSENSITIVE=1 forces it, for tests (ext4/tmpfs
// casefold directories need CONFIG_UNICODE).
bool names_fold_case(int dirfd);

// Fill buf from the kernel's CSPRNG.
void random_bytes(unsigned char* buf, size_t n);

struct DirEntry {
  std::string name;
  unsigned char type;  // d_type; DT_UNKNOWN when the filesystem does not say
};

// The entries of an open directory (without "." and ".."), read from the
// fd's current offset: pass a freshly opened fd.
Error list_dir(Dir dir, std::vector<DirEntry>* out);

// Whether dirfd/name (already stat'ed into st, not followed; parent is
// dirfd's own stat) is a mount point. Mount ids where the kernel has them,
// mountinfo only on kernels that do not (fail closed).
bool is_mount_point_at(int dirfd, const char* name, const FileStat& st, const FileStat& parent,
                       const std::string& display);

// Detach the mount whose mount point is dirfd/name, never following name.
Error detach_mount_at(int dirfd, const char* name, const std::string& display);

// What is at box/shared (shared_mount.cc); with submounts, also the
// writable mounts below a mount there (mountinfo: diagnostics only).
Error shared_state_at(Dir box, bool submounts, SharedState* out);

// Detach every mount stacked at parent/name (shared_mount.cc); *detached
// counts them. Not a mount, or missing: nothing to do.
Error detach_stack_at(Dir parent, const char* name, uint64_t* detached);

// The path the kernel has for an open fd (/proc/self/fd or F_GETPATH).
Error fd_path(int fd, const std::string& display, std::string* out);

// Open dirfd/name (extra: O_NOFOLLOW, say) to read, only if it is a regular
// file or, with block_ok, a block device; anything else is EINVAL
// not-a-regular-file (a symlink under O_NOFOLLOW is ELOOP), and is never
// opened: opening a device can act (a watchdog arms, a tape rewinds, a
// serial line raises DTR, a FIFO's writer is let go), and the name may come
// from bytes a guest wrote. Linux judges an O_PATH fd and reopens it through
// /proc/self/fd; macOS stats the name, opens it, and requires the same inode.
// *st is the opened file's.
Error open_typed_file(int dirfd, const char* name, int extra, bool block_ok, const std::string& display, Fd* out,
                      FileStat* st);

// open_typed_file's judgement of what a stat found: the one rule both platforms apply.
Error check_typed_file(const FileStat& st, bool nofollow, bool block_ok, const std::string& display);

// Mounts whose mount point is the directory `top` or below it, parents
// first, as paths relative to it ("" for top itself). Reads
// /proc/self/mountinfo (getmntinfo on macOS): gc, diagnostics and the
// classic mount API only, never a hot path.
struct MountBelow {
  uint64_t mount_id;
  std::string rel;
  bool read_only;
};
Error mounts_below(Dir top, std::vector<MountBelow>* out);

// Platform mount primitives (linux/mount.cc; darwin answers ENOTSUP).
// Bind the directory source read-only (submounts included) onto
// target_parent/target_name, propagation slave; nothing stays mounted on error.
Error bind_readonly_at(Dir source, Dir target_parent, const char* target_name, bool force_legacy, BindMethod* used);
// Re-apply read-only to every mount at or below the mount root `root`.
Error reseal_readonly_at(Dir root, bool force_legacy);
// Whether the mount whose root is `root` is read-only (statvfs ST_RDONLY).
Error mount_read_only(Dir root, bool* read_only);

// Remove parent/name and everything below it: never follows a symlink, never
// descends into a mount; a mount met on the way is detached first when
// detach_mounts is set, otherwise (or if it stays) EBUSY, reason
// mount-in-the-way, and nothing below it is touched. Missing: success.
Error remove_tree_at(Dir parent, const std::string& name, bool detach_mounts, RemoveStats* stats);
// The same, for parent/name already open as dir (stat st) and known to be
// no mount point (a directory rename succeeded on it): dir is consumed.
Error remove_open_tree_at(Dir parent, const std::string& name, Fd dir, const FileStat& st, bool detach_mounts,
                          RemoveStats* stats);

// ---------------------------------------------------------------------------
// Parsers of bytes that others write (a guest, a shim, an image, the
// kernel's rendering of names others chose). Each has a fuzz target in
// native/fuzz/.

// The backing file name in the qcow2 header of fd (policy.cc); "" when it is
// not a qcow2 image or names none. A name that cannot be read back whole, or
// holds a NUL, is EINVAL backing-chain.
Error qcow2_backing_name(int fd, const std::string& display, std::string* name);

// Follow the backing chain of disks/image_name (out->image is its
// display path): every backing name read with qcow2_backing_name, relative
// ones against the directory of the file that names them (policy.cc).
void read_backing_chain(Dir disks, const char* image_name, BackingChain* out);

#if defined(__linux__)
// Field 22 (starttime) of a /proc/PID/stat text; "" when it has none
// (linux/process.cc). comm, field 2, is the process's to choose.
std::string start_time_of_stat(const std::string& stat);

// The mounts of a mountinfo text whose mount point is root or below it,
// parents first, with \ooo escapes undone (linux/mount.cc).
void parse_mountinfo(const std::string& text, const std::string& root, std::vector<MountBelow>* out);

// The entries of a getdents64 buffer appended to out, "." and ".." left
// out; false at a record the kernel would never write (linux/stat.cc).
bool parse_dirents(const char* buf, size_t n, std::vector<DirEntry>* out);
#endif

// A box, container or volume id: 1-128 bytes of [A-Za-z0-9_-] (home_ops.cc).
bool is_valid_id(const std::string& name);

// bin/.{name}.blx-{16 hex}: a copy interrupted before its rename (gc.cc).
bool is_partial_copy(const std::string& name);

// A lock file's name as its id: decimal, no leading zero, at most 2^32-1
// (locks.cc).
bool lock_id_of_name(const std::string& name, uint32_t* id);

// The probe behind box_inspect's sockets (socket_probe.cc).
void probe_sockets(Dir box, const std::string& binding_dir, bool link_ok, const std::vector<std::string>& names,
                   std::vector<SocketProbe>* out);

// The leftovers of interrupted publishes in box/boot/ (gc).
Error boot_leftovers(Dir box, std::vector<std::string>* out);

// The home gc works on: it must exist (never created) and every home
// directory that exists must pass the trust checks (gc.cc).
Error open_home_for_gc(const std::string& home, OwnedDir* root);

}  // namespace blx
