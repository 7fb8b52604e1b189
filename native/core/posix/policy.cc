// The facts BoxLite's jailer decides its sandbox policy from: which of a
// box's paths exist (and what they are: a symlink is never granted, because
// bubblewrap would follow it), and the read-only backing chain of each qcow2
// disk, from the image headers the shim may have written.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "../internal.h"

namespace blx {

namespace {

constexpr int kMaxChain = 16;
constexpr uint32_t kMaxBackingName = 1023;              // QEMU's own limit
constexpr uint64_t kMaxOffset = 0x7fffffffffffffffull;  // off_t's largest
// mounts is never granted itself: it is what shared/ stands for when shared/
// is this package's own symlink to it (the no-mount fallback).
constexpr const char* kGrantable[] = {"tmp", "logs", "sockets", "exit",  "disks/disk.qcow2", "disks/guest-rootfs.qcow2",
                                      "bin", "boot", "shared",  "mounts"};
constexpr const char* kImages[] = {"disks/disk.qcow2", "disks/guest-rootfs.qcow2"};

PathKind kind_of(uint32_t mode) {
  if (S_ISDIR(mode)) return PathKind::kDirectory;
  if (S_ISREG(mode)) return PathKind::kFile;
  if (S_ISLNK(mode)) return PathKind::kSymlink;
  return PathKind::kOther;
}

uint64_t big_endian(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

Error read_exact(int fd, void* buf, size_t n, off_t at, const std::string& display, size_t* got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::pread(fd, static_cast<char*>(buf) + *got, n - *got, at + static_cast<off_t>(*got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", display);
    }
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return {};
}

}  // namespace

// The backing file name in a qcow2 header: magic "QFI\xfb", then a
// big-endian u64 offset of the name at byte 8 and its u32 length at byte 16.
// Not a qcow2 image, or none named: *name empty. The header is the shim's
// (or the guest's) to write: a name that could not be read back as written
// (past any file offset, or holding a NUL that would cut the path the kernel
// opens short of the one reported) is a backing-chain error.
Error qcow2_backing_name(int fd, const std::string& display, std::string* name) {
  name->clear();
  unsigned char header[20];
  size_t got = 0;
  if (Error e = read_exact(fd, header, sizeof header, 0, display, &got)) return e;
  if (got < sizeof header || std::memcmp(header, "QFI\xfb", 4) != 0) return {};
  uint64_t offset = big_endian(header + 8, 8);
  uint64_t length = big_endian(header + 16, 4);
  if (offset == 0 || length == 0) return {};
  if (length > kMaxBackingName || offset > kMaxOffset - length) {
    return fail_reason(EINVAL, Reason::kBackingChain, "read", display);
  }
  name->resize(length);
  if (Error e = read_exact(fd, &(*name)[0], length, static_cast<off_t>(offset), display, &got)) return e;
  if (got < length || name->find('\0') != std::string::npos) {
    name->clear();
    return fail_reason(EINVAL, Reason::kBackingChain, "read", display);
  }
  return {};
}

namespace {

std::string chain_text(const std::string& image, const std::vector<std::string>& files) {
  std::string text = image;
  for (const std::string& f : files) text += " -> " + f;
  return text;
}

}  // namespace

// Follow image's backing names. The image itself is the box's (opened
// beneath it, never through a symlink); what it names is a host path. Each
// is a regular file or (a backing file only) a block device, which a qcow2
// overlay may name as its base; never a FIFO or a character device, which is
// not even opened (open_typed_file): the names are the headers', which a
// guest can write.
void read_backing_chain(Dir disks, const char* image_name, BackingChain* out) {
  out->inodes.clear();
  Fd fd;
  FileStat st;
  if ((out->error = open_typed_file(disks.fd, image_name, O_NOFOLLOW, false, out->image, &fd, &st))) return;
  std::vector<FileStat> seen{st};
  std::string dir = disks.path;
  std::string current = out->image;
  for (;;) {
    std::string name;
    if ((out->error = qcow2_backing_name(fd.get(), current, &name))) return;
    if (name.empty()) return;
    std::string next = name[0] == '/' ? name : join_path(dir, name);
    if (static_cast<int>(out->files.size()) >= kMaxChain) {
      out->files.push_back(next);
      out->error = fail_reason(EINVAL, Reason::kBackingChain, "open", out->image);
      out->error.dest = chain_text(out->image, out->files);
      return;
    }
    out->files.push_back(next);
    if ((out->error = open_typed_file(AT_FDCWD, next.c_str(), 0, true, next, &fd, &st))) return;
    out->block.push_back(S_ISBLK(st.mode));
    // A name can climb out with ".." or pass through symlinks: confinement
    // (backingRoots) is judged on where the opened file really is.
    std::string real;
    if ((out->error = fd_path(fd.get(), next, &real))) return;
    out->real.push_back(real);
    for (const FileStat& s : seen) {
      if (same_inode(s, st)) {
        out->error = fail_reason(ELOOP, Reason::kBackingChain, "open", out->image);
        out->error.dest = chain_text(out->image, out->files);
        return;
      }
    }
    seen.push_back(st);
    out->inodes.push_back(FileInode{st.dev_major, st.dev_minor, st.ino});
    std::string file;
    split_path(next, &dir, &file);
    current = next;
  }
}

Error box_policy_facts(const BoxRef& ref, const std::vector<std::string>& hosts, const std::vector<std::string>& roots,
                       bool canonical, PolicyFacts* out) {
  *out = PolicyFacts{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, false, false, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir disks;
  Error de = open_dir_beneath(d.box, "disks", Trust::kNone, &disks, nullptr);
  if (de && de.code != ENOENT && de.code != ELOOP && de.code != ENOTDIR) return de;
  for (const char* rel : kGrantable) {
    FileStat st;
    Error e;
    const char* slash = std::strchr(rel, '/');
    if (slash == nullptr) {
      e = stat_at(d.box.get(), rel, false, &st, d.box.child(rel));
    } else if (disks.valid()) {
      e = stat_at(disks.get(), slash + 1, false, &st, d.box.child(rel));
    } else {
      e = fail(ENOENT, "statx", d.box.child(rel));
    }
    if (e && e.code != ENOENT && e.code != ENOTDIR) return e;
    PolicyEntry entry{rel, e ? PathKind::kMissing : kind_of(st.mode), {}};
    if (entry.kind == PathKind::kSymlink && slash == nullptr && !read_link_at(d.box.get(), rel, &entry.link_target) &&
        errno != EINVAL && errno != ENOENT) {
      return fail_errno("readlink", d.box.child(rel));
    }
    out->entries.push_back(std::move(entry));
    bool image = false;
    for (const char* i : kImages) image = image || std::strcmp(i, rel) == 0;
    if (image && !e && S_ISREG(st.mode)) {
      BackingChain chain;
      chain.image = d.box.child(rel);
      read_backing_chain(disks, slash + 1, &chain);
      out->chains.push_back(std::move(chain));
    }
  }
  for (const std::string& p : hosts) {
    HostPath h;
    h.path = p;
    FileStat st;
    if (Error e = stat_at(AT_FDCWD, p.c_str(), false, &st, p)) {
      if (e.code != ENOENT && e.code != ENOTDIR) return e;
    } else {
      h.kind = kind_of(st.mode);
      h.exists = !stat_at(AT_FDCWD, p.c_str(), true, &st, p);
      h.is_dir = h.exists && S_ISDIR(st.mode);
      // A home reached through a symlink: the jail binds the real directory.
      if (h.is_dir) {
        Fd dir(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC));
        if (!dir.valid() && errno != ENOENT && errno != ENOTDIR) return fail_errno("open", p);
        if (dir.valid()) {
          if (Error e = fd_path(dir.get(), p, &h.real)) return e;
        }
      }
      // Replaced by something else since the lstat (EINVAL), or gone: no target.
      if (h.kind == PathKind::kSymlink && !read_link_at(AT_FDCWD, p.c_str(), &h.link_target) && errno != EINVAL &&
          errno != ENOENT) {
        return fail_errno("readlink", p);
      }
    }
    out->hosts.push_back(std::move(h));
  }
  // The roots real backing files are judged against: the runtime's own
  // directories (a home under a symlinked /var, say), resolved as the
  // kernel resolves them. One that does not exist confines to nothing.
  for (const std::string& root : roots) {
    std::string real = root;
    Fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) {
      if (Error e = fd_path(fd.get(), root, &real)) return e;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      return fail_errno("open", root);
    }
    out->roots.push_back(std::move(real));
  }
  if (canonical) {
    auto add = [out](const std::string& p) { out->canonical.emplace_back(p, macos_canonical(p)); };
    for (const PolicyEntry& e : out->entries) add(d.box.child(e.rel));
    for (const HostPath& h : out->hosts) {
      add(h.path);
      if (!h.real.empty()) add(h.real);
    }
    for (const BackingChain& c : out->chains) {
      for (const std::string& f : c.files) {
        std::string dir, name;
        split_path(f, &dir, &name);
        add(f);
        add(dir);
      }
    }
  }
  return {};
}

}  // namespace blx
