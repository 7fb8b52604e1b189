// boot/: custom-kernel generations, the directory a jailed shim reads
// (granted read-only). A publish builds a complete generation aside and
// makes it current with two renames, each made durable (fsync of the files
// and of every directory a rename changed), so a crash at any point leaves
// current.json naming the old generation or the new one, never a torn one.
// Leftovers of an interrupted publish (.staging-*, .current.json-*.staging,
// generations current.json does not name) are removed by the next publish;
// gc removes the staging ones.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../internal.h"

namespace blx {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
constexpr size_t kManifestCap = 4096;
const char kManifest[] = "current.json";
const char kGenerations[] = "generations";
const char kStagingPrefix[] = ".staging-";

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4): the checksum BoxLite records for each staged file.

class Sha256 {
 public:
  void update(const unsigned char* p, size_t n) {
    total_ += n;
    while (n > 0) {
      size_t take = std::min(n, sizeof block_ - used_);
      std::memcpy(block_ + used_, p, take);
      used_ += take;
      p += take;
      n -= take;
      if (used_ == sizeof block_) {
        compress(block_);
        used_ = 0;
      }
    }
  }

  // "sha256:" + 64 lowercase hex.
  std::string hex() {
    uint64_t bits = total_ * 8;
    unsigned char pad = 0x80;
    update(&pad, 1);
    unsigned char zero = 0;
    while (used_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char digits[] = "0123456789abcdef";
    std::string out = "sha256:";
    for (uint32_t v : h_) {
      for (int shift = 28; shift >= 0; shift -= 4) out += digits[(v >> shift) & 15];
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const unsigned char* b) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
      w[i] = (uint32_t{b[4 * i]} << 24) | (uint32_t{b[4 * i + 1]} << 16) | (uint32_t{b[4 * i + 2]} << 8) |
             uint32_t{b[4 * i + 3]};
    }
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block_[64] = {};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

Error hash_fd(int fd, const std::string& display, std::string* out) {
  static constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk, '\0');
  Sha256 sha;
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, &buf[0], kChunk, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", display);
    }
    if (n == 0) break;
    sha.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<size_t>(n));
    offset += n;
  }
  *out = sha.hex();
  return {};
}

// dir/name, never followed, a regular file (opened O_NONBLOCK: a FIFO
// planted there answers instead of hanging).
Error open_regular_at(Dir dir, const char* name, Fd* out, FileStat* st) {
  const std::string display = dir.child(name);
  Fd fd(::openat(dir.fd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ELOOP) return fail_reason(ELOOP, Reason::kSymlink, "open", display);
    return fail_errno("open", display);
  }
  if (Error e = stat_at(fd.get(), "", false, st, display)) return e;
  if (!S_ISREG(st->mode)) return fail_reason(EINVAL, Reason::kNotRegularFile, "open", display, st->mode & S_IFMT);
  *out = std::move(fd);
  return {};
}

Error hash_at(Dir dir, const char* name, std::string* out) {
  Fd fd;
  FileStat st;
  if (Error e = open_regular_at(dir, name, &fd, &st)) return e;
  return hash_fd(fd.get(), dir.child(name), out);
}

Error sync_fd(int fd, const std::string& display) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return fail_errno("fsync", display);
  }
  return {};
}

// 12 characters of [A-Za-z0-9_-] (nanoid's alphabet and BoxLite's length):
// 64 symbols, so 6 random bits each, without bias.
std::string new_generation_name() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  unsigned char bytes[12];
  random_bytes(bytes, sizeof bytes);
  std::string s;
  for (unsigned char b : bytes) s += alphabet[b & 63];
  return s;
}

bool is_publish_leftover(const std::string& name) {
  const std::string manifest_tmp = std::string(".") + kManifest + "-";
  const std::string staged = ".staging";
  return name.compare(0, std::strlen(kStagingPrefix), kStagingPrefix) == 0 ||
         (name.compare(0, manifest_tmp.size(), manifest_tmp) == 0 &&
          name.size() > manifest_tmp.size() + staged.size() &&
          name.compare(name.size() - staged.size(), staged.size(), staged) == 0);
}

// One copy into the staging dir: cloned where the filesystem can, given the
// source's mode without group/other write, made durable, then hashed.
Error stage_file(int src_fd, const FileStat& src_st, const std::string& src_display, Dir staging, const char* name,
                 BootStaged* out) {
  const std::string dst = staging.child(name);
  Fd copy;
  if (Error e = clone_into(src_fd, src_st, staging.fd, name, CloneMode::kAuto, src_display, dst, &out->method, &copy)) {
    return e;
  }
  if (::fchmod(copy.get(), static_cast<mode_t>(src_st.mode & 07777 & ~022u)) != 0) return fail_errno("fchmod", dst);
  if (Error e = sync_fd(copy.get(), dst)) return e;
  out->bytes = src_st.size;
  return hash_at(staging, name, &out->sha256);
}

std::string manifest_text(const std::string& gen, const std::string& format, const std::string& kernel_sha,
                          const std::string* initramfs_sha) {
  // BoxLite's bytes: pretty-printed, two-space indent, keys in this order,
  // no trailing newline; initramfs_sha256 omitted when there is none.
  std::string s = "{\n  \"version\": 1,\n  \"generation\": \"" + gen + "\",\n  \"format\": \"" + format +
                  "\",\n  \"kernel_sha256\": \"" + kernel_sha + "\"";
  if (initramfs_sha != nullptr) s += ",\n  \"initramfs_sha256\": \"" + *initramfs_sha + "\"";
  return s + "\n}";
}

bool is_format_token(const std::string& f) {
  return !f.empty() && f.size() <= 32 &&
         f.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

}  // namespace

bool is_generation_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::string manifest_generation(const std::string& text) {
  // The one "generation" key's string value, when it is a valid name. A
  // second occurrence anywhere (a duplicate key, where JSON parsers differ
  // on which wins) names nothing; the facade parses the whole manifest and
  // requires the same name.
  static const std::string kKey = "\"generation\"";
  size_t at = text.find(kKey);
  if (at == std::string::npos || text.find(kKey, at + 1) != std::string::npos) return {};
  size_t i = at + kKey.size();
  auto skip_space = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) i++;
  };
  skip_space();
  if (i >= text.size() || text[i] != ':') return {};
  i++;
  skip_space();
  if (i >= text.size() || text[i] != '"') return {};
  size_t end = text.find('"', i + 1);
  if (end == std::string::npos) return {};
  std::string name = text.substr(i + 1, end - i - 1);
  return is_generation_name(name) ? name : std::string();
}

Error boot_publish(const BoxRef& ref, const BootSources& src, const std::string& format, bool may_block,
                   BootPublishResult* out) {
  *out = BootPublishResult{};
  if (!is_format_token(format)) return fail(EINVAL, "write", format);
  // The sources first (operator paths, followed, regular files only): bad
  // input leaves nothing behind. Legacy migration reads boot/kernel and
  // boot/initramfs instead, beneath the box, once it is open.
  struct Source {
    Fd fd;
    FileStat st;
    std::string display;
  } kernel, initramfs;
  auto open_operator = [](const std::string& path, Source* s) -> Error {
    s->display = path;
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("open", path);
    if (Error e = stat_at(fd.get(), "", false, &s->st, path)) return e;
    if (!S_ISREG(s->st.mode)) {
      return fail_reason(S_ISDIR(s->st.mode) ? EISDIR : EINVAL, Reason::kNotRegularFile, "open", path,
                         s->st.mode & S_IFMT);
    }
    s->fd = std::move(fd);
    return {};
  };
  bool with_initramfs = false;
  if (!src.legacy) {
    if (Error e = open_operator(src.kernel, &kernel)) return e;
    with_initramfs = !src.initramfs.empty();
    if (with_initramfs) {
      if (Error e = open_operator(src.initramfs, &initramfs)) return e;
    }
  }

  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir boot;
  if (Error e = make_dir_beneath(d.box, "boot", 0755, Trust::kNone, &boot, nullptr)) return e;
  out->boot_dir = boot.path;
  OwnedDir generations;
  if (Error e = make_dir_beneath(boot, kGenerations, 0755, Trust::kNone, &generations, nullptr)) return e;

  if (src.legacy) {
    if (Error e = open_regular_at(boot, "kernel", &kernel.fd, &kernel.st)) return e;
    kernel.display = boot.child("kernel");
    initramfs.display = boot.child("initramfs");
    Error ie = open_regular_at(boot, "initramfs", &initramfs.fd, &initramfs.st);
    if (ie && ie.code != ENOENT) return ie;
    with_initramfs = !ie;
  }

  // Leftovers of an interrupted publish: we hold the box lock, so none is
  // in progress.
  std::vector<DirEntry> entries;
  if (Error e = list_dir(boot, &entries)) return e;
  for (const DirEntry& entry : entries) {
    if (!is_publish_leftover(entry.name)) continue;
    RemoveStats stats;
    if (Error e = remove_tree_at(boot, entry.name, false, &stats)) return e;
    out->leftovers_removed.push_back(entry.name);
  }

  const std::string gen = new_generation_name();
  out->generation = gen;
  const std::string staging_name = kStagingPrefix + gen;
  const std::string staging_display = boot.child(staging_name);
  const std::string manifest_tmp = std::string(".") + kManifest + "-" + gen + ".staging";
  bool renamed = false;
  auto undo = [&](Error e) {
    RemoveStats stats;
    remove_tree_at(boot, staging_name, false, &stats);
    if (renamed) remove_tree_at(generations, gen, false, &stats);
    ::unlinkat(boot.get(), manifest_tmp.c_str(), 0);
    return e;
  };

  if (::mkdirat(boot.get(), staging_name.c_str(), 0700) != 0) return fail_errno("mkdir", staging_display);
  OwnedDir staging{Fd(::openat(boot.get(), staging_name.c_str(), kDirFlags)), staging_display};
  if (!staging.valid()) return undo(fail_errno("open", staging_display));
  if (::fchmod(staging.get(), 0755) != 0) return undo(fail_errno("fchmod", staging_display));
  if (Error e = stage_file(kernel.fd.get(), kernel.st, kernel.display, staging, "kernel", &out->kernel)) {
    return undo(e);
  }
  if (with_initramfs) {
    out->has_initramfs = true;
    if (Error e =
            stage_file(initramfs.fd.get(), initramfs.st, initramfs.display, staging, "initramfs", &out->initramfs)) {
      return undo(e);
    }
  }
  if (Error e = sync_fd(staging.get(), staging.path)) return undo(e);

  // The complete generation appears under its name in one step.
  const std::string gen_display = generations.child(gen);
  if (::renameat(boot.get(), staging_name.c_str(), generations.get(), gen.c_str()) != 0) {
    return undo(fail_errno("rename", staging_display, gen_display));
  }
  renamed = true;
  if (Error e = sync_fd(generations.get(), generations.path)) return undo(e);
  if (Error e = sync_fd(boot.get(), boot.path)) return undo(e);

  // current.json switches to it in one step, durably.
  out->manifest = manifest_text(gen, format, out->kernel.sha256, with_initramfs ? &out->initramfs.sha256 : nullptr);
  const std::string manifest_display = boot.child(kManifest);
  {
    Fd fd(::openat(boot.get(), manifest_tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return undo(fail_errno("open", boot.child(manifest_tmp)));
    size_t done = 0;
    while (done < out->manifest.size()) {
      ssize_t n = ::write(fd.get(), out->manifest.data() + done, out->manifest.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return undo(fail_errno("write", manifest_display));
      }
      done += static_cast<size_t>(n);
    }
    if (::fchmod(fd.get(), 0644) != 0) return undo(fail_errno("fchmod", manifest_display));
    if (Error e = sync_fd(fd.get(), manifest_display)) return undo(e);
  }
  if (::renameat(boot.get(), manifest_tmp.c_str(), boot.get(), kManifest) != 0) {
    return undo(fail_errno("rename", boot.child(manifest_tmp), manifest_display));
  }
  if (Error e = sync_fd(boot.get(), boot.path)) {
    // The switch happened; only its durability is in doubt. The new
    // generation stays: current.json names it.
    return e;
  }

  // Published. What follows only tidies: its failure is reported, never
  // thrown (the new generation is current either way), and the next
  // publish tries again.
  std::vector<DirEntry> old;
  Error prune;
  if (Error e = list_dir(generations, &old)) prune = e;
  for (const DirEntry& entry : old) {
    if (prune || entry.name == gen) continue;
    FileStat st;
    if (Error e = stat_at(generations.get(), entry.name.c_str(), false, &st, generations.child(entry.name))) {
      prune = e;
      continue;
    }
    if (!S_ISDIR(st.mode)) continue;  // not ours to judge: left alone
    RemoveStats stats;
    if (Error e = remove_tree_at(generations, entry.name, false, &stats)) {
      prune = e;
      continue;
    }
    out->pruned.push_back(entry.name);
  }
  for (const char* legacy : {"kernel", "initramfs"}) {
    if (prune) break;
    if (::unlinkat(boot.get(), legacy, 0) == 0) {
      out->legacy_removed.push_back(legacy);
    } else if (errno != ENOENT) {
      prune = fail_errno("unlink", boot.child(legacy));
    }
  }
  if (!prune) prune = sync_fd(generations.get(), generations.path);
  if (!prune) prune = sync_fd(boot.get(), boot.path);
  out->prune_error = prune;
  return {};
}

Error boot_read(const BoxRef& ref, BootRead* out) {
  *out = BootRead{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, false, false, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir boot;
  if (Error e = open_dir_beneath(d.box, "boot", Trust::kNone, &boot, nullptr)) return e.code == ENOENT ? Error{} : e;
  if (Error e = read_regular_beneath(boot, kManifest, kManifestCap, &out->manifest, &out->present)) return e;
  if (!out->present) {
    for (const char* legacy : {"kernel", "initramfs"}) {
      FileStat st;
      Error e = stat_at(boot.get(), legacy, false, &st, boot.child(legacy));
      if (e && e.code != ENOENT) return e;
      if (!e) out->legacy.push_back(legacy);
    }
    return {};
  }
  out->generation = manifest_generation(out->manifest);
  if (out->generation.empty()) return {};  // the facade names what is wrong
  const std::string gen_rel = std::string(kGenerations) + "/" + out->generation;
  OwnedDir gen;
  if (Error e = open_dir_beneath(boot, gen_rel, Trust::kNone, &gen, nullptr)) return e;
  if (Error e = hash_at(gen, "kernel", &out->kernel_sha256)) return e;
  Error ie = hash_at(gen, "initramfs", &out->initramfs_sha256);
  if (ie && ie.code != ENOENT) return ie;
  out->has_initramfs = !ie;
  return {};
}

Error boot_leftovers(Dir box, std::vector<std::string>* out) {
  OwnedDir boot;
  if (Error e = open_dir_beneath(box, "boot", Trust::kNone, &boot, nullptr)) return e.code == ENOENT ? Error{} : e;
  std::vector<DirEntry> entries;
  if (Error e = list_dir(boot, &entries)) return e;
  for (const DirEntry& entry : entries) {
    if (is_publish_leftover(entry.name)) out->push_back(entry.name);
  }
  std::sort(out->begin(), out->end());
  return {};
}

}  // namespace blx
