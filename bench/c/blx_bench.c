// Raw C peers for `npm run bench`. Two kinds, never mixed up in the report:
//
// "same syscalls": a replay, call for call, of what boxlite-layout's native
// core makes for each public operation, in its order, with its flags (the
// home and box opened and owner/mode-checked, the O_NOFOLLOW walk beneath
// held directory fds, openat2 RESOLVE_BENEATH for mounts/, the box flock and
// its identity check, atomic installs, the checked removal walk). Derived
// from an strace of bench/trace/lifecycle.mjs (the public API through
// dist/); `npm run bench` re-checks it on every run by tracing both and
// comparing them step by step (bench/lib/syscalls.ts). When the library's
// syscalls change, this file must follow.
//
// "unsafe floor": the least a careless C program could do for the same
// result (no lock, no checks, paths instead of fds, files written in place,
// rm -rf). Not a peer: a floor, labelled as such.
//
// "BoxLite replay": the calls BoxLite 0.9.6's own Rust layout makes to
// prepare a box and clean it up (no mount), as Rust's std and glibc make
// them: create_dir_all is one mkdir (mode 0777) per directory, the socket
// link's parent a mkdir 0700 that meets EEXIST and an lstat, an lstat of
// the link, symlink; cleanup an exists() stat, remove_dir_all's lstat, then
// per directory openat(O_NOFOLLOW|O_DIRECTORY) + fdopendir (fstat, F_GETFL,
// F_SETFD) + readdir (getdents64 until empty) + closedir + unlinkat, then
// the link unlinked. getuid wherever the binding path is computed. That is
// what strace shows for the same steps compiled with rustc 1.95 on glibc
// 2.36, call for call; the bench counts the replay's syscalls with strace -c
// every run, checks them against that pattern, and shows them next to the
// package's.
//
// Each subcommand times its own loop (CLOCK_MONOTONIC) and prints one JSON
// line: {"n":N,"ns":total[,"user":ns,"sys":ns,"steps":{...}]}.
//
//   lifecycle-same HOME SHIMDIR LINKDIR UID N PREFIX   box prepare + link, mountShared,
//                                        installShim (3 files), cleanup: same syscalls
//   lifecycle-floor HOME SHIMDIR LINKDIR N PREFIX      the same result, unsafe floor
//   boxlite-replay HOME LINKDIR N PREFIX  prepare + cleanup without a mount, as BoxLite's
//                                        Rust layout makes them (shared/ made in place of mounts/)
//   pc-breakdown HOME LINKDIR UID N ROUNDS PREFIX  the replay and pc-same in turn, ROUNDS times N
//                                        boxes each, every call's time added to its part of the work
//                                        (TIMED); prints the parts per side
//   shared-same HOME ID N                mountShared (shared/ an empty dir) + unmountShared
//   bindro SRC DST N                     unsafe floor: open_tree/mount_setattr/move_mount + umount2
//   shim-same HOME ID SHIMDIR N          installShim into an existing box (bin/ removed between
//                                        rounds, untimed), same syscalls
//   clone SRCDIR DSTDIR N ficlone|cfr    unsafe floor: FICLONE (or copy_file_range) loop, in place
//   samefs A B C N                       statx x3 as sameFilesystem() makes them
//   sock PATH N                          socket/bind/listen/unlink/epoll_ctl/close, as listenUnix+close
//   mountmany SRC DIR N | unmountmany DIR N
//   trace HOME SHIMDIR LINKDIR UID SOCKBOX [EXT4HOME EXT4SHIMDIR]
//                                        the steps of bench/trace/lifecycle.mjs, with markers
//   spawn ROUNDS CMDFILE ERRDIR          whole-process timing: the commands of CMDFILE (one a line,
//                                        arguments separated by tabs) run in turn, ROUNDS times
//                                        (interleaved), fork/exec/wait4, no shell; the stderr of
//                                        command K appended to ERRDIR/K.err
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

// The statx mask the core asks for everywhere.
#define SXM (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_MTIME | STATX_INO | STATX_SIZE | STATX_BLOCKS | STATX_MNT_ID)
#define DIR_FLAGS (O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_DIRECTORY)

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void cpu_ns(uint64_t *user, uint64_t *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
  *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "blx_bench: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

// ---- where a box's time goes (pc-breakdown only) --------------------------
//
// TIMED(part, call) makes the call and, in pc-breakdown, adds its time to the
// named part of the work. Off, it is the call alone; on, it adds two
// clock_gettime (the vDSO: no syscall, so a trace of any mode is unchanged).
// Parts are looked up by their text (strcmp): the same words at two call
// sites are one part, whatever the linker made of the literals.

#define PART_MAX 32
struct part {
  const char *name;
  uint64_t ns;
};
static struct part g_parts[PART_MAX];
static int g_nparts, g_timing;

static void part_add(const char *name, uint64_t ns) {
  for (int i = 0; i < g_nparts; i++) {
    if (strcmp(g_parts[i].name, name) == 0) {
      g_parts[i].ns += ns;
      return;
    }
  }
  if (g_nparts == PART_MAX) die("too many parts at", name);
  g_parts[g_nparts++] = (struct part){name, ns};
}

#define TIMED(part, call)                             \
  __extension__({                                     \
    uint64_t timed_t0_ = g_timing ? now_ns() : 0;     \
    __typeof__(call) timed_r_ = (call);               \
    if (g_timing) part_add(part, now_ns() - timed_t0_); \
    timed_r_;                                         \
  })

// The parts. Both implementations: what a box is.
#define P_MKDIR "mkdir: the box and its five directories"
#define P_RMDIR "rmdir: the five directories and the box"
#define P_LINK "the socket link: symlink, later unlink"
#define P_LINKDIR "/tmp/bl-{uid}: made sure of, or opened, to reach the link"
// This package's checks.
#define P_HOME "the home and boxes/: opened beneath, owner and mode checked (each call)"
#define P_LOCK "the box lock: open, flock, the locked dir still the box (statx fd + name)"
#define P_MODE "each new directory's mode (a statx after its mkdirat)"
#define P_SHIM "a live shim? (shim.pid, opened without following)"
#define P_LINKCHECK "the link ours? (readlinkat before the unlink)"
#define P_MOUNT "a mount on shared/? (statx)"
#define P_TRASH "the rename to .trash-* (a crash leaves no half box)"
#define P_READ "the box read once (getdents64)"
#define P_CLOSE "closes of the call's fds"
// BoxLite's std calls.
#define P_EXISTS "exists() / lstat of the box and the link (statx)"
#define P_WALK "remove_dir_all: openat + fdopendir + readdir + closedir per directory"
#define P_UID "getuid (the binding path)"

// A marker in the strace (trace mode only): the statx Node's fs.statSync makes.
static int g_marks;
static void mark(const char *name) {
  if (!g_marks) return;
  char p[128];
  struct statx st;
  snprintf(p, sizeof p, "/blx-mark-%s", name);
  statx(AT_FDCWD, p, AT_STATX_SYNC_AS_STAT, STATX_ALL, &st);
}

// ---- the core's building blocks, as the strace shows them ----------------

static void sx_fd(const char *part, int fd, struct statx *st) {
  if (TIMED(part, statx(fd, "", AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, SXM, st)) != 0) die("statx", "fd");
}

// A home directory must be ours (or root's) and not group/other-writable;
// root's and tight needs no geteuid.
static void check_owned(const struct statx *st, const char *what) {
  if (st->stx_uid == 0 && (st->stx_mode & 022) == 0) return;
  if ((st->stx_uid != geteuid() && st->stx_uid != 0) || (st->stx_mode & 022) != 0) {
    errno = EPERM;
    die("untrusted", what);
  }
}

struct boxfds {
  int home, boxes, box;
};

// The home opened as given (made first only when the open fails and
// boxPrepare asks), boxes/ beneath it (O_NOFOLLOW, from the home fd), each checked.
static void open_home(const char *home, int make, struct boxfds *b) {
  b->home = TIMED(P_HOME, open(home, O_RDONLY | O_CLOEXEC | O_DIRECTORY));
  if (b->home < 0 && make) {
    if (mkdir(home, 0755) != 0 && errno != EEXIST) die("mkdir", home);
    b->home = open(home, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
  }
  if (b->home < 0) die("open", home);
  struct statx st;
  sx_fd(P_HOME, b->home, &st);
  check_owned(&st, home);
  b->boxes = TIMED(P_HOME, openat(b->home, "boxes", DIR_FLAGS));
  if (b->boxes < 0) die("openat", "boxes");
  sx_fd(P_HOME, b->boxes, &st);
  check_owned(&st, "boxes");
}

// The box dir (made first by boxPrepare), flocked, checked to be still the
// entry of that name once the lock is held, and trust-checked from the
// stat the lock took (one made now only gets its mode fixed, if the umask
// changed it).
static struct statx g_held;
static void open_box(const char *id, int make, struct boxfds *b) {
  if (make && TIMED(P_MKDIR, mkdirat(b->boxes, id, 0755)) != 0) die("mkdirat", id);
  b->box = TIMED(P_LOCK, openat(b->boxes, id, DIR_FLAGS));
  if (b->box < 0) die("openat", id);
  struct statx named;
  if (TIMED(P_LOCK, flock(b->box, LOCK_EX)) != 0) die("flock", id);
  sx_fd(P_LOCK, b->box, &g_held);
  if (TIMED(P_LOCK, statx(b->boxes, id, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, SXM, &named)) != 0) die("statx", id);
  if (g_held.stx_ino != named.stx_ino || g_held.stx_dev_minor != named.stx_dev_minor) {
    errno = ESTALE;
    die("replaced", id);
  }
  if (make) {
    if ((g_held.stx_mode & 07777) != 0755 && fchmod(b->box, 0755) != 0) die("fchmod", id);
  } else {
    check_owned(&g_held, id);
  }
}

static void close_home(struct boxfds *b) {
  (void)TIMED(P_CLOSE, close(b->boxes));
  (void)TIMED(P_CLOSE, close(b->home));
}

static void close_box(struct boxfds *b) {
  (void)TIMED(P_CLOSE, close(b->box));
  close_home(b);
}

// A box subdirectory, 0755 whatever the umask. keep (make_dir_beneath):
// mkdirat, open, statx of the fd, fchmod only if the umask trimmed the mode;
// returns the fd. Else (make_leaf_dir): mkdirat and a statx of the name; the
// open and fchmod only if the umask trimmed it.
static int make_dir(int parent, const char *name, int keep) {
  if (TIMED(P_MKDIR, mkdirat(parent, name, 0755)) != 0) die("mkdirat", name);
  struct statx st;
  if (!keep) {
    if (TIMED(P_MODE, statx(parent, name, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, SXM, &st)) != 0) die("statx", name);
    if ((st.stx_mode & 07777) == 0755) return -1;
  }
  int fd = openat(parent, name, DIR_FLAGS);
  if (fd < 0) die("openat", name);
  sx_fd(P_MODE, fd, &st);
  if ((st.stx_mode & 07777) != 0755 && fchmod(fd, 0755) != 0) die("fchmod", name);
  if (keep) return fd;
  close(fd);
  return -1;
}

// socketLinkEnsure: /tmp/bl-{uid} made 0700 if missing, opened without
// following, checked (and given to uid when root made it), the link made in it.
static void link_ensure(const char *linkdir, unsigned uid, const char *target, const char *id) {
  int ld = TIMED(P_LINKDIR, open(linkdir, DIR_FLAGS));
  if (ld < 0) {
    if (mkdir(linkdir, 0700) != 0 && errno != EEXIST) die("mkdir", linkdir);
    ld = open(linkdir, DIR_FLAGS);
  }
  if (ld < 0) die("open", linkdir);
  struct statx st;
  sx_fd(P_LINKDIR, ld, &st);
  if (st.stx_uid != uid) {
    if (geteuid() != 0 || fchown(ld, uid, (gid_t)-1) != 0) die("fchown", linkdir);
  }
  if ((st.stx_mode & 077) != 0) die("mode", linkdir);
  if (TIMED(P_LINK, symlinkat(target, ld, id)) != 0) die("symlinkat", id);
  (void)TIMED(P_LINKDIR, close(ld));
}

static void random_hex(char *out, size_t n_hex) {
  unsigned char r[8];
  if (getrandom(r, sizeof r, 0) != sizeof r) die("getrandom", NULL);
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n_hex; i++) out[i] = hex[(r[i / 2] >> (i % 2 ? 0 : 4)) & 15];
  out[n_hex] = '\0';
}

// getdents64 into buf until the end; calls fn for each entry but . and ..
static void each_entry(int fd, void (*fn)(void *, const char *, unsigned char), void *arg) {
  char buf[16384];
  for (;;) {
    long n = TIMED(P_READ, syscall(SYS_getdents64, fd, buf, sizeof buf));
    if (n < 0) die("getdents64", NULL);
    if (n == 0) return;
    for (long off = 0; off < n;) {
      struct {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      } *d = (void *)(buf + off);
      off += d->reclen;
      if (strcmp(d->name, ".") == 0 || strcmp(d->name, "..") == 0) continue;
      fn(arg, d->name, d->type);
    }
  }
}

struct names {
  int count;
  char name[64][256];
  unsigned char type[64];
};

static void collect(void *arg, const char *name, unsigned char type) {
  struct names *n = arg;
  if (n->count == 64) return;
  snprintf(n->name[n->count], 256, "%s", name);
  n->type[n->count++] = type;
}

// The removal walk: for each entry in directory order, rmdir a directory
// outright, and when it is not empty enter it (openat O_NOFOLLOW + statx, the
// mount check) and empty it first; unlink anything else. The dir's own fd is
// closed before its rmdir.
static int remove_open_tree(int parent, const char *name, int fd);
static int remove_tree(int parent, const char *name) {
  int fd = openat(parent, name, DIR_FLAGS);
  if (fd < 0) die("openat", name);
  struct statx st;
  sx_fd(P_READ, fd, &st);
  return remove_open_tree(parent, name, fd);
}

// The same walk from a directory already open (the renamed box, whose fd
// the cleanup holds).
static int remove_open_tree(int parent, const char *name, int fd) {
  struct names *n = malloc(sizeof *n);
  n->count = 0;
  each_entry(fd, collect, n);
  int removed = 0;
  for (int k = 0; k < n->count; k++) {
    if (n->type[k] == DT_DIR) {
      if (TIMED(P_RMDIR, unlinkat(fd, n->name[k], AT_REMOVEDIR)) == 0) {
        removed++;
        continue;
      }
      if (errno != ENOTEMPTY) die("rmdir", n->name[k]);
      removed += remove_tree(fd, n->name[k]);
    } else {
      if (unlinkat(fd, n->name[k], 0) != 0) die("unlinkat", n->name[k]);
      removed++;
    }
  }
  free(n);
  (void)TIMED(P_CLOSE, close(fd));
  if (TIMED(P_RMDIR, unlinkat(parent, name, AT_REMOVEDIR)) != 0) die("rmdir", name);
  return removed + 1;
}

// ---- the public operations, each as the core makes it ---------------------

struct ctx {
  const char *home, *shimdir, *linkdir;
  unsigned uid;
};

// boxPrepare (isolateMounts): box, sockets/, the link, tmp/ disks/ mounts/ logs/.
static void op_box_prepare(const struct ctx *c, const char *id, int isolate) {
  struct boxfds b;
  open_home(c->home, 1, &b);
  open_box(id, 1, &b);
  make_dir(b.box, "sockets", 0);
  char target[4096];
  snprintf(target, sizeof target, "%s/boxes/%s/sockets", c->home, id);
  link_ensure(c->linkdir, c->uid, target, id);
  make_dir(b.box, "tmp", 0);
  make_dir(b.box, "disks", 0);
  make_dir(b.box, isolate ? "mounts" : "shared", 0);
  make_dir(b.box, "logs", 0);
  close_box(&b);
}

static void discard(void *arg, const char *name, unsigned char type) {
  (void)arg;
  (void)name;
  (void)type;
}

// sharedMount: mounts/ opened with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS,
// shared/ made (or found an empty dir on the box's mount), then the new
// mount API: open_tree clone, read-only, moved onto shared/, made a slave.
static void op_shared_mount(const struct ctx *c, const char *id) {
  struct boxfds b;
  open_home(c->home, 0, &b);
  open_box(id, 0, &b);
  struct open_how how = {
      .flags = O_RDONLY | O_NOCTTY | O_CLOEXEC | O_DIRECTORY,
      .resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH,
  };
  int mounts = (int)syscall(SYS_openat2, b.box, "mounts", &how, sizeof how);
  if (mounts < 0) die("openat2", "mounts");
  struct statx st;
  if (statx(b.box, "shared", AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, SXM, &st) == 0) {
    struct statx box;
    sx_fd(P_MOUNT, b.box, &box);
    if (st.stx_mnt_id != box.stx_mnt_id) die("already mounted", "shared");
    int sh = openat(b.box, "shared", DIR_FLAGS);
    if (sh < 0) die("openat", "shared");
    each_entry(sh, discard, NULL);
    close(sh);
  } else if (errno == ENOENT) {
    make_dir(b.box, "shared", 0);
  } else {
    die("statx", "shared");
  }
  int tree = (int)syscall(SYS_open_tree, mounts, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0) die("open_tree", "mounts");
  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof ro) != 0) die("mount_setattr", "ro");
  if (syscall(SYS_move_mount, tree, "", b.box, "shared", MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount", "shared");
  struct mount_attr slave = {.propagation = MS_SLAVE};
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) != 0) die("mount_setattr", "slave");
  close(tree);
  close(mounts);
  close_box(&b);
}

// Detach every mount stacked on shared/ (through the box fd), looking before each try: a statx of shared/
// (missing, a symlink, or not a mount root: nothing mounted), then umount2.
static int detach_shared(int box) {
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d/shared", box);
  int n = 0;
  for (;;) {
    struct statx st;
    if (TIMED(P_MOUNT, statx(box, "shared", AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, SXM, &st)) != 0) {
      if (errno == ENOENT) return n;
      die("statx", "shared");
    }
    if (S_ISLNK(st.stx_mode) || !(st.stx_attributes & STATX_ATTR_MOUNT_ROOT)) return n;
    if (umount2(p, MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      if (errno == EINVAL || errno == ENOENT) return n;
      die("umount2", p);
    }
    n++;
  }
}

static void op_shared_unmount(const struct ctx *c, const char *id) {
  struct boxfds b;
  open_home(c->home, 0, &b);
  open_box(id, 0, &b);
  if (detach_shared(b.box) != 1) die("not mounted", "shared");
  close_box(&b);
}

struct source {
  char name[256];
  int fd;
  struct statx st;
};

struct sources {
  int count;
  struct source s[64];
  int dir;
};

static void open_source(struct sources *set, const char *name) {
  struct source *s = &set->s[set->count++];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->fd = openat(set->dir, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (s->fd < 0) die("openat", name);
  sx_fd(P_CLOSE, s->fd, &s->st);
  if (!S_ISREG(s->st.stx_mode)) die("not regular", name);
}

static int by_name(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

// shimInstall: the shim and its libkrunfw.* siblings opened and checked
// first, then under the box lock bin/ made, and each file installed
// atomically: a look at the destination, a temp name (one getrandom per
// batch), FICLONE (else copy_file_range), fchmod, futimens, renameat.
static int op_shim_install(const struct ctx *c, const char *id) {
  static struct sources set;
  set.count = 0;
  set.dir = open(c->shimdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (set.dir < 0) die("open", c->shimdir);
  open_source(&set, "boxlite-shim");
  static struct names all, libs;
  all.count = libs.count = 0;
  each_entry(set.dir, collect, &all);
  for (int k = 0; k < all.count; k++) {
    if (strncmp(all.name[k], "libkrunfw.", 10) == 0) collect(&libs, all.name[k], all.type[k]);
  }
  qsort(libs.name, (size_t)libs.count, sizeof libs.name[0], by_name);
  for (int k = 0; k < libs.count; k++) open_source(&set, libs.name[k]);

  struct boxfds b;
  open_home(c->home, 0, &b);
  open_box(id, 0, &b);
  int bin = make_dir(b.box, "bin", 1);
  char stem[17] = "";
  for (int k = 0; k < set.count; k++) {
    struct source *s = &set.s[k];
    struct statx d;
    if (statx(bin, s->name, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, SXM, &d) == 0 || errno != ENOENT) die("exists", s->name);
    if (stem[0] == '\0') random_hex(stem, 12);
    char tmp[512];
    snprintf(tmp, sizeof tmp, ".%s.blx-%s%04x", s->name, stem, k);
    int out = openat(bin, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) die("openat", tmp);
    if (ioctl(out, FICLONE, s->fd) != 0) {
      // No reflink here (ext4): copy_file_range from offset 0 to the size seen.
      if (errno != EXDEV && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOTTY && errno != ENOSYS) die("FICLONE", tmp);
      loff_t in = 0, at = 0;
      while ((uint64_t)in < s->st.stx_size) {
        ssize_t n = copy_file_range(s->fd, &in, out, &at, s->st.stx_size - (uint64_t)in, 0);
        if (n < 0) die("copy_file_range", tmp);
        if (n == 0) break;
      }
    }
    if (fchmod(out, s->st.stx_mode & 07777 & ~022u) != 0) die("fchmod", tmp);
    struct timespec times[2] = {{0, UTIME_OMIT}, {s->st.stx_mtime.tv_sec, s->st.stx_mtime.tv_nsec}};
    if (futimens(out, times) != 0) die("futimens", tmp);
    if (renameat(bin, tmp, bin, s->name) != 0) die("renameat", s->name);
    close(out);
  }
  close(bin);
  close_box(&b);
  for (int k = 0; k < set.count; k++) close(set.s[k].fd);
  close(set.dir);
  return set.count;
}

// boxCleanup: under the box lock, the socket link (read, then unlinked),
// every mount on shared/ detached, the box renamed to .trash-{id}-{inode}
// and removed by the checked walk through the box fd it holds.
static void op_box_cleanup(const struct ctx *c, const char *id) {
  struct boxfds b;
  open_home(c->home, 0, &b);
  open_box(id, 0, &b);
  // A live shim refuses the cleanup: its pid file read under the lock (none here).
  int pid = TIMED(P_SHIM, openat(b.box, "shim.pid", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (pid >= 0 || errno != ENOENT) die("shim.pid", id);
  int ld = TIMED(P_LINKDIR, open(c->linkdir, DIR_FLAGS));
  if (ld < 0) die("open", c->linkdir);
  char target[4096];
  if (TIMED(P_LINKCHECK, readlinkat(ld, id, target, sizeof target)) < 0) die("readlinkat", id);
  if (TIMED(P_LINK, unlinkat(ld, id, 0)) != 0) die("unlinkat", id);
  (void)TIMED(P_LINKDIR, close(ld));
  detach_shared(b.box);
  char trash[300];
  snprintf(trash, sizeof trash, ".trash-%s-%llx", id, (unsigned long long)g_held.stx_ino);
  if (TIMED(P_TRASH, renameat(b.boxes, id, b.boxes, trash)) != 0) die("renameat", id);
  remove_open_tree(b.boxes, trash, b.box);
  close_home(&b);
}

static int op_same_fs(const char *const paths[3]) {
  struct statx sx[3];
  for (int k = 0; k < 3; k++) {
    if (statx(AT_FDCWD, paths[k], AT_STATX_SYNC_AS_STAT, SXM, &sx[k]) != 0) die("statx", paths[k]);
  }
  return sx[0].stx_dev_major == sx[1].stx_dev_major && sx[0].stx_dev_minor == sx[1].stx_dev_minor &&
         sx[0].stx_dev_major == sx[2].stx_dev_major && sx[0].stx_dev_minor == sx[2].stx_dev_minor;
}

// listenUnix + close, as Node makes it: a non-blocking socket bound through
// the link, listen(511); on close libuv unlinks the path, drops the fd from
// its epoll set (never added: closed before the loop polled) and closes it.
static void op_sock(int ep, const struct sockaddr_un *addr) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket", NULL);
  if (bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) die("bind", addr->sun_path);
  if (listen(fd, 511) != 0) die("listen", addr->sun_path);
  if (unlink(addr->sun_path) != 0) die("unlink", addr->sun_path);
  struct epoll_event ev = {0};
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, &ev);
  close(fd);
}

// ---- timed loops ----------------------------------------------------------

struct step_times {
  uint64_t start, user0, sys0, step[4];
};

static void times_begin(struct step_times *t) {
  memset(t, 0, sizeof *t);
  cpu_ns(&t->user0, &t->sys0);
  t->start = now_ns();
}

// One lifecycle's four step boundaries added to the running totals.
static void times_add(struct step_times *t, uint64_t t0, uint64_t t1, uint64_t t2, uint64_t t3, uint64_t t4) {
  t->step[0] += t1 - t0;
  t->step[1] += t2 - t1;
  t->step[2] += t3 - t2;
  t->step[3] += t4 - t3;
}

static void times_print(const struct step_times *t, int n) {
  uint64_t end = now_ns(), user, sys;
  cpu_ns(&user, &sys);
  printf("{\"n\":%d,\"ns\":%llu,\"user\":%llu,\"sys\":%llu,\"steps\":{\"prepare\":%llu,\"mount\":%llu,\"shim\":%llu,\"cleanup\":%llu}}\n",
         n, (unsigned long long)(end - t->start), (unsigned long long)(user - t->user0), (unsigned long long)(sys - t->sys0),
         (unsigned long long)t->step[0], (unsigned long long)t->step[1], (unsigned long long)t->step[2],
         (unsigned long long)t->step[3]);
}

// n boxes through this package's calls as raw C. The lifecycle: prepare
// (isolating), mountShared, installShim, cleanup. Without it (pc-same):
// prepare (no isolation) and cleanup alone, the kernel's share of the gap
// to the BoxLite replay.
static int boxes_same(const struct ctx *c, int n, const char *prefix, int lifecycle) {
  char id[64];
  struct step_times t;
  times_begin(&t);
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "%s%06d", prefix, i);
    uint64_t t0 = now_ns();
    op_box_prepare(c, id, lifecycle);
    uint64_t t1 = now_ns();
    if (lifecycle) op_shared_mount(c, id);
    uint64_t t2 = now_ns();
    if (lifecycle) op_shim_install(c, id);
    uint64_t t3 = now_ns();
    op_box_cleanup(c, id);
    uint64_t t4 = now_ns();
    times_add(&t, t0, t1, t2, t3, t4);
  }
  times_print(&t, n);
  return 0;
}

// ---- the unsafe floor -----------------------------------------------------

static void mkdir_ok(const char *p) {
  if (mkdir(p, 0777) != 0 && errno != EEXIST) die("mkdir", p);
}

static void bind_ro_path(const char *src, const char *dst) {
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) die("open_tree", src);
  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof ro) != 0) die("mount_setattr", src);
  if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount", dst);
  struct mount_attr slave = {.propagation = MS_SLAVE};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) != 0) die("mount_setattr", dst);
  close(fd);
}

static void clone_in_place(const char *src, const char *dst, int ficlone) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) die("open", src);
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (out < 0) die("open", dst);
  if (ficlone) {
    if (ioctl(out, FICLONE, in) != 0) die("FICLONE", dst);
  } else {
    struct stat st;
    fstat(in, &st);
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
      if (n <= 0) die("copy_file_range", dst);
      left -= n;
    }
  }
  close(in);
  close(out);
}

static void rm_rf_at(int dirfd, const char *name) {
  if (unlinkat(dirfd, name, 0) == 0) return;
  if (errno != EISDIR && errno != EPERM) die("unlinkat", name);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die("openat", name);
  DIR *d = fdopendir(fd);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    rm_rf_at(fd, e->d_name);
  }
  closedir(d);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0) die("rmdir", name);
}

static const char *SHIM_FILES[] = {"boxlite-shim", "libkrunfw.so.5", "libkrunfw.so.5.1.0"};

static int lifecycle_floor(const struct ctx *c, int n, const char *prefix) {
  char p[4096], q[4096], box[4096];
  struct step_times t;
  times_begin(&t);
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    snprintf(box, sizeof box, "%s/boxes/%s%06d", c->home, prefix, i);
    mkdir_ok(box);
    static const char *dirs[] = {"sockets", NULL, "tmp", "disks", "mounts", "logs"};
    for (int k = 0; k < 6; k++) {
      if (dirs[k] == NULL) {  // the socket link, right after sockets/
        snprintf(p, sizeof p, "%s/sockets", box);
        snprintf(q, sizeof q, "%s/%s%06d", c->linkdir, prefix, i);
        if (symlink(p, q) != 0) die("symlink", q);
        continue;
      }
      snprintf(p, sizeof p, "%s/%s", box, dirs[k]);
      mkdir_ok(p);
    }
    uint64_t t1 = now_ns();
    snprintf(p, sizeof p, "%s/mounts", box);
    snprintf(q, sizeof q, "%s/shared", box);
    mkdir_ok(q);
    bind_ro_path(p, q);
    uint64_t t2 = now_ns();
    snprintf(p, sizeof p, "%s/bin", box);
    mkdir_ok(p);
    for (int k = 0; k < 3; k++) {
      snprintf(p, sizeof p, "%s/%s", c->shimdir, SHIM_FILES[k]);
      snprintf(q, sizeof q, "%s/bin/%s", box, SHIM_FILES[k]);
      clone_in_place(p, q, 1);
    }
    uint64_t t3 = now_ns();
    snprintf(q, sizeof q, "%s/shared", box);
    if (umount2(q, MNT_DETACH) != 0) die("umount2", q);
    snprintf(p, sizeof p, "%s/boxes", c->home);
    int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(q, sizeof q, "%s%06d", prefix, i);
    rm_rf_at(dfd, q);
    close(dfd);
    snprintf(q, sizeof q, "%s/%s%06d", c->linkdir, prefix, i);
    if (unlink(q) != 0) die("unlink", q);
    uint64_t t4 = now_ns();
    times_add(&t, t0, t1, t2, t3, t4);
  }
  times_print(&t, n);
  return 0;
}

// ---- BoxLite's own layout, replayed ---------------------------------------

#define RUST_STATX_MASK STATX_ALL

// std::fs::create_dir_all of a path whose parent exists: mkdir; on EEXIST, is_dir() (a statx).
static void rust_create_dir_all(const char *p) {
  if (TIMED(P_MKDIR, mkdir(p, 0777)) == 0) return;
  struct statx st;
  if (errno != EEXIST || TIMED(P_EXISTS, statx(AT_FDCWD, p, AT_STATX_SYNC_AS_STAT, RUST_STATX_MASK, &st)) != 0 || !S_ISDIR(st.stx_mode)) {
    die("mkdir", p);
  }
}

// std::fs::remove_dir_all's walk: openat(parent, name, O_NOFOLLOW|O_DIRECTORY), fdopendir, readdir to the end
// (entering directories by d_type, unlinking the rest), closedir, then unlinkat(AT_REMOVEDIR).
static void rust_remove_dir_all_recursive(int parent, const char *name) {
  int fd = TIMED(P_WALK, openat(parent, name, O_CLOEXEC | O_RDONLY | O_NOFOLLOW | O_DIRECTORY));
  if (fd < 0) die("openat", name);
  DIR *d = TIMED(P_WALK, fdopendir(fd));
  if (d == NULL) die("fdopendir", name);
  struct dirent *e;
  while ((e = TIMED(P_WALK, readdir(d))) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
      rust_remove_dir_all_recursive(fd, e->d_name);
    } else if (unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT) {
      die("unlinkat", e->d_name);
    }
  }
  (void)TIMED(P_WALK, closedir(d));
  if (TIMED(P_RMDIR, unlinkat(parent, name, AT_REMOVEDIR)) != 0 && errno != ENOENT) die("rmdir", name);
}

static void rust_box_prepare(const char *box, const char *linkdir, const char *id) {
  char p[4096], link[4096];
  rust_create_dir_all(box);
  snprintf(p, sizeof p, "%s/sockets", box);
  rust_create_dir_all(p);
  // The socket link: BoxSockets::ensure (binding path from getuid; parent mkdir 0700, lstat when it exists;
  // the link looked at, then made).
  (void)TIMED(P_UID, getuid());
  struct statx st;
  if (TIMED(P_LINKDIR, mkdir(linkdir, 0700)) != 0) {
    if (errno != EEXIST) die("mkdir", linkdir);
    if (TIMED(P_LINKDIR, statx(AT_FDCWD, linkdir, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, RUST_STATX_MASK, &st)) != 0 ||
        !S_ISDIR(st.stx_mode)) {
      die("lstat", linkdir);
    }
  }
  snprintf(link, sizeof link, "%s/%s", linkdir, id);
  if (TIMED(P_EXISTS, statx(AT_FDCWD, link, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, RUST_STATX_MASK, &st)) == 0 || errno != ENOENT) {
    die("exists", link);
  }
  if (TIMED(P_LINK, symlink(p, link)) != 0) die("symlink", link);
  // tmp/, disks/, then mounts_dir() (shared/ without mount isolation), logs/.
  static const char *const dirs[] = {"tmp", "disks", "shared", "logs"};
  for (int k = 0; k < 4; k++) {
    snprintf(p, sizeof p, "%s/%s", box, dirs[k]);
    rust_create_dir_all(p);
  }
}

static void rust_box_cleanup(const char *box, const char *linkdir, const char *id) {
  struct statx st;
  if (TIMED(P_EXISTS, statx(AT_FDCWD, box, AT_STATX_SYNC_AS_STAT, RUST_STATX_MASK, &st)) == 0) {  // box_dir.exists()
    if (TIMED(P_EXISTS, statx(AT_FDCWD, box, AT_STATX_SYNC_AS_STAT | AT_SYMLINK_NOFOLLOW, RUST_STATX_MASK, &st)) != 0) die("lstat", box);
    if (S_ISLNK(st.stx_mode)) {
      if (unlink(box) != 0) die("unlink", box);
    } else {
      rust_remove_dir_all_recursive(AT_FDCWD, box);
    }
  }
  char link[4096];
  (void)TIMED(P_UID, getuid());
  snprintf(link, sizeof link, "%s/%s", linkdir, id);
  if (TIMED(P_LINK, unlink(link)) != 0 && errno != ENOENT) die("unlink", link);
}

static int boxlite_replay(const char *home, const char *linkdir, int n, const char *prefix) {
  char box[4096], id[64];
  struct step_times t;
  times_begin(&t);
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "%s%06d", prefix, i);
    snprintf(box, sizeof box, "%s/boxes/%s", home, id);
    uint64_t t0 = now_ns();
    rust_box_prepare(box, linkdir, id);
    uint64_t t1 = now_ns();
    rust_box_cleanup(box, linkdir, id);
    uint64_t t2 = now_ns();
    times_add(&t, t0, t1, t1, t1, t2);
  }
  times_print(&t, n);
  return 0;
}

// Where a box's time goes: rounds of n boxes, the BoxLite replay and this
// package's calls (pc-same) in turn, every call timed into its part. Prints
// {"n":boxes per side,"replay":{"ns":wall,"parts":{part:ns,...}},"same":{...}}.
static int pc_breakdown(const struct ctx *c, int n, int rounds, const char *prefix) {
  static struct part parts[2][PART_MAX];
  int nparts[2] = {0, 0};
  uint64_t wall[2] = {0, 0};
  char id[64], box[4096];
  g_timing = 1;
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < 2; k++) {
      int side = (r + k) % 2;  // 0 the replay, 1 this package's calls; each goes first every other round
      memcpy(g_parts, parts[side], sizeof g_parts);
      g_nparts = nparts[side];
      uint64_t t0 = now_ns();
      for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%02d%c%05d", prefix, r, side ? 's' : 'r', i);
        if (side == 0) {
          snprintf(box, sizeof box, "%s/boxes/%s", c->home, id);
          rust_box_prepare(box, c->linkdir, id);
          rust_box_cleanup(box, c->linkdir, id);
        } else {
          op_box_prepare(c, id, 0);
          op_box_cleanup(c, id);
        }
      }
      wall[side] += now_ns() - t0;
      memcpy(parts[side], g_parts, sizeof g_parts);
      nparts[side] = g_nparts;
    }
  }
  g_timing = 0;
  printf("{\"n\":%d", n * rounds);
  for (int side = 0; side < 2; side++) {
    printf(",\"%s\":{\"ns\":%llu,\"parts\":{", side ? "same" : "replay", (unsigned long long)wall[side]);
    for (int i = 0; i < nparts[side]; i++) {
      printf("%s\"%s\":%llu", i ? "," : "", parts[side][i].name, (unsigned long long)parts[side][i].ns);
    }
    printf("}}");
  }
  printf("}\n");
  return 0;
}

// ---- single workloads -----------------------------------------------------

// A loop timed whole: wall time and the process's CPU split over it.
struct loop_timer {
  uint64_t start, user0, sys0;
};

static void loop_begin(struct loop_timer *t) {
  cpu_ns(&t->user0, &t->sys0);
  t->start = now_ns();
}

static void loop_print(const struct loop_timer *t, int n) {
  uint64_t end = now_ns(), user, sys;
  cpu_ns(&user, &sys);
  printf("{\"n\":%d,\"ns\":%llu,\"user\":%llu,\"sys\":%llu}\n", n, (unsigned long long)(end - t->start),
         (unsigned long long)(user - t->user0), (unsigned long long)(sys - t->sys0));
}

static int shared_same(const struct ctx *c, const char *id, int n) {
  struct loop_timer t;
  loop_begin(&t);
  for (int i = 0; i < n; i++) {
    op_shared_mount(c, id);
    op_shared_unmount(c, id);
  }
  loop_print(&t, n);
  return 0;
}

static int bindro(const char *src, const char *dst, int n) {
  struct loop_timer t;
  loop_begin(&t);
  for (int i = 0; i < n; i++) {
    bind_ro_path(src, dst);
    if (umount2(dst, MNT_DETACH) != 0) die("umount2", dst);
  }
  loop_print(&t, n);
  return 0;
}

// bin/ emptied and removed between rounds, untimed (installShim then makes it again).
static void drop_bin(const struct ctx *c, const char *id) {
  char p[4096];
  snprintf(p, sizeof p, "%s/boxes/%s", c->home, id);
  int box = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (box < 0) die("open", p);
  rm_rf_at(box, "bin");
  close(box);
}

static int shim_same(const struct ctx *c, const char *id, int n) {
  uint64_t total = 0;
  int files = 0;
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    files = op_shim_install(c, id);
    total += now_ns() - t0;
    drop_bin(c, id);
  }
  printf("{\"n\":%d,\"ns\":%llu,\"files\":%d}\n", n, (unsigned long long)total, files);
  return 0;
}

static int clone_floor(const char *srcdir, const char *dstdir, int n, int ficlone) {
  char names[64][256];
  int count = 0;
  DIR *d = opendir(srcdir);
  if (!d) die("opendir", srcdir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL && count < 64) {
    if (e->d_name[0] == '.') continue;
    snprintf(names[count++], 256, "%s", e->d_name);
  }
  closedir(d);
  char p[4096], q[4096];
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    for (int k = 0; k < count; k++) {
      snprintf(p, sizeof p, "%s/%s", srcdir, names[k]);
      snprintf(q, sizeof q, "%s/%s", dstdir, names[k]);
      clone_in_place(p, q, ficlone);
    }
    total += now_ns() - t0;
    for (int k = 0; k < count; k++) {  // untimed: start every round from empty
      snprintf(q, sizeof q, "%s/%s", dstdir, names[k]);
      unlink(q);
    }
  }
  printf("{\"n\":%d,\"ns\":%llu,\"files\":%d}\n", n, (unsigned long long)total, count);
  return 0;
}

static int samefs(const char *a, const char *b, const char *c, int n) {
  const char *const paths[3] = {a, b, c};
  int same = 0;
  struct loop_timer t;
  loop_begin(&t);
  for (int i = 0; i < n; i++) same += op_same_fs(paths);
  loop_print(&t, n);
  if (same != n) die("not one filesystem", a);
  return 0;
}

static void sock_addr(struct sockaddr_un *addr, const char *path) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr->sun_path) {
    errno = ENAMETOOLONG;
    die("sun_path", path);
  }
  snprintf(addr->sun_path, sizeof addr->sun_path, "%s", path);
}

static int sock(const char *path, int n) {
  struct sockaddr_un addr;
  sock_addr(&addr, path);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct loop_timer t;
  loop_begin(&t);
  for (int i = 0; i < n; i++) op_sock(ep, &addr);
  loop_print(&t, n);
  close(ep);
  return 0;
}

static int mountmany(const char *src, const char *dir, int n) {
  char p[4096];
  for (int i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/m%06d", dir, i);
    mkdir_ok(p);
    bind_ro_path(src, p);
  }
  printf("{\"n\":%d}\n", n);
  return 0;
}

static int unmountmany(const char *dir, int n) {
  char p[4096];
  int done = 0;
  for (int i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/m%06d", dir, i);
    if (umount2(p, MNT_DETACH) == 0) done++;
    rmdir(p);
  }
  printf("{\"n\":%d}\n", done);
  return 0;
}

// The workload of bench/trace/lifecycle.mjs, step for step, with its markers.
static int trace(const struct ctx *c, const char *sockbox, const struct ctx *ext4) {
  g_marks = 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);  // libuv's, made long before
  const char *ids[2] = {"tracebox0001", "tracebox0002"};
  for (int i = 0; i < 2; i++) {
    const char *sfx = i == 0 ? "warm" : "box";
    char m[64];
#define STEP(name, call)                      \
  snprintf(m, sizeof m, "%s-%s", sfx, name); \
  mark(m);                                    \
  call
    STEP("prepare", op_box_prepare(c, ids[i], 1));
    STEP("mount", op_shared_mount(c, ids[i]));
    STEP("shim", op_shim_install(c, ids[i]));
    STEP("unmount", op_shared_unmount(c, ids[i]));
    STEP("remount", op_shared_mount(c, ids[i]));
    STEP("cleanup", op_box_cleanup(c, ids[i]));
#undef STEP
  }
  char a[4096], b[4096], d[4096];
  snprintf(a, sizeof a, "%s/tmp", c->home);
  snprintf(b, sizeof b, "%s/bases", c->home);
  snprintf(d, sizeof d, "%s/images/disk-images", c->home);
  const char *const paths[3] = {a, b, d};
  char sp[4096];
  snprintf(sp, sizeof sp, "%s/%s/ready.sock", c->linkdir, sockbox);
  struct sockaddr_un addr;
  sock_addr(&addr, sp);
  mark("samefs");
  op_same_fs(paths);
  mark("sockbox");
  op_box_prepare(c, sockbox, 0);
  mark("sock-warm");
  op_sock(ep, &addr);
  mark("sock");
  op_sock(ep, &addr);
  if (ext4 != NULL) {
    mark("ext4-prepare");
    op_box_prepare(ext4, "tracebox0004", 0);
    mark("ext4-shim");
    op_shim_install(ext4, "tracebox0004");
    mark("ext4-cleanup");
    op_box_cleanup(ext4, "tracebox0004");
  }
  mark("end");
  close(ep);
  op_box_cleanup(c, sockbox);
  return 0;
}

// ---- whole-process timing -------------------------------------------------

struct command {
  char *argv[64];
  int argc;
};

static int spawn_rounds(int rounds, const char *file, const char *errdir) {
  FILE *f = fopen(file, "r");
  if (!f) die("open", file);
  struct command cmds[32];
  int ncmd = 0;
  static char lines[32][8192];
  while (ncmd < 32 && fgets(lines[ncmd], sizeof lines[ncmd], f)) {
    char *line = lines[ncmd];
    line[strcspn(line, "\n")] = '\0';
    if (*line == '\0') continue;
    struct command *c = &cmds[ncmd++];
    c->argc = 0;
    for (char *tok = strtok(line, "\t"); tok && c->argc < 63; tok = strtok(NULL, "\t")) c->argv[c->argc++] = tok;
    c->argv[c->argc] = NULL;
  }
  fclose(f);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  uint64_t(*wall)[1024] = calloc((size_t)ncmd, sizeof *wall);
  uint64_t(*user)[1024] = calloc((size_t)ncmd, sizeof *user);
  uint64_t(*sys)[1024] = calloc((size_t)ncmd, sizeof *sys);
  long(*rss)[1024] = calloc((size_t)ncmd, sizeof *rss);
  int failed[32] = {0};
  if (rounds > 1024) rounds = 1024;
  for (int r = 0; r < rounds; r++) {
    for (int k = 0; k < ncmd; k++) {
      uint64_t t0 = now_ns();
      pid_t pid = fork();
      if (pid < 0) die("fork", NULL);
      if (pid == 0) {
        char errfile[4096];
        snprintf(errfile, sizeof errfile, "%s/%d.err", errdir, k);
        int err = open(errfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(err >= 0 ? err : devnull, 2);
        execvp(cmds[k].argv[0], cmds[k].argv);
        _exit(127);
      }
      int status;
      struct rusage ru;
      if (wait4(pid, &status, 0, &ru) != pid) die("wait4", NULL);
      wall[k][r] = now_ns() - t0;
      user[k][r] = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
      sys[k][r] = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
      rss[k][r] = ru.ru_maxrss;
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed[k]++;
    }
  }
  printf("[");
  for (int k = 0; k < ncmd; k++) {
    printf("%s{\"failed\":%d,\"wall\":[", k ? "," : "", failed[k]);
    for (int r = 0; r < rounds; r++) printf("%s%llu", r ? "," : "", (unsigned long long)wall[k][r]);
    printf("],\"user\":[");
    for (int r = 0; r < rounds; r++) printf("%s%llu", r ? "," : "", (unsigned long long)user[k][r]);
    printf("],\"sys\":[");
    for (int r = 0; r < rounds; r++) printf("%s%llu", r ? "," : "", (unsigned long long)sys[k][r]);
    printf("],\"maxRssKb\":[");
    for (int r = 0; r < rounds; r++) printf("%s%ld", r ? "," : "", rss[k][r]);
    printf("]}");
  }
  printf("]\n");
  return 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (argc >= 8 && strcmp(cmd, "lifecycle-same") == 0) {
    struct ctx c = {argv[2], argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 10)};
    return boxes_same(&c, atoi(argv[6]), argv[7], 1);
  }
  if (argc >= 7 && strcmp(cmd, "lifecycle-floor") == 0) {
    struct ctx c = {argv[2], argv[3], argv[4], 0};
    return lifecycle_floor(&c, atoi(argv[5]), argv[6]);
  }
  if (argc >= 7 && strcmp(cmd, "pc-same") == 0) {
    struct ctx c = {argv[2], NULL, argv[3], (unsigned)strtoul(argv[4], NULL, 10)};
    return boxes_same(&c, atoi(argv[5]), argv[6], 0);
  }
  if (argc >= 6 && strcmp(cmd, "boxlite-replay") == 0) return boxlite_replay(argv[2], argv[3], atoi(argv[4]), argv[5]);
  if (argc >= 8 && strcmp(cmd, "pc-breakdown") == 0) {
    struct ctx c = {argv[2], NULL, argv[3], (unsigned)strtoul(argv[4], NULL, 10)};
    return pc_breakdown(&c, atoi(argv[5]), atoi(argv[6]), argv[7]);
  }
  if (argc >= 5 && strcmp(cmd, "shared-same") == 0) {
    struct ctx c = {argv[2], NULL, NULL, 0};
    return shared_same(&c, argv[3], atoi(argv[4]));
  }
  if (argc >= 5 && strcmp(cmd, "bindro") == 0) return bindro(argv[2], argv[3], atoi(argv[4]));
  if (argc >= 6 && strcmp(cmd, "shim-same") == 0) {
    struct ctx c = {argv[2], argv[4], NULL, 0};
    return shim_same(&c, argv[3], atoi(argv[5]));
  }
  if (argc >= 6 && strcmp(cmd, "clone") == 0) return clone_floor(argv[2], argv[3], atoi(argv[4]), strcmp(argv[5], "ficlone") == 0);
  if (argc >= 6 && strcmp(cmd, "samefs") == 0) return samefs(argv[2], argv[3], argv[4], atoi(argv[5]));
  if (argc >= 4 && strcmp(cmd, "sock") == 0) return sock(argv[2], atoi(argv[3]));
  if (argc >= 5 && strcmp(cmd, "mountmany") == 0) return mountmany(argv[2], argv[3], atoi(argv[4]));
  if (argc >= 4 && strcmp(cmd, "unmountmany") == 0) return unmountmany(argv[2], atoi(argv[3]));
  if (argc >= 7 && strcmp(cmd, "trace") == 0) {
    struct ctx c = {argv[2], argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 10)};
    struct ctx e = {argc >= 9 ? argv[7] : NULL, argc >= 9 ? argv[8] : NULL, argv[4], c.uid};
    return trace(&c, argv[6], argc >= 9 ? &e : NULL);
  }
  if (argc >= 5 && strcmp(cmd, "spawn") == 0) return spawn_rounds(atoi(argv[2]), argv[3], argv[4]);
  fprintf(stderr, "usage: see the header of blx_bench.c\n");
  return 2;
}
