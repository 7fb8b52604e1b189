// Raw C baselines for `npm run bench`: the same syscalls boxlite-layout
// makes, with no runtime around them. Each subcommand times its own loop
// (CLOCK_MONOTONIC) and prints one JSON line: {"n":N,"ns":total[,"steps":{…}]}.
//
//   lifecycle HOME SHIMDIR N ID_PREFIX   prepare + ro bind + 3-file FICLONE + cleanup, minimal:
//                                        no lock, no checks, files written in place
//   lifecycle-same HOME SHIMDIR N ID_PREFIX   the same work with the syscalls boxlite-layout
//                                        makes (strace of one box): box flock + identity check,
//                                        /tmp/bl-{uid} owner check, statx before mounting,
//                                        atomic installs (temp, FICLONE, fchmod, futimens,
//                                        rename), rename to .trash-*, removal that statx-checks
//                                        every directory it enters
//   bindro SRC DST N                     open_tree/mount_setattr/move_mount + umount2
//   clone SRCDIR DSTDIR N MODE           FICLONE (MODE=ficlone) or copy_file_range, in place
//   clone-same SRCDIR DSTDIR N           the package's atomic install per file (statx, temp
//                                        O_EXCL, FICLONE, fchmod, futimens, renameat)
//   samefs A B C N                       statx x3, compare devices
//   sock DIR N                           socket/bind/listen/close/unlink
//   mountmany SRC DIR N | unmountmany DIR N
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// CPU time of this process so far: user and system, in ns.
static void cpu_ns(uint64_t *user, uint64_t *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
  *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
}

// Lifecycle timing: wall time per step, and the process's CPU split.
struct step_times {
  uint64_t start, user0, sys0, step[4];
};

static void step_times_begin(struct step_times *t) {
  memset(t, 0, sizeof *t);
  cpu_ns(&t->user0, &t->sys0);
  t->start = now_ns();
}

static void step_times_add(struct step_times *t, uint64_t t0, uint64_t t1, uint64_t t2, uint64_t t3, uint64_t t4) {
  t->step[0] += t1 - t0;
  t->step[1] += t2 - t1;
  t->step[2] += t3 - t2;
  t->step[3] += t4 - t3;
}

static void step_times_print(const struct step_times *t, int n) {
  uint64_t end = now_ns(), user, sys;
  cpu_ns(&user, &sys);
  printf("{\"n\":%d,\"ns\":%llu,\"user\":%llu,\"sys\":%llu,\"steps\":{\"prepare\":%llu,\"mount\":%llu,\"shim\":%llu,\"cleanup\":%llu}}\n", n,
         (unsigned long long)(end - t->start), (unsigned long long)(user - t->user0), (unsigned long long)(sys - t->sys0),
         (unsigned long long)t->step[0], (unsigned long long)t->step[1], (unsigned long long)t->step[2],
         (unsigned long long)t->step[3]);
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "blx_bench: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static void mkdir_ok(const char *p) {
  if (mkdir(p, 0777) != 0 && errno != EEXIST) die("mkdir", p);
}

static void bind_ro(const char *src, const char *dst) {
  int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) die("open_tree", src);
  struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof ro) != 0) die("mount_setattr", src);
  if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) != 0) die("move_mount", dst);
  struct mount_attr slave = {.propagation = MS_SLAVE};
  if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof slave) != 0) die("mount_setattr", dst);
  close(fd);
}

static void clone_one(const char *src, const char *dst, int ficlone) {
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

// rm -rf with unlinkat, not following symlinks (what any careful C would do).
static void remove_at(int dirfd, const char *name) {
  if (unlinkat(dirfd, name, 0) == 0) return;
  if (errno != EISDIR && errno != EPERM) die("unlinkat", name);
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die("openat", name);
  DIR *d = fdopendir(fd);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    remove_at(fd, e->d_name);
  }
  closedir(d);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0) die("rmdir", name);
}

// /tmp/bl-{uid}, where socket links go (created 0700 if missing).
static void ensure_link_dir(char linkdir[64]) {
  snprintf(linkdir, 64, "/tmp/bl-%u", (unsigned)getuid());
  mkdir(linkdir, 0700);
}

static const char *SHIM_FILES[] = {"boxlite-shim", "libkrunfw.so.5", "libkrunfw.so.5.1.0"};

static int lifecycle(const char *home, const char *shimdir, int n, const char *prefix) {
  char p[4096], q[4096], box[4096];
  snprintf(p, sizeof p, "%s/boxes", home);
  mkdir_ok(p);
  char linkdir[64];
  ensure_link_dir(linkdir);
  struct step_times times;
  step_times_begin(&times);
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    snprintf(box, sizeof box, "%s/boxes/%s%06d", home, prefix, i);
    mkdir_ok(box);
    static const char *dirs[] = {"sockets", NULL, "tmp", "disks", "mounts", "logs"};
    for (int k = 0; k < 6; k++) {
      if (dirs[k] == NULL) {  // the socket link, right after sockets/
        snprintf(p, sizeof p, "%s/sockets", box);
        snprintf(q, sizeof q, "%s/%s%06d", linkdir, prefix, i);
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
    bind_ro(p, q);
    uint64_t t2 = now_ns();
    snprintf(p, sizeof p, "%s/bin", box);
    mkdir_ok(p);
    for (int k = 0; k < 3; k++) {
      snprintf(p, sizeof p, "%s/%s", shimdir, SHIM_FILES[k]);
      snprintf(q, sizeof q, "%s/bin/%s", box, SHIM_FILES[k]);
      clone_one(p, q, 1);
    }
    uint64_t t3 = now_ns();
    snprintf(q, sizeof q, "%s/shared", box);
    if (umount2(q, MNT_DETACH) != 0) die("umount2", q);
    snprintf(p, sizeof p, "%s/boxes", home);
    int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(q, sizeof q, "%s%06d", prefix, i);
    remove_at(dfd, q);
    close(dfd);
    snprintf(q, sizeof q, "%s/%s%06d", linkdir, prefix, i);
    if (unlink(q) != 0) die("unlink", q);
    step_times_add(&times, t0, t1, t2, t3, now_ns());
  }
  step_times_print(&times, n);
  return 0;
}


// ---- lifecycle-same: the package's syscalls, in its order -----------------

#define SX_MASK (STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_MTIME | STATX_INO | STATX_SIZE | STATX_MNT_ID)

static void sx_fd(int fd, struct statx *out) {
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, SX_MASK, out) != 0) die("statx", "fd");
}

// open + flock + "is it still the dir under that name" (fd vs lstat).
static int lock_box(const char *box) {
  int fd = open(box, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die("open", box);
  if (flock(fd, LOCK_EX) != 0) die("flock", box);
  struct statx a, b;
  sx_fd(fd, &a);
  if (statx(AT_FDCWD, box, AT_SYMLINK_NOFOLLOW, SX_MASK, &b) != 0) die("statx", box);
  if (a.stx_ino != b.stx_ino) die("identity", box);
  return fd;
}

// The removal walk: rmdir empty dirs outright; enter others with
// openat(O_NOFOLLOW) + statx (the mount check) + getdents64 until empty.
// is_dir: 1 a directory entry, 2 the top (entered without trying rmdir).
static void remove_checked(int dirfd, const char *name, int is_dir) {
  if (is_dir == 1 && unlinkat(dirfd, name, AT_REMOVEDIR) == 0) return;
  if (!is_dir) {
    if (unlinkat(dirfd, name, 0) != 0) die("unlinkat", name);
    return;
  }
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) die("openat", name);
  struct statx st;
  sx_fd(fd, &st);
  char buf[16384];
  char names[64][256];
  int dirs[64], count = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) die("getdents64", name);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
      off += d->reclen;
      if (strcmp(d->name, ".") == 0 || strcmp(d->name, "..") == 0 || count == 64) continue;
      snprintf(names[count], 256, "%s", d->name);
      dirs[count++] = d->type == DT_DIR;
    }
  }
  for (int k = 0; k < count; k++) remove_checked(fd, names[k], dirs[k]);
  close(fd);
  if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0) die("rmdir", name);
}

// One getrandom per batch, as the package draws it: 12 hex digits.
static void random_stem(char stem[13]) {
  unsigned char r[6];
  if (getrandom(r, sizeof r, 0) != sizeof r) die("getrandom", NULL);
  snprintf(stem, 13, "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5]);
}

// The package's atomic install of srcdir/name into bd: statx (and, with
// check_dst, statx of the destination for the skip rule), temp O_EXCL,
// FICLONE, fchmod, futimens, renameat.
static void install_one_atomic(int bd, const char *srcdir, const char *name, const char *stem, int seq, int check_dst) {
  char p[4096], q[512];
  snprintf(p, sizeof p, "%s/%s", srcdir, name);
  int in = open(p, O_RDONLY | O_CLOEXEC);
  if (in < 0) die("open", p);
  struct statx s;
  if (statx(in, "", AT_EMPTY_PATH, SX_MASK, &s) != 0) die("statx", p);
  struct statx d;
  if (check_dst && (statx(bd, name, AT_SYMLINK_NOFOLLOW, SX_MASK, &d) == 0 || errno != ENOENT)) die("statx", name);
  snprintf(q, sizeof q, ".%s.blx-%s%04x", name, stem, seq);
  int out = openat(bd, q, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) die("openat", q);
  if (ioctl(out, FICLONE, in) != 0) die("FICLONE", q);
  if (fchmod(out, s.stx_mode & 07777) != 0) die("fchmod", q);
  struct timespec times[2] = {{0, UTIME_OMIT}, {s.stx_mtime.tv_sec, s.stx_mtime.tv_nsec}};
  if (futimens(out, times) != 0) die("futimens", q);
  if (renameat(bd, q, bd, name) != 0) die("renameat", name);
  close(out);
  close(in);
}

static int lifecycle_same(const char *home, const char *shimdir, int n, const char *prefix) {
  char p[4096], q[4096], box[4096], id[64], linkdir[64];
  ensure_link_dir(linkdir);
  struct step_times times;
  step_times_begin(&times);
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    snprintf(id, sizeof id, "%s%06d", prefix, i);
    snprintf(box, sizeof box, "%s/boxes/%s", home, id);
    // prepare: dirs in SPEC order, the socket link after sockets/
    if (mkdir(box, 0777) != 0) die("mkdir", box);
    snprintf(p, sizeof p, "%s/sockets", box);
    if (mkdir(p, 0777) != 0) die("mkdir", p);
    if (mkdir(linkdir, 0700) == 0 || errno != EEXIST) die("mkdir", linkdir);
    int ld = open(linkdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ld < 0) die("open", linkdir);
    struct statx lst;
    sx_fd(ld, &lst);
    if (lst.stx_uid != getuid() || (lst.stx_mode & 077) != 0) die("owner", linkdir);
    if (symlinkat(p, ld, id) != 0) die("symlinkat", id);
    close(ld);
    static const char *dirs[] = {"tmp", "disks", "mounts", "logs"};
    for (int k = 0; k < 4; k++) {
      snprintf(p, sizeof p, "%s/%s", box, dirs[k]);
      if (mkdir(p, 0777) != 0) die("mkdir", p);
    }
    uint64_t t1 = now_ns();
    // mountShared: lock, mounts/ is a dir, shared/ is missing, bind, unlock
    int lk = lock_box(box);
    struct statx st;
    snprintf(p, sizeof p, "%s/mounts", box);
    if (statx(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_ALL, &st) != 0) die("statx", p);
    snprintf(q, sizeof q, "%s/shared", box);
    if (statx(AT_FDCWD, q, AT_SYMLINK_NOFOLLOW, SX_MASK, &st) == 0 || errno != ENOENT) die("statx", q);
    if (mkdir(q, 0777) != 0) die("mkdir", q);
    bind_ro(p, q);
    close(lk);
    uint64_t t2 = now_ns();
    // installShim: stat the shim, list its dir for libkrunfw.*, clone each
    snprintf(p, sizeof p, "%s/%s", shimdir, SHIM_FILES[0]);
    if (statx(AT_FDCWD, p, 0, STATX_ALL, &st) != 0) die("statx", p);
    DIR *sd = opendir(shimdir);
    if (!sd) die("opendir", shimdir);
    while (readdir(sd) != NULL) {
    }
    closedir(sd);
    snprintf(p, sizeof p, "%s/bin", box);
    if (mkdir(p, 0777) != 0) die("mkdir", p);
    int bd = -1;
    char stem[13];
    for (int k = 0; k < 3; k++) {
      if (bd < 0) {
        bd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bd < 0) die("open", p);
        random_stem(stem);
      }
      install_one_atomic(bd, shimdir, SHIM_FILES[k], stem, k, 1);
    }
    close(bd);
    uint64_t t3 = now_ns();
    // cleanup: lock, drop the socket link, detach shared/ (until EINVAL),
    // move aside to .trash-*, remove it with the checked walk
    lk = lock_box(box);
    ld = open(linkdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ld < 0) die("open", linkdir);
    char target[4096];
    if (readlinkat(ld, id, target, sizeof target) < 0) die("readlinkat", id);
    if (unlinkat(ld, id, 0) != 0) die("unlinkat", id);
    close(ld);
    snprintf(q, sizeof q, "%s/shared", box);
    if (umount2(q, MNT_DETACH | UMOUNT_NOFOLLOW) != 0) die("umount2", q);
    if (umount2(q, MNT_DETACH | UMOUNT_NOFOLLOW) == 0 || errno != EINVAL) die("umount2", q);
    char trash[256];
    snprintf(trash, sizeof trash, ".trash-%s-%08x", id, (unsigned)i);
    snprintf(p, sizeof p, "%s/boxes", home);
    snprintf(q, sizeof q, "%s/%s", p, trash);
    if (rename(box, q) != 0) die("rename", box);
    int bx = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bx < 0) die("open", p);
    sx_fd(bx, &st);
    remove_checked(bx, trash, 2);
    close(bx);
    close(lk);
    step_times_add(&times, t0, t1, t2, t3, now_ns());
  }
  step_times_print(&times, n);
  return 0;
}

static int bindro(const char *src, const char *dst, int n) {
  uint64_t start = now_ns();
  for (int i = 0; i < n; i++) {
    bind_ro(src, dst);
    if (umount2(dst, MNT_DETACH) != 0) die("umount2", dst);
  }
  printf("{\"n\":%d,\"ns\":%llu}\n", n, (unsigned long long)(now_ns() - start));
  return 0;
}

// The regular files of a shim set dir (no dot files), at most 64.
static int list_names(const char *dir, char names[64][256]) {
  int count = 0;
  DIR *d = opendir(dir);
  if (!d) die("opendir", dir);
  struct dirent *e;
  while ((e = readdir(d)) != NULL && count < 64) {
    if (e->d_name[0] == '.') continue;
    snprintf(names[count++], 256, "%s", e->d_name);
  }
  closedir(d);
  return count;
}

enum clone_kind { CLONE_CFR, CLONE_FICLONE, CLONE_SAME };

static int clone_set(const char *srcdir, const char *dstdir, int n, enum clone_kind kind) {
  char names[64][256];
  int count = list_names(srcdir, names);
  char p[4096], q[4096];
  uint64_t total = 0;
  for (int i = 0; i < n; i++) {
    uint64_t t0 = now_ns();
    if (kind == CLONE_SAME) {
      int bd = open(dstdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (bd < 0) die("open", dstdir);
      char stem[13];
      random_stem(stem);
      for (int k = 0; k < count; k++) install_one_atomic(bd, srcdir, names[k], stem, k, 0);
      close(bd);
    } else {
      for (int k = 0; k < count; k++) {
        snprintf(p, sizeof p, "%s/%s", srcdir, names[k]);
        snprintf(q, sizeof q, "%s/%s", dstdir, names[k]);
        clone_one(p, q, kind == CLONE_FICLONE);
      }
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
  const char *paths[3] = {a, b, c};
  int same = 0;
  uint64_t start = now_ns();
  for (int i = 0; i < n; i++) {
    struct statx sx[3];
    for (int k = 0; k < 3; k++) {
      if (statx(AT_FDCWD, paths[k], AT_STATX_SYNC_AS_STAT, STATX_TYPE | STATX_INO | STATX_MNT_ID, &sx[k]) != 0) die("statx", paths[k]);
    }
    same += sx[0].stx_dev_major == sx[1].stx_dev_major && sx[0].stx_dev_minor == sx[1].stx_dev_minor &&
            sx[0].stx_dev_major == sx[2].stx_dev_major && sx[0].stx_dev_minor == sx[2].stx_dev_minor;
  }
  printf("{\"n\":%d,\"ns\":%llu,\"same\":%d}\n", n, (unsigned long long)(now_ns() - start), same);
  return 0;
}

static int sock(const char *dir, int n) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s/ready.sock", dir);
  uint64_t start = now_ns();
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind", addr.sun_path);
    if (listen(fd, 511) != 0) die("listen", addr.sun_path);
    close(fd);
    unlink(addr.sun_path);
  }
  printf("{\"n\":%d,\"ns\":%llu}\n", n, (unsigned long long)(now_ns() - start));
  return 0;
}

static int mountmany(const char *src, const char *dir, int n) {
  char p[4096];
  for (int i = 0; i < n; i++) {
    snprintf(p, sizeof p, "%s/m%06d", dir, i);
    mkdir_ok(p);
    bind_ro(src, p);
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

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "lifecycle") == 0) return lifecycle(argv[2], argv[3], atoi(argv[4]), argv[5]);
  if (argc >= 6 && strcmp(argv[1], "lifecycle-same") == 0) return lifecycle_same(argv[2], argv[3], atoi(argv[4]), argv[5]);
  if (argc >= 5 && strcmp(argv[1], "bindro") == 0) return bindro(argv[2], argv[3], atoi(argv[4]));
  if (argc >= 6 && strcmp(argv[1], "clone") == 0) return clone_set(argv[2], argv[3], atoi(argv[4]), strcmp(argv[5], "ficlone") == 0 ? CLONE_FICLONE : CLONE_CFR);
  if (argc >= 5 && strcmp(argv[1], "clone-same") == 0) return clone_set(argv[2], argv[3], atoi(argv[4]), CLONE_SAME);
  if (argc >= 6 && strcmp(argv[1], "samefs") == 0) return samefs(argv[2], argv[3], argv[4], atoi(argv[5]));
  if (argc >= 4 && strcmp(argv[1], "sock") == 0) return sock(argv[2], atoi(argv[3]));
  if (argc >= 5 && strcmp(argv[1], "mountmany") == 0) return mountmany(argv[2], argv[3], atoi(argv[4]));
  if (argc >= 4 && strcmp(argv[1], "unmountmany") == 0) return unmountmany(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: see the header of blx_bench.c\n");
  return 2;
}
