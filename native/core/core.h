// boxlite-layout native core: every disk operation of the layout as one
// function, free of Node.
//
// An operation opens the home or box directory once, holds the fds,
// resolves everything beneath them without following symlinks (internal.h),
// performs its whole syscall sequence and returns a result struct, or an
// Error value: errno, the syscall that failed, the paths involved and a
// documented reason. The binding turns that value into a JS object and the
// TypeScript facade builds the LayoutError a person reads. Nothing here
// keeps global state, so the same code runs under the Node binding, the
// native unit tests (ctest) and the benchmarks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace blx {

// Documented reasons, compared by value. A reason used to be a string
// constant in this header, compared by pointer: every translation unit had
// its own copy of the literal unless the linker merged them, which GNU ld
// does and zig's Mach-O linker and AddressSanitizer do not, so macOS took
// wrong branches. reason_name() is the one place a reason becomes text (for
// JS); lib/errors.ts lists the same names and a test keeps them equal.
// kNone means a plain syscall failure: errno and syscall say it all.
enum class Reason : uint8_t {
  kNone = 0,
  kSymlink,  // a symlink where a real dir/file must be
  kNotDirectory,
  kNotRegularFile,  // a FIFO, device, socket or dir
  kHardLinked,      // a file with more than one link
  kTooLarge,        // over the read cap
  kForeignOwner,    // owned by another uid (value: owner)
  kLooseMode,       // writable by group/others (value: mode)
  kWouldBlock,      // internal: retry where waiting is allowed
  kRemovedWhileWaiting,
  kReplacedWhileWaiting,
  kRuntimeLocked,  // value: the holder's pid, or -1
  kNotAllocated,   // a lock id without its file
  kIdsExhausted,
  kMountInTheWay,  // a mount that could not be detached
  kNotPrepared,    // a directory prepare() makes is missing
  kSharedNotEmpty,
  kSharedOccupied,      // a file or foreign symlink at shared/
  kSharedWrongMount,    // a mount that is not mounts/ read-only
  kReadOnlyImpossible,  // no privilege to mount, and no fallback wanted
  kNoReflink,           // clone mode force on a fs without it
  kLinkOccupied,        // a non-symlink at /tmp/bl-{uid}/{id}
  kBoxBusy,             // gc found a box locked: left alone
  kTreeMoved,           // a directory moved during removal
  kBackingChain,        // a qcow2 backing chain that loops or is too deep
  kUnsupported,         // not on this platform
  kCaseCollision,       // the id and another entry differ only in case, on a filesystem that folds it
  kShimAlive,           // cleanup of a box whose shim runs (value: its pid)
};

// The reason as JS sees it ("symlink", "would-block", ...); nullptr for kNone.
// Every enum JS sees has one such function, declared next to it and defined
// in common.cc: a switch over every value with no default, so -Wswitch
// names a value added without a name.
const char* reason_name(Reason r);

struct Error {
  int code = 0;  // errno; 0 means success
  const char* syscall = nullptr;
  Reason reason = Reason::kNone;
  std::string path;
  std::string dest;
  int64_t value = -1;  // what the reason is about: an owner uid, a mode, a pid

  explicit operator bool() const { return code != 0; }
};

// ---------------------------------------------------------------------------
// Addresses

// Where a box lives: `root` is the operator's path, opened as given (the
// kernel resolves it); `boxes` ("boxes", or "" for a box dir given alone) is
// resolved beneath it without symlinks, and so is `id`.
struct BoxRef {
  std::string root;
  std::string boxes;
  std::string id;
};

// A directory holding files such as shim.pid or lock files: `rel` ("" or
// "a/b") is resolved beneath `root` without symlinks, every step checked.
struct DirRef {
  std::string root;
  std::string rel;
};

// The per-user socket link: parent (/tmp/bl-{uid}), its owner, and where the
// link {parent}/{box id} points (the box's real sockets/ dir, as a string).
struct LinkSpec {
  std::string parent;
  uid_t uid = 0;
  std::string target;
};

struct Device {
  uint32_t major = 0;
  uint32_t minor = 0;
};

// ---------------------------------------------------------------------------
// The home (home_ops.cc)

struct HomePrepareResult {
  std::vector<std::string> repaired;  // directories whose loose mode was tightened
  Device tmp, bases, disk_images;
};

// Creates the home, boxes, bases, tmp, images/layers, images/manifests and
// images/disk-images, in that order, with explicit modes (0755; tmp 0700);
// checks each is a real directory owned by us or root and tightens a loose
// mode we own; the result has the devices of tmp, bases and
// images/disk-images, which must be one filesystem (the facade checks).
Error home_prepare(const std::string& home, HomePrepareResult* out);

// Those devices alone, on an existing home.
Error home_devices(const std::string& home, HomePrepareResult* out);

// layers, extracted, disk-images, manifests, configs under root/rel.
Error images_prepare(const DirRef& images, std::vector<std::string>* repaired);

enum class EntryKind { kBox, kTrash, kStray };
const char* entry_kind_name(EntryKind k);  // "box", "trash", "stray"

struct BoxEntry {
  std::string name;
  EntryKind kind;  // kBox: a directory with a valid id; kTrash: .trash-*; kStray: anything else
};

// The entries of the boxes dir (root/rel), sorted by name; none when it is
// missing.
Error list_boxes(const DirRef& boxes, std::vector<BoxEntry>* out);

// ---------------------------------------------------------------------------
// One box (box_ops.cc)

enum class LinkState { kCreated, kKept, kReplaced };
const char* link_state_name(LinkState s);  // "created", "kept", "replaced"

struct LinkResult {
  LinkState state = LinkState::kCreated;
  bool mode_repaired = false;   // /tmp/bl-{uid} had a looser mode, now 0700
  std::string previous_target;  // kReplaced: where the stale link pointed
};

struct BoxPrepareResult {
  LinkResult link;
  std::vector<std::string> repaired;
};

// Under the box lock: the box dir, sockets/, the socket link, tmp/, disks/,
// the mounts dir (mounts/ when isolating, else shared/) and logs/, in that
// order. A box removed by a racing cleanup is made again: the result is
// always a complete box.
Error box_prepare(const BoxRef& ref, bool isolate, const LinkSpec& link, bool may_block, BoxPrepareResult* out);

struct RemoveStats {
  uint64_t entries = 0;    // files, links and directories removed
  uint64_t unmounted = 0;  // mounts detached on the way
};

struct CleanupResult {
  bool removed = false;  // a box dir (or a planted non-directory) was there
  RemoveStats stats;
  bool link_removed = false;
  Error link_error;  // removing the socket link is best effort: reported, never thrown
};

// Under the box lock: remove the socket link, detach shared/, rename the box
// to .trash-{id}-{hex} (a crash leaves trash for gc, never half a box under
// its id), remove it without following symlinks or crossing into a mount.
// With refuse_live_shim, a box whose shim.pid names a live shim (shim_alive)
// is refused, under the lock and before anything is touched: EBUSY,
// reason shim-alive, value the pid.
Error box_cleanup(const BoxRef& ref, const LinkSpec& link, bool refuse_live_shim, bool may_block, CleanupResult* out);

// Under the box lock: ca/ (0700) with key.pem (0600) and cert.pem (0644).
Error box_write_ca(const BoxRef& ref, const std::string& cert, const std::string& key, bool may_block);

// Under the box lock: mounts/containers/{cid}/ with overlayfs/upper,
// overlayfs/work, rootfs and volumes.
Error container_prepare(const BoxRef& ref, const std::string& cid, bool may_block);

// Under the box lock: {mounts dir}/containers/{cid}/exit.json, atomically
// (the directories made beneath the box if missing).
Error container_exit_write(const BoxRef& ref, bool isolate, const std::string& cid, const std::string& json,
                           bool may_block);

// shared/containers/{cid}/exit.json as the guest wrote it (capped read).
Error container_exit_read(const BoxRef& ref, const std::string& cid, std::string* json, bool* present);

// ---------------------------------------------------------------------------
// shared/ (shared_mount.cc)

enum class BindMethod { kNewApi, kLegacy };
enum class MountMethod { kBindRo, kBindRoLegacy, kSymlink };
const char* mount_method_name(MountMethod m);  // "bind-ro", "bind-ro-legacy", "symlink"

struct MountResult {
  MountMethod method = MountMethod::kBindRo;
  bool reused = false;
  Error fallback;  // kSymlink: why no read-only mount was possible
};

// Under the box lock: shared/ shows mounts/ read-only (a bind mount), or,
// where mounting is refused (EPERM/EACCES/ENOTSUP) and !require_read_only,
// becomes a symlink to mounts/ (reported in the result). A correct mount is
// reused and re-sealed read-only; anything else at shared/ is an error.
Error shared_mount(const BoxRef& ref, bool require_read_only, bool force_legacy, bool may_block, MountResult* out);

enum class UnmountOutcome { kUnmounted, kUnlinked, kNone };
const char* unmount_outcome_name(UnmountOutcome o);  // "unmounted", "unlinked", "none"

// Under the box lock: detach shared/ (every stacked mount), or remove the
// symlink fallback.
Error shared_unmount(const BoxRef& ref, bool may_block, UnmountOutcome* out);

enum class SharedKind { kMissing, kDirectory, kSymlink, kMount, kOther };
const char* shared_kind_name(SharedKind k);  // "missing", "directory", ...

struct SharedState {
  SharedKind kind = SharedKind::kMissing;
  bool empty = false;                           // kDirectory: no entries
  std::string link_target;                      // kSymlink
  bool read_only = false;                       // kMount: statvfs ST_RDONLY
  bool shows_mounts = false;                    // kMount: its root is mounts/; kSymlink: points at mounts
  std::vector<std::string> writable_submounts;  // kMount, when asked: from mountinfo
};

// What is at shared/, by mount ids and statvfs; with submounts, also the
// writable mounts below it (reads mountinfo: diagnostics only).
Error shared_inspect(const BoxRef& ref, bool submounts, SharedState* out);

// ---------------------------------------------------------------------------
// Copies (shim_install.cc)

enum class CloneMode { kAuto, kForce, kNever };
enum class CloneMethod { kReflink, kClonefile, kCopyFileRange, kCopy, kSkipped };
const char* clone_method_name(CloneMethod m);  // "reflink", ..., "copy_file_range", ...

struct CloneResult {
  std::string name;
  CloneMethod method = CloneMethod::kCopy;
  uint64_t bytes = 0;
};

// Copy src to dst (operator paths): FICLONE/clonefile, copy_file_range,
// read/write as `mode` allows, to an O_EXCL temporary beside dst, given
// src's mode (less group/other write) and mtime, renamed into place. Only
// regular sources.
Error clone_file(const std::string& src, const std::string& dst, CloneMode mode, CloneResult* out);

// ---------------------------------------------------------------------------
// Single-file volumes (volumes.cc)

struct StagedVolume {
  std::string rel;      // user-volumes/uservol{index}/{name}, relative to the guest share
  bool linked = false;  // a hard link of the source (read-write); else a copy
  CloneMethod method = CloneMethod::kCopy;
  uint64_t bytes = 0;
};

// Under the box lock: the regular file src (an absolute operator path whose
// last component is opened O_NOFOLLOW | O_NONBLOCK; anything but a regular
// file refused) as user-volumes/uservol{index}/{basename} of the host-
// writable side of the guest share (mounts/ when isolating, else shared/),
// which must exist (not-prepared). Read-write: a hard link of the opened
// file (EXDEV across filesystems); read-only: a copy (reflink where the
// filesystem can) with the source's mode, fsynced. Either is made as
// {name}.staging-tmp and renamed over the entry; the directory is fsynced.
Error box_stage_volume_file(const BoxRef& ref, bool isolate, const std::string& src, uint32_t index, bool read_only,
                            bool may_block, StagedVolume* out);

// Under the box lock: the shim and every regular sibling named libkrunfw.*
// into bin/ (made without following a symlink), each skipped when bin/
// already has it with the same size, mtime and mode.
Error shim_install(const BoxRef& ref, const std::string& shim, CloneMode mode, bool may_block,
                   std::vector<CloneResult>* out);

// ---------------------------------------------------------------------------
// Boot generations (boot.cc): boot/current.json naming boot/generations/{gen}

// Where a publish copies from: operator paths (followed, regular files
// only; initramfs "" for none), or with legacy the box's own flat
// boot/kernel and boot/initramfs (if present), read beneath the box.
struct BootSources {
  std::string kernel;
  std::string initramfs;
  bool legacy = false;
};

struct BootStaged {
  CloneMethod method = CloneMethod::kCopy;
  uint64_t bytes = 0;
  std::string sha256;  // "sha256:" + 64 lowercase hex, of the staged copy
};

struct BootPublishResult {
  std::string boot_dir;
  std::string generation;
  std::string manifest;  // the bytes written to current.json
  BootStaged kernel, initramfs;
  bool has_initramfs = false;
  std::vector<std::string> pruned;             // older generations removed
  std::vector<std::string> legacy_removed;     // "kernel", "initramfs"
  std::vector<std::string> leftovers_removed;  // of interrupted publishes
  Error prune_error;                           // tidying after the switch: reported, never thrown
};

// Under the box lock: remove leftovers of interrupted publishes; copy the
// sources (cloned where possible, fsynced, hashed) into
// boot/.staging-{gen}/; fsync it; rename it to boot/generations/{gen};
// fsync both dirs; write current.json (BoxLite's bytes) through
// .current.json-{gen}.staging, fsynced, renamed, boot/ fsynced; then prune
// every other generation directory and the legacy flat files. Any failure
// before the switch removes what this call made. format is BoxLite's
// kebab-case token, checked by the facade.
Error boot_publish(const BoxRef& ref, const BootSources& src, const std::string& format, bool may_block,
                   BootPublishResult* out);

struct BootRead {
  bool present = false;          // current.json exists
  std::string manifest;          // its bytes (capped)
  std::string generation;        // the name it gives, "" when none valid (manifest_generation)
  std::string kernel_sha256;     // of generations/{gen}/kernel, as it is now
  std::string initramfs_sha256;  // of generations/{gen}/initramfs, when has_initramfs
  bool has_initramfs = false;
  std::vector<std::string> legacy;  // without a manifest: the flat files present
};

// current.json and the checksums of the files it names, read without the
// lock, beneath the box, no symlink followed (the facade compares).
Error boot_read(const BoxRef& ref, BootRead* out);

// Whether name is 1-64 bytes of [A-Za-z0-9_-] (a generation BoxLite accepts).
bool is_generation_name(const std::string& name);

// The value of the single "generation" key of a manifest's text, when it
// is a valid name; "" otherwise (none, repeated, not a string, bad name).
std::string manifest_generation(const std::string& text);

// ---------------------------------------------------------------------------
// Sockets (sockets.cc)

// link.parent is a real directory owned by link.uid, mode 0700 (looser
// modes repaired), and {parent}/{name} is a symlink to link.target.
Error socket_link_ensure(const LinkSpec& link, const std::string& name, LinkResult* out);

// Remove {parent}/{name} if it is a symlink to link.target.
Error socket_link_remove(const LinkSpec& link, const std::string& name, bool* removed);

// Every dangling symlink directly in link.parent; unlinked unless report_only.
Error socket_links_sweep(const LinkSpec& link, bool report_only, std::vector<std::string>* names);

// ---------------------------------------------------------------------------
// Locks (locks.cc). Every fd returned is O_CLOEXEC and the caller's.

// {home}/.lock: O_NOFOLLOW, a regular file with one link owned by us,
// flocked without waiting (EBUSY, reason runtime-locked, value the holder's
// pid), then our pid written through the fd. The home must exist.
Error runtime_lock(const std::string& home, int* fd);

// Take over a runtime lock a parent process holds and passed down as fd
// (boxlite-layout lock): *adopted is true when fd is an open file
// description of this home's .lock (same inode) that holds its flock; it is
// then made O_CLOEXEC. false (no error) when fd is not this home's .lock.
// EBUSY runtime-locked when it is, but another process holds the lock.
Error runtime_lock_adopt(const std::string& home, int fd, bool* adopted);

// The smallest free lock id, its file created O_EXCL in dir (made if missing).
Error lock_allocate(const DirRef& dir, uint32_t* id);

// Open lock id's file (O_NOFOLLOW, a regular file) and flock it; *acquired is
// false when !wait and another holder has it. When waiting is needed and
// !may_block: would-block. After the wait the file must still be id's
// (ENOENT removed-while-waiting, ESTALE replaced-while-waiting).
Error lock_acquire(const DirRef& dir, uint32_t id, bool wait, bool may_block, int* fd, bool* acquired);

// Unlink lock id's file (a waiter that then wins finds it gone). Idempotent.
Error lock_free(const DirRef& dir, uint32_t id);

// ---------------------------------------------------------------------------
// Records: pid file, exit records, any small file of a box (records.cc)

// A regular file's contents, at most cap bytes (FIFOs and devices are
// refused, never waited on). *present false when absent.
Error file_read(const DirRef& dir, const std::string& name, size_t cap, std::string* out, bool* present);

Error file_write(const DirRef& dir, const std::string& name, const std::string& data, mode_t mode);

// rename dir/from -> dir/to; *renamed false when from is absent.
Error file_rename(const DirRef& dir, const std::string& from, const std::string& to, bool* renamed);

// unlink dir/name (never a directory); *removed false when absent.
Error file_remove(const DirRef& dir, const std::string& name, bool* removed);

struct ProcessFacts {
  bool alive = false;      // kill(pid, 0) finds it (or EPERM: it exists)
  std::string start_time;  // field 22 of /proc/PID/stat; "" when unknown
};

// The start time and liveness of pid.
void process_facts(int64_t pid, ProcessFacts* out);

struct PidRead {
  bool present = false;
  std::string text;  // capped
  int64_t pid = -1;  // line 1 when it is a decimal pid
  ProcessFacts process;
};

// shim.pid read without blocking and with a cap, plus the facts about the
// pid on its first line (the facade parses and judges).
Error pid_read(const DirRef& dir, const std::string& name, PidRead* out);

// Whether a pid file read names a live shim, judged as the facade's
// judgeIdentity() judges it: verified (alive, same start time) or legacy
// (alive, no fingerprint recorded, or none to compare on macOS). A file
// that does not parse names no shim.
bool shim_alive(const PidRead& read);

// Write "pid\n[start time]\n[capability lines]" atomically; *start_time is
// what was recorded ("" when unknown).
Error pid_write(const DirRef& dir, const std::string& name, int64_t pid, const std::vector<std::string>& caps,
                std::string* start_time);

// ---------------------------------------------------------------------------
// Inspection and gc (gc.cc)

struct BinFile {
  std::string name;
  uint64_t bytes = 0;
  uint32_t mode = 0;
  int shares_extents = -1;  // 1 reflinked, 0 not, -1 cannot tell
};

struct LinkInfo {
  enum class State { kOk, kMissing, kForeign, kNotALink } state = State::kMissing;
  std::string target;
};
const char* link_info_state_name(LinkInfo::State s);  // "ok", "missing", "foreign", "not-a-link"

// A socket of the box: missing, a socket something listens on (or a bound
// datagram socket), a socket nobody accepts on (stale), or something else
// (a symlink included, which is never followed).
enum class SocketState { kMissing, kListening, kRefused, kNotSocket };
const char* socket_state_name(SocketState s);  // "missing", "listening", "refused", "not-a-socket"
struct SocketProbe {
  std::string name;
  SocketState state = SocketState::kMissing;
};

struct BoxInspection {
  bool isolates = false;  // mounts/ exists
  SharedState shared;
  LinkInfo link;
  std::vector<BinFile> bin;
  PidRead pid;
  Error pid_error;  // the pid file could not be read (a FIFO, too large…)
  std::string exit_text, exit_previous_text;
  bool exit_present = false, exit_previous_present = false;
  Error exit_error, exit_previous_error;
  std::vector<SocketProbe> sockets;  // one per name asked about
};

// Everything about one box, read without waiting on anything; each of
// socket_names in sockets/ probed with a non-blocking connect (Linux: to the
// socket inode opened O_PATH | O_NOFOLLOW beneath the box; elsewhere through
// the binding link, when it is this box's own).
Error box_inspect(const BoxRef& ref, const LinkSpec& link, const std::vector<std::string>& socket_names,
                  BoxInspection* out);

struct GcBox {
  std::string name;
  EntryKind kind;
  PidRead pid;                              // kBox
  Error pid_error;                          // kBox: unreadable pid file (the box counts as live)
  std::vector<std::string> partial_copies;  // kBox: bin/.{name}.blx-{16 hex}
  std::vector<std::string> boot_leftovers;  // kBox: boot/.staging-{gen}, boot/.current.json-{gen}.staging
  bool locked = false;                      // kBox: its box lock was held at the scan
  int64_t changed_sec = 0;                  // kBox: mtime of the box dir (entries made or removed)
};

struct GcMount {
  std::string owner;  // the boxes entry the mount is in
  std::string rel;    // relative to the boxes dir
  uint64_t mount_id;
};

struct GcScan {
  std::vector<GcBox> boxes;
  std::vector<GcMount> mounts;           // parents first
  std::vector<std::string> tmp_entries;  // {home}/tmp
  std::vector<std::string> dangling_links;
  Error links_error;  // /tmp/bl-{uid} could not be read
};

// What gc needs to decide, in one pass, changing nothing. The home must
// exist and pass the trust checks (never created, never repaired).
Error gc_scan(const std::string& home, const LinkSpec& link, GcScan* out);

struct GcUnmount {
  std::string rel;
  bool detached = false;
  Error error;
};

// Detach the listed mounts of one boxes entry, each reached beneath the
// boxes dir without symlinks and checked against its mount id first. The
// entry (a box, or a trash dir a cleanup may still hold) is try-locked
// first: busy is EBUSY, reason box-busy.
Error gc_unmount(const std::string& home, const std::string& owner, const std::vector<GcMount>& mounts,
                 std::vector<GcUnmount>* out);

// remove_tree of dir/name (dir resolved beneath the home without symlinks).
// Inside boxes/, the box or trash dir it belongs to is try-locked first
// (EBUSY box-busy); an entry already gone is nothing to remove.
Error gc_remove(const std::string& home, const std::string& rel_dir, const std::string& name, RemoveStats* out);

// ---------------------------------------------------------------------------
// What BoxLite's jailer would grant (policy.cc)

enum class PathKind { kMissing, kDirectory, kFile, kSymlink, kOther };
const char* path_kind_name(PathKind k);  // "missing", "directory", "file", "symlink", "other"

struct PolicyEntry {
  std::string rel;  // relative to the box dir
  PathKind kind;
  std::string link_target;  // kSymlink
};

struct FileInode {
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t ino = 0;
};

struct BackingChain {
  std::string image;               // the image's path
  std::vector<std::string> files;  // its backing files, nearest first, as named
  std::vector<std::string> real;   // where each one is, by the kernel's path of the opened fd
  std::vector<bool> block;         // each one is a block device (a disk backed by a device node)
  std::vector<FileInode> inodes;   // which file each one is (what storage gc matches on)
  Error error;                     // a loop, too deep a chain, an unreadable file
};

struct HostPath {
  std::string path;
  PathKind kind = PathKind::kMissing;  // not followed
  bool exists = false;                 // followed
  bool is_dir = false;                 // followed
  std::string link_target;             // kSymlink
  std::string real;                    // a directory's path as the kernel names it (symlinks resolved)
};

struct PolicyFacts {
  std::vector<PolicyEntry> entries;  // the per-box paths a jailer may grant, as they are now
  std::vector<BackingChain> chains;  // one per qcow2 image that is a regular file
  std::vector<HostPath> hosts;       // the host paths asked about
  std::vector<std::string> roots;    // each backing root as the kernel names it (as given if it cannot be opened)
  // With canonical: (path, macos_canonical(path)) for every box entry, host
  // path, backing file and backing file's directory.
  std::vector<std::pair<std::string, std::string>> canonical;
};

// The box's grantable paths (never followed: a symlink is reported as one)
// and the backing chains of disks/disk.qcow2 and disks/guest-rootfs.qcow2,
// read from their qcow2 headers (images opened beneath the box, O_NOFOLLOW |
// O_NONBLOCK; backing names resolved against the image's directory). A loop
// (ELOOP) or more than 16 levels (EINVAL) is a chain's error, reason
// backing-chain, dest the chain so far. A backing file is a regular file or
// a block device (read, never written). hosts are host paths (the socket
// link, system CA stores, volumes) whose kind and existence are wanted too,
// and for a directory its canonical path.
// With canonical, each path's macOS canonical form too (macos_canonical).
Error box_policy_facts(const BoxRef& ref, const std::vector<std::string>& hosts, const std::vector<std::string>& roots,
                       bool canonical, PolicyFacts* out);

// ---------------------------------------------------------------------------
// Orphaned storage (storage_gc.cc)

struct StorageFile {
  std::string dir;   // "bases" or "images/disk-images"
  std::string name;  // its entry
  bool regular = false;
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  FileInode inode;
  bool referenced = false;  // some backing chain (a box's, or a stored file's) names this file
  Error error;              // could not be read: its own chain is unknown
};

struct StorageChainProblem {
  std::string image;  // the image whose chain could not be read to its end
  Error error;
};

struct StorageScan {
  std::vector<StorageFile> files;             // sorted by dir, then name
  std::vector<StorageChainProblem> problems;  // chains read only in part
  std::vector<std::string> tmp_leftovers;     // {home}/tmp/storage-gc-*: a removal interrupted
  uint64_t images_read = 0;                   // box images whose chains were read
};

// Every stored file (bases/*.qcow2, bases/*.ext4, images/disk-images/*)
// with whether a backing chain names it: the chains of every boxes/*/disks/
// *.qcow2 (every entry of boxes/, trash too) and of every stored file
// (base-to-base ancestry), each read as box_policy_facts reads them and
// matched by inode. Nothing is followed beneath the home; changes nothing.
Error storage_scan(const std::string& home, StorageScan* out);

// Rename dir/name (dir "bases" or "images/disk-images") into tmp/ as
// storage-gc-{random}, then unlink it there: a crash in between leaves it
// only in tmp/. Only when it is still the regular file `inode` (*removed
// false otherwise: it changed since the scan). tmp_leftover: remove
// tmp/{name} (a storage-gc-* leftover) instead.
Error storage_remove(const std::string& home, const std::string& dir, const std::string& name, const FileInode& inode,
                     bool tmp_leftover, bool* removed);

// ---------------------------------------------------------------------------
// Around a shim's start (jail.cc)

struct ShimPrepareResult {
  LinkResult link;
  bool rotated = false;  // exit was renamed to exit.previous
  int stderr_fd = -1;    // shim.stderr opened for appending; the caller's (O_CLOEXEC)
};

// Under the box lock, in BoxLite's order, before the policy is computed:
// sockets/ and the socket link; exit renamed to exit.previous and a new
// empty exit; logs/ and logs/console.log (created if missing, never
// truncated); shim.stderr opened O_APPEND. Files are created 0644 beneath
// the box, never through a symlink, and must be regular files.
Error shim_prepare(const BoxRef& ref, const LinkSpec& link, bool may_block, ShimPrepareResult* out);

// A host path as macOS's sandbox names it: the nearest existing ancestor
// (lstat) resolved by realpath(3), except that a symlink there keeps its own
// name and only its parent is resolved; the missing tail re-appended. On
// any failure the part is kept as given.
std::string macos_canonical(const std::string& path);

// The per-user cache directory sandbox-exec's DARWIN_USER_CACHE_DIR names
// (confstr on macOS); "" elsewhere or when the system gives none.
std::string darwin_user_cache_dir();

// ---------------------------------------------------------------------------
// Disk usage (usage.cc)

// Bytes of a set of files. shared, exclusive and physical come from the
// extent map; where it cannot be read (DiskUsage::extents_known false) they
// are the allocated bytes and mean nothing.
struct UsageBytes {
  uint64_t files = 0;      // entries counted (directories and symlinks too)
  uint64_t apparent = 0;   // st_size
  uint64_t allocated = 0;  // st_blocks * 512
  uint64_t shared = 0;     // in extents FIEMAP flags shared (reflinked, deduplicated)
  uint64_t exclusive = 0;  // allocated - shared
  uint64_t physical = 0;   // exclusive + the shared ranges met here first in the home
};

struct DiskUsage {
  bool extents_known = true;  // FIEMAP answered for every regular file with blocks
  UsageBytes total;
  std::vector<std::pair<std::string, UsageBytes>> areas;  // "bases", "boxes", "images/layers", ..., "other"
  std::vector<std::pair<std::string, UsageBytes>> boxes;  // by entry name of boxes/
  uint64_t hard_links_skipped = 0;                        // further names of a file already counted
  uint64_t mounts_skipped = 0;                            // mount points met and not entered
  uint64_t special_skipped = 0;                           // FIFOs, devices, sockets: counted by stat, never opened
  uint64_t fs_size_bytes = 0;                             // statvfs of the home
  uint64_t fs_used_bytes = 0;
};

// Where a scan is, for a progress display: written by the scanning thread
// (relaxed atomic stores), read by anyone. Optional.
struct UsageProgress {
  uint64_t* files = nullptr;
  uint64_t* bytes = nullptr;  // allocated so far
};

// Walk the home beneath its fd, in byte order of names: never follows a
// symlink, never enters a mount, opens only regular files (O_NOFOLLOW |
// O_NONBLOCK, checked after opening) and reads their extent maps. A shared
// physical range is counted in the physical bytes of the first file the walk
// meets it in. Memory: the open path (a bounded number of fds), one
// directory listing per level, the shared ranges seen (merged) and the
// inodes with more than one link.
Error disk_usage(const std::string& home, const UsageProgress& progress, DiskUsage* out);

// ---------------------------------------------------------------------------
// Filesystem facts (fsfacts.cc, per platform)

struct FsFacts {
  Device dev;
  uint64_t mount_id = 0;  // statx STATX_MNT_ID; 0 when the kernel has none
  bool mount_id_known = false;
  int64_t fs_magic = 0;  // statfs f_type
  std::string fs_name;   // "ext4", "xfs", ...; "unknown(0x...)" when unnamed
  bool read_only = false;
  bool nosuid = false;
  bool nodev = false;
  bool noexec = false;
  bool is_mount_root = false;
};

Error probe(const std::string& path, FsFacts* out);

// st_dev of each path, in one call.
Error same_filesystem(const std::vector<std::string>& paths, std::vector<Device>* devices);

// Whether the file's data shares extents with another file (a reflink),
// from FIEMAP: 1 shared, 0 not shared, -1 the filesystem cannot say.
Error extents_shared(const std::string& path, int* out);

// Whether the new mount API (open_tree/mount_setattr/move_mount) exists here.
bool new_mount_api_available();

}  // namespace blx
