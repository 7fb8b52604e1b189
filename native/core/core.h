// boxlite-layout native core: the syscalls behind the layout, free of Node.
//
// Every operation returns an Error value (errno + the syscall that failed +
// the paths involved) instead of throwing; the binding turns it into a JS
// object and TypeScript builds the user-facing LayoutError from it. Nothing
// here allocates global state, so the same code runs under the Node binding,
// the native unit tests and the benchmarks.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace blx {

struct Error {
  int code = 0;                 // errno; 0 means success
  const char* syscall = nullptr;
  std::string path;
  std::string dest;
  // Machine-readable reason when errno alone does not say what was wrong
  // (e.g. "owner=0" for a squatted /tmp/bl-{uid}).
  std::string detail;

  explicit operator bool() const { return code != 0; }
};

Error fail(int code, const char* syscall, std::string path = {}, std::string dest = {});
// fail() with the current errno.
Error fail_errno(const char* syscall, std::string path = {}, std::string dest = {});

// ---------------------------------------------------------------------------
// Filesystem facts (SPEC §5)

struct FsFacts {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t ino = 0;
  uint64_t mount_id = 0;        // statx STATX_MNT_ID; 0 when the kernel has none
  bool mount_id_known = false;
  int64_t fs_magic = 0;         // statfs f_type (Linux) or 0 (macOS)
  std::string fs_name;          // "ext4", "xfs", ...; "unknown(0x...)" when unnamed
  bool read_only = false;
  bool nosuid = false;
  bool nodev = false;
  bool noexec = false;
  bool is_mount_root = false;
};

Error probe(const std::string& path, FsFacts* out);

struct SameFilesystem {
  bool same = true;
  // Index of the first path whose device differs from path[0]; -1 when same.
  int odd_index = -1;
  std::vector<uint32_t> dev_major;
  std::vector<uint32_t> dev_minor;
};

Error same_filesystem(const std::vector<std::string>& paths, SameFilesystem* out);

// Whether the file's data shares extents with another file (a reflink),
// from FIEMAP: 1 shared, 0 not shared, -1 the filesystem cannot say.
Error extents_shared(const std::string& path, int* out);

// ---------------------------------------------------------------------------
// Directories

// create_dir_all() for each path, in order. An existing non-directory is
// ENOTDIR; an existing directory (or a symlink to one) is fine.
Error make_dirs(const std::vector<std::string>& paths, mode_t mode);

// ---------------------------------------------------------------------------
// Mounts (SPEC §2)

enum class BindMethod { kNewApi, kLegacy };

// Bind `source` read-only (recursively, submounts included) onto `target`,
// propagation slave. The new mount API is used unless it is missing (ENOSYS)
// or force_legacy is set. On any failure nothing stays mounted at target.
Error bind_readonly(const std::string& source, const std::string& target,
                    bool force_legacy, BindMethod* used);

// Re-apply read-only to an existing mount tree at target (submounts that
// arrived later through slave propagation come in writable).
Error reseal_readonly(const std::string& target, bool force_legacy);

// Lazily detach the mount at target without following a final symlink.
// *was_mounted is false (and no error) when target is not a mount point.
Error unmount(const std::string& target, bool* was_mounted);

enum class SharedKind { kMissing, kDirectory, kSymlink, kMount, kOther };

struct SharedState {
  SharedKind kind = SharedKind::kMissing;
  bool empty = false;            // kDirectory: no entries
  std::string link_target;       // kSymlink
  bool read_only = false;        // kMount: statvfs ST_RDONLY
  bool shows_source = false;     // kMount: root is the source directory
};

// What occupies `target` (the box's shared/) relative to `source` (mounts/),
// decided with statx mount ids and statvfs flags, never mountinfo.
Error inspect_shared(const std::string& source, const std::string& target, SharedState* out);

struct MountEntry {
  uint64_t mount_id;
  std::string mount_point;
  std::string fs_type;
  bool read_only;  // the per-mount "ro" option
};

// Mounts whose mount point is `prefix` or below it, deepest first. Reads
// /proc/self/mountinfo: for gc and diagnostics only, never the hot path.
Error mounts_under(const std::string& prefix, std::vector<MountEntry>* out);

// Detach the mount with id mount_id at root/rel (as mountinfo listed it),
// reaching it component by component without following symlinks and
// checking the id first, so a path swapped since the listing is left alone.
Error unmount_beneath(const std::string& root, const std::string& rel, uint64_t mount_id, bool* detached);

// Whether the new mount API (open_tree/mount_setattr/move_mount) exists here.
bool new_mount_api_available();

// ---------------------------------------------------------------------------
// Safe removal (SPEC §2 cleanup)

struct RemoveStats {
  uint64_t entries = 0;      // files, links and directories removed
  uint64_t unmounted = 0;    // mounts detached on the way
};

// Remove parent/name and everything below it: never follows a symlink,
// never descends into a mount. A mount met on the way is detached first when
// detach_mounts is set; a mount that stays (or any mount when not detaching)
// fails with EBUSY and nothing below it is touched. Missing name: success.
Error remove_tree(const std::string& parent, const std::string& name,
                  bool detach_mounts, RemoveStats* stats);

// ---------------------------------------------------------------------------
// File cloning (SPEC §3)

enum class CloneMode { kAuto, kForce, kNever };
enum class CloneMethod { kReflink, kClonefile, kCopyFileRange, kCopy, kSkipped };

struct CloneJob {
  std::string src;
  std::string dst;
  CloneMode mode = CloneMode::kAuto;
  bool skip_unchanged = false;   // skip when dst has src's size and mtime
  // results
  CloneMethod method = CloneMethod::kCopy;
  uint64_t bytes = 0;
};

// Copy src to dst atomically: written under a temporary name in dst's
// directory, given src's mode and mtime, renamed into place. On failure the
// temporary file is gone and an existing dst is untouched.
Error clone_file(CloneJob* job);

// A batch: stops at the first failure; *done is the index of the failed job
// (or jobs->size()). Shares one destination dir fd between same-dir jobs.
Error clone_files(std::vector<CloneJob>* jobs, size_t* done);


// ---------------------------------------------------------------------------
// Socket binding links (SPEC §4)

enum class LinkState { kCreated, kKept, kReplaced };

// Ensure `dir` (e.g. /tmp/bl-1000) is a real directory owned by `uid`, mode
// 0700 (looser modes are repaired), and that dir/name is a symlink to target.
struct LinkResult {
  LinkState state = LinkState::kCreated;
  bool mode_repaired = false;     // dir had a looser mode and is now 0700
  std::string previous_target;    // kReplaced: what the link pointed at
};

Error socket_link_ensure(const std::string& dir, uid_t uid, const std::string& name,
                         const std::string& target, LinkResult* out);

// Remove dir/name if it is a symlink to target. *removed tells whether it did.
Error socket_link_remove(const std::string& dir, const std::string& name,
                         const std::string& target, bool* removed);

// Unlink every dangling symlink directly inside dir (which must pass the same
// ownership checks as socket_link_ensure); names go to *removed.
Error sweep_dangling_links(const std::string& dir, uid_t uid, std::vector<std::string>* removed);

// ---------------------------------------------------------------------------
// Locks (SPEC §6)

// flock() on an fd. Non-blocking unless wait is set; *acquired is false when
// another holder has it (EWOULDBLOCK is an answer, not an error).
Error lock_fd(int fd, bool exclusive, bool wait, bool* acquired);
Error unlock_fd(int fd);

// Open dir (never through a symlink) and flock it exclusively, in one call.
// *fd is the open dir either way; *acquired is false when !wait and another
// holder has it (wait for it elsewhere, then check_lock_identity). On error
// no fd is left open.
Error lock_dir(const std::string& dir, bool wait, int* fd, bool* acquired);

// After a lock was acquired: is fd still the file or dir named path? ENOENT
// with detail "removed" (gone, or unlinked) or "replaced" (another inode
// under the name now).
Error check_lock_identity(int fd, const std::string& path);

}  // namespace blx
