// The getdents64 walk (parse_dirents, list_dir), hand-written. Directory
// entry names are anyone's who can write the directory (a guest, a shim).
// Three modes, by the first byte:
//  0: the rest is a raw buffer: no read outside it, no endless loop, and
//     every entry reported is a real name (not empty, no NUL, not . or ..);
//  1: entries built from the input are laid out as the kernel lays them out
//     and must parse back exactly, in order;
//  2: names from the input are created in a private scratch directory and
//     list_dir must report exactly them.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "fuzz.h"

namespace {

std::vector<std::string> names_of(const uint8_t* data, size_t size, size_t max) {
  std::vector<std::string> out;
  for (size_t at = 0; at < size && out.size() < max;) {
    size_t n = std::min<size_t>(data[at], size - at - 1);
    out.emplace_back(reinterpret_cast<const char*>(data) + at + 1, n);
    at += 1 + n;
  }
  return out;
}

int listing_dir() {
  static const int fd = [] {
    std::string dir = fuzz::scratch() + "/listing";
    FUZZ_CHECK(::mkdir(dir.c_str(), 0700) == 0);
    return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }();
  FUZZ_CHECK(fd >= 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  data++;
  size--;
  std::vector<blx::DirEntry> got;
  if (mode == 0) {
    // A copy exactly as long as the input, so ASan sees any read past it.
    std::vector<char> buf(data, data + size);
    if (blx::parse_dirents(buf.data(), buf.size(), &got)) {
      for (const blx::DirEntry& d : got) {
        FUZZ_CHECK(!d.name.empty() && d.name.find('\0') == std::string::npos && d.name != "." && d.name != "..");
      }
    }
    return 0;
  }
  if (mode == 1) {
    std::vector<std::string> names = names_of(data, size, 64);
    std::vector<char> buf;
    std::vector<std::string> want;
    for (size_t i = 0; i < names.size(); i++) {
      std::string name = names[i].substr(0, names[i].find('\0'));
      if (name.empty()) continue;
      const size_t reclen = (19 + name.size() + 1 + 7) / 8 * 8;
      std::vector<char> rec(reclen, 0);
      uint64_t ino = i + 1;
      int64_t off = static_cast<int64_t>(i + 1);
      unsigned short len = static_cast<unsigned short>(reclen);
      std::memcpy(rec.data(), &ino, 8);
      std::memcpy(rec.data() + 8, &off, 8);
      std::memcpy(rec.data() + 16, &len, 2);
      rec[18] = static_cast<char>(i % 16);
      std::memcpy(rec.data() + 19, name.data(), name.size());
      buf.insert(buf.end(), rec.begin(), rec.end());
      if (name != "." && name != "..") want.push_back(name);
    }
    FUZZ_CHECK(blx::parse_dirents(buf.data(), buf.size(), &got), "a well-formed buffer refused");
    FUZZ_CHECK(got.size() == want.size());
    for (size_t i = 0; i < got.size(); i++) FUZZ_CHECK(got[i].name == want[i]);
    return 0;
  }
  const int dir = listing_dir();
  fuzz::check_no_fd_leak();
  std::set<std::string> want;
  for (const std::string& n : names_of(data, size, 200)) {
    if (!blx::is_plain_name(n) || n.find('\0') != std::string::npos) continue;
    if (want.insert(n).second) {
      blx::Fd fd(::openat(dir, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      FUZZ_CHECK(fd.valid(), "create");
    }
  }
  blx::Fd fresh(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  const std::string listing = "listing";
  FUZZ_CHECK(!blx::list_dir(blx::Dir{fresh.get(), listing}, &got));
  std::set<std::string> seen;
  for (const blx::DirEntry& d : got) {
    FUZZ_CHECK(d.type == DT_REG || d.type == DT_UNKNOWN);
    seen.insert(d.name);
  }
  FUZZ_CHECK(seen == want && got.size() == want.size(), "listed %zu, created %zu", got.size(), want.size());
  for (const std::string& n : want) FUZZ_CHECK(::unlinkat(dir, n.c_str(), 0) == 0);
  fresh.reset();
  fuzz::check_no_fd_leak();
  return 0;
}
