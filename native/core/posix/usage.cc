// Where a home's disk goes: one walk beneath the home's fd, every file's
// size, allocation and extent map. The walk is remove.cc's: iterative, a
// bounded number of fds (below kKeepFds levels a parent is reopened through
// ".." and verified), O_NOFOLLOW at every step, and a mount is never
// entered. Only regular files are opened (O_NOFOLLOW | O_NONBLOCK, checked
// to be the regular file stat'ed): a FIFO or device is counted by its stat
// alone. Names are visited in byte order so "the first file a shared range
// is met in" is the same on every run.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <tuple>

#include "../internal.h"

namespace blx {

namespace {

constexpr size_t kKeepFds = 64;
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// Shared physical ranges already counted, merged: [start, end).
class RangeSet {
 public:
  // Adds [start, start + length) and returns how many of its bytes were new.
  uint64_t add(uint64_t start, uint64_t length) {
    if (length == 0) return 0;
    uint64_t end = start + length < start ? ~0ULL : start + length;
    uint64_t covered = 0;
    auto it = ranges_.upper_bound(start);
    if (it != ranges_.begin() && std::prev(it)->second >= start) --it;
    uint64_t lo = start, hi = end;
    while (it != ranges_.end() && it->first <= end) {
      const uint64_t a = std::max(it->first, start), b = std::min(it->second, end);
      if (b > a) covered += b - a;
      lo = std::min(lo, it->first);
      hi = std::max(hi, it->second);
      it = ranges_.erase(it);
    }
    ranges_.emplace(lo, hi);
    return (end - start) - covered;
  }

 private:
  std::map<uint64_t, uint64_t> ranges_;
};

struct Frame {
  std::string name;
  FileStat st;
  Fd fd;
  std::vector<DirEntry> entries;
  size_t next = 0;
  int area = -1;  // index into DiskUsage::areas
  int box = -1;   // index into DiskUsage::boxes
};

// What one regular file's extents add up to.
class FileExtents : public ExtentSink {
 public:
  explicit FileExtents(RangeSet* seen) : seen_(seen) {}
  void extent(uint64_t physical, uint64_t length, bool shared) override {
    if (!shared) return;
    shared_ += length;
    first_seen_ += seen_->add(physical, length);
  }
  uint64_t shared() const { return shared_; }
  uint64_t first_seen() const { return first_seen_; }

 private:
  RangeSet* seen_;
  uint64_t shared_ = 0;
  uint64_t first_seen_ = 0;
};

void add_bytes(UsageBytes* to, const UsageBytes& b) {
  to->files += b.files;
  to->apparent += b.apparent;
  to->allocated += b.allocated;
  to->shared += b.shared;
  to->exclusive += b.exclusive;
  to->physical += b.physical;
}

int index_of(std::vector<std::pair<std::string, UsageBytes>>* list, const std::string& name) {
  for (size_t i = 0; i < list->size(); i++) {
    if ((*list)[i].first == name) return static_cast<int>(i);
  }
  list->emplace_back(name, UsageBytes{});
  return static_cast<int>(list->size() - 1);
}

class Scanner {
 public:
  Scanner(const std::string& home, const UsageProgress& progress, DiskUsage* out)
      : home_(home), progress_(progress), out_(out) {}

  Error run(Fd root, const FileStat& root_st) {
    std::vector<Frame> stack;
    stack.push_back(Frame{"", root_st, std::move(root), {}, 0, index_of(&out_->areas, "other"), -1});
    count(stack.back(), other_bytes(root_st));
    if (Error e = list_top(stack)) return e;
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next >= f.entries.size()) {
        if (stack.size() >= 2 && !stack[stack.size() - 2].fd.valid()) {
          // A deep tree: the parent's fd was closed on the way down.
          Frame& p = stack[stack.size() - 2];
          Fd up(::openat(f.fd.get(), "..", kDirFlags));
          FileStat got;
          if (!up.valid() || stat_at(up.get(), "", false, &got, "..") || !same_inode(got, p.st) ||
              different_mount(got, p.st)) {
            return fail_reason(EAGAIN, Reason::kTreeMoved, "openat", display(stack, ".."));
          }
          p.fd = std::move(up);
        }
        stack.pop_back();
        continue;
      }
      const DirEntry entry = f.entries[f.next++];
      if (Error e = visit(stack, entry)) return e;
    }
    return {};
  }

 private:
  std::string display(const std::vector<Frame>& stack, const std::string& name) const {
    std::string p = home_;
    for (size_t i = 1; i < stack.size(); i++) p = join_path(p, stack[i].name);
    return name.empty() ? p : join_path(p, name);
  }

  Error list_top(std::vector<Frame>& stack) const {
    Frame& f = stack.back();
    Error e = list_dir(Dir{f.fd.get(), std::string()}, &f.entries);
    if (e) {
      e.path = display(stack, "");
      return e;
    }
    std::sort(f.entries.begin(), f.entries.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
    return {};
  }

  // Directories, symlinks, FIFOs: their own blocks, shared with nothing.
  static UsageBytes other_bytes(const FileStat& st) {
    UsageBytes b;
    b.files = 1;
    b.apparent = st.size;
    b.allocated = st.blocks * 512;
    b.exclusive = b.physical = b.allocated;
    return b;
  }

  void count(const Frame& at, const UsageBytes& b) {
    add_bytes(&out_->total, b);
    if (at.area >= 0) add_bytes(&out_->areas[at.area].second, b);
    if (at.box >= 0) add_bytes(&out_->boxes[at.box].second, b);
    if (progress_.files != nullptr) __atomic_store_n(progress_.files, out_->total.files, __ATOMIC_RELAXED);
    if (progress_.bytes != nullptr) __atomic_store_n(progress_.bytes, out_->total.allocated, __ATOMIC_RELAXED);
  }

  // The area and box an entry of the frame on top belongs to: the home's
  // first level names the area (images/ by its subdirectory), boxes/'s
  // first level names the box.
  void place(const std::vector<Frame>& stack, const std::string& name, int* area, int* box) {
    const Frame& f = stack.back();
    *area = f.area;
    *box = f.box;
    if (stack.size() == 1) {
      static const char* kAreas[] = {"bases", "boxes", "images", "logs", "tmp"};
      for (const char* a : kAreas) {
        if (name == a) *area = index_of(&out_->areas, a);
      }
    } else if (stack.size() == 2 && stack[1].name == "images") {
      *area = index_of(&out_->areas, "images/" + name);
    } else if (stack.size() == 2 && stack[1].name == "boxes") {
      *box = index_of(&out_->boxes, name);
    }
  }

  Error visit(std::vector<Frame>& stack, const DirEntry& entry) {
    Frame& f = stack.back();
    int area, box;
    place(stack, entry.name, &area, &box);
    const Frame at{"", {}, Fd(), {}, 0, area, box};
    FileStat st;
    // Paths are built for messages only, when something fails: a string
    // per entry would cost more than the stat.
    if (Error e = stat_at(f.fd.get(), entry.name.c_str(), false, &st, std::string())) {
      if (e.code == ENOENT) return {};  // removed meanwhile
      e.path = display(stack, entry.name);
      return e;
    }
    if (S_ISDIR(st.mode)) {
      const std::string where = display(stack, entry.name);
      if (is_mount_point_at(f.fd.get(), entry.name.c_str(), st, f.st, where)) {
        out_->mounts_skipped++;  // what it shows is counted where it lives (or not at all)
        return {};
      }
      Fd child(::openat(f.fd.get(), entry.name.c_str(), kDirFlags));
      if (!child.valid()) return errno == ENOENT ? Error{} : fail_errno("openat", where);
      FileStat got;
      if (Error e = stat_at(child.get(), "", false, &got, where)) return e;
      if (!same_inode(got, st) || different_mount(got, f.st)) return {};  // swapped meanwhile: not ours to count
      count(at, other_bytes(got));
      if (stack.size() > kKeepFds) f.fd.reset();  // reopened through ".." on the way up
      stack.push_back(Frame{entry.name, got, std::move(child), {}, 0, area, box});
      return list_top(stack);
    }
    if (!S_ISREG(st.mode)) {
      if (!S_ISLNK(st.mode)) out_->special_skipped++;
      count(at, other_bytes(st));
      return {};
    }
    if (st.nlink > 1 && !links_.insert({st.dev_major, st.dev_minor, st.ino}).second) {
      out_->hard_links_skipped++;  // du's rule: a file counts once, under its first name
      return {};
    }
    UsageBytes b = other_bytes(st);
    if (st.blocks == 0) {
      count(at, b);
      return {};
    }
    Fd fd(::openat(f.fd.get(), entry.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) {
      return errno == ENOENT || errno == ELOOP ? Error{} : fail_errno("openat", display(stack, entry.name));
    }
    // Checked before the ioctl: FIEMAP goes to regular files only, never to
    // whatever a racing writer put under the name.
    FileStat now;
    if (Error e = stat_at(fd.get(), "", false, &now, std::string())) {
      e.path = display(stack, entry.name);
      return e;
    }
    if (!S_ISREG(now.mode) || !same_inode(now, st)) return {};  // swapped meanwhile
    b.apparent = now.size;
    b.allocated = now.blocks * 512;
    FileExtents extents(&seen_);
    bool known = false;
    if (Error e = file_extents(fd.get(), std::string(), &extents, &known)) {
      e.path = display(stack, entry.name);
      return e;
    }
    if (!known) out_->extents_known = false;
    b.shared = std::min(extents.shared(), b.allocated);
    b.exclusive = b.allocated - b.shared;
    b.physical = b.exclusive + std::min(extents.first_seen(), b.shared);
    count(at, b);
    return {};
  }

  const std::string& home_;
  const UsageProgress& progress_;
  DiskUsage* out_;
  RangeSet seen_;
  std::set<std::tuple<uint32_t, uint32_t, uint64_t>> links_;
};

}  // namespace

Error disk_usage(const std::string& home, const UsageProgress& progress, DiskUsage* out) {
  *out = DiskUsage{};
  OwnedDir root;
  if (Error e = open_root(home, false, 0, Trust::kCheck, &root, nullptr)) {
    if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
    return e;
  }
  FileStat root_st;
  if (Error e = stat_at(root.get(), "", false, &root_st, home)) return e;
  struct statvfs vfs;
  if (::fstatvfs(root.get(), &vfs) != 0) return fail_errno("fstatvfs", home);
  out->fs_size_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  out->fs_used_bytes = static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  Scanner scanner(home, progress, out);
  return scanner.run(std::move(root.fd), root_st);
}

}  // namespace blx
