// The facts storage gc decides on, and its one repair. Which stored files
// (bases, disk images) a backing chain still names is read from the qcow2
// headers exactly as the sandbox policy reads them (read_backing_chain), and matched
// by inode, so neither a relative backing name nor a second spelling of a
// path hides a reference. The decisions (grace period, fail closed) are in
// lib/storage-gc.ts.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <tuple>

#include "../internal.h"

namespace blx {

namespace {

constexpr const char* kStoreDirs[] = {"bases", "images/disk-images"};
const std::string kLeftoverPrefix = "storage-gc-";

using InodeKey = std::tuple<uint32_t, uint32_t, uint64_t>;

InodeKey key_of(const FileInode& i) { return InodeKey{i.dev_major, i.dev_minor, i.ino}; }

bool ends_with(const std::string& s, const char* suffix) {
  const std::string x(suffix);
  return s.size() > x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

// bases/ holds BoxLite's base disks (*.qcow2, *.ext4) and nothing else gc
// may judge; images/disk-images/ holds only disk images.
bool is_candidate(const std::string& dir, const std::string& name) {
  if (dir == "bases") return ends_with(name, ".qcow2") || ends_with(name, ".ext4");
  return true;
}

// The entries of home/rel, a trusted home directory; none when it is missing.
Error list_home_dir(Dir home, const char* rel, OwnedDir* dir, std::vector<DirEntry>* out) {
  out->clear();
  if (Error e = open_dir_beneath(home, rel, Trust::kCheck, dir, nullptr)) return e.code == ENOENT ? Error{} : e;
  return list_dir(*dir, out);
}

void add_chain(const BackingChain& chain, std::set<InodeKey>* referenced, StorageScan* out) {
  for (const FileInode& i : chain.inodes) referenced->insert(key_of(i));
  if (chain.error) out->problems.push_back(StorageChainProblem{chain.image, chain.error});
}

// The chains of every boxes/{entry}/disks/*.qcow2. An entry that is not a
// directory holds no disks; one whose disks/ cannot be opened or listed is
// a chain problem (what it refers to is unknown).
Error scan_boxes(Dir home, std::set<InodeKey>* referenced, StorageScan* out) {
  OwnedDir boxes;
  std::vector<DirEntry> entries;
  if (Error e = list_home_dir(home, "boxes", &boxes, &entries)) return e;
  for (const DirEntry& b : entries) {
    const std::string box_display = boxes.child(b.name);
    FileStat st;
    if (Error e = stat_at(boxes.get(), b.name.c_str(), false, &st, box_display)) {
      if (e.code != ENOENT) out->problems.push_back(StorageChainProblem{box_display, e});
      continue;
    }
    if (!S_ISDIR(st.mode)) continue;
    OwnedDir disks;
    Error de = open_dir_beneath(boxes, b.name + "/disks", Trust::kNone, &disks, nullptr);
    if (de) {
      if (de.code != ENOENT) out->problems.push_back(StorageChainProblem{join_path(box_display, "disks"), de});
      continue;
    }
    std::vector<DirEntry> images;
    if (Error e = list_dir(disks, &images)) {
      out->problems.push_back(StorageChainProblem{disks.path, e});
      continue;
    }
    for (const DirEntry& i : images) {
      if (!ends_with(i.name, ".qcow2")) continue;
      BackingChain chain;
      chain.image = disks.child(i.name);
      read_backing_chain(disks, i.name.c_str(), &chain);
      add_chain(chain, referenced, out);
      out->images_read++;
    }
  }
  return {};
}

// One stored file: what it is, and its own chain (base-to-base ancestry).
void scan_file(Dir store, const std::string& dir, const std::string& name, std::set<InodeKey>* referenced,
               StorageScan* out) {
  StorageFile f;
  f.dir = dir;
  f.name = name;
  const std::string display = store.child(name);
  FileStat st;
  if ((f.error = stat_at(store.fd, name.c_str(), false, &st, display))) {
    if (f.error.code != ENOENT) out->files.push_back(std::move(f));
    return;
  }
  f.regular = S_ISREG(st.mode);
  f.size = st.size;
  f.mtime_sec = st.mtime_sec;
  f.inode = FileInode{st.dev_major, st.dev_minor, st.ino};
  if (!f.regular) {
    f.error = fail_reason(EINVAL, S_ISLNK(st.mode) ? Reason::kSymlink : Reason::kNotRegularFile, "open", display,
                          st.mode & S_IFMT);
    out->files.push_back(std::move(f));
    return;
  }
  BackingChain chain;
  chain.image = display;
  read_backing_chain(store, name.c_str(), &chain);
  for (const FileInode& i : chain.inodes) referenced->insert(key_of(i));
  // Its own header unreadable: kept, and what it names is unknown. Beyond
  // it: a problem of the chain, like a box's.
  if (chain.error && chain.files.empty()) {
    f.error = chain.error;
  } else if (chain.error) {
    out->problems.push_back(StorageChainProblem{chain.image, chain.error});
  }
  out->files.push_back(std::move(f));
}

}  // namespace

Error storage_scan(const std::string& home, StorageScan* out) {
  *out = StorageScan{};
  OwnedDir root;
  if (Error e = open_home_for_gc(home, &root)) return e;
  std::set<InodeKey> referenced;
  if (Error e = scan_boxes(root, &referenced, out)) return e;
  for (const char* dir : kStoreDirs) {
    OwnedDir store;
    std::vector<DirEntry> entries;
    if (Error e = list_home_dir(root, dir, &store, &entries)) return e;
    std::sort(entries.begin(), entries.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
    for (const DirEntry& d : entries) {
      if (is_candidate(dir, d.name)) scan_file(store, dir, d.name, &referenced, out);
    }
  }
  for (StorageFile& f : out->files) {
    if (f.regular) f.referenced = referenced.count(key_of(f.inode)) > 0;
  }
  OwnedDir tmp;
  std::vector<DirEntry> entries;
  if (Error e = list_home_dir(root, "tmp", &tmp, &entries)) return e;
  for (const DirEntry& d : entries) {
    if (d.name.compare(0, kLeftoverPrefix.size(), kLeftoverPrefix) == 0) out->tmp_leftovers.push_back(d.name);
  }
  std::sort(out->tmp_leftovers.begin(), out->tmp_leftovers.end());
  return {};
}

Error storage_remove(const std::string& home, const std::string& dir, const std::string& name, const FileInode& inode,
                     bool tmp_leftover, bool* removed) {
  *removed = false;
  if (!is_plain_name(name)) return fail(EINVAL, "unlink", join_path(join_path(home, dir), name));
  OwnedDir root;
  if (Error e = open_home_for_gc(home, &root)) return e;
  OwnedDir tmp;
  if (Error e = open_dir_beneath(root, "tmp", Trust::kCheck, &tmp, nullptr)) return e;
  if (tmp_leftover) {
    if (name.compare(0, kLeftoverPrefix.size(), kLeftoverPrefix) != 0) return fail(EINVAL, "unlink", tmp.child(name));
    RemoveStats stats;
    if (Error e = remove_tree_at(tmp, name, false, &stats)) return e;
    *removed = true;
    return {};
  }
  bool known = false;
  for (const char* d : kStoreDirs) known = known || dir == d;
  if (!known) return fail(EINVAL, "rename", join_path(home, dir));
  OwnedDir from;
  if (Error e = open_dir_beneath(root, dir, Trust::kCheck, &from, nullptr)) return e;
  const std::string from_display = from.child(name);
  FileStat st;
  if (Error e = stat_at(from.get(), name.c_str(), false, &st, from_display)) return e.code == ENOENT ? Error{} : e;
  // Replaced since the scan (a new base under the old name): not ours to judge.
  if (!S_ISREG(st.mode) || st.dev_major != inode.dev_major || st.dev_minor != inode.dev_minor || st.ino != inode.ino) {
    return {};
  }
  const std::string victim = kLeftoverPrefix + random_suffix();
  if (::renameat(from.get(), name.c_str(), tmp.get(), victim.c_str()) != 0) {
    return fail_errno("rename", from_display, tmp.child(victim));
  }
  if (::unlinkat(tmp.get(), victim.c_str(), 0) != 0) return fail_errno("unlink", tmp.child(victim));
  *removed = true;
  return {};
}

}  // namespace blx
