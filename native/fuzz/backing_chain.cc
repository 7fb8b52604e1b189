// read_backing_chain over images whose headers are the fuzzer's: files are
// written to disks/ in a private scratch directory (the process's cwd) and
// the box image is the first. Input: repeated [u8 name length][name][u32
// big-endian data length][data]. The harness keeps the walk inside the
// scratch directory: an input naming a backing file outside it ("..", or an
// absolute path other than /proc/self/cwd/...) is skipped, because the code
// under test would open that host path.
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "fuzz.h"

namespace {

struct File {
  std::string name, data;
};

bool has_dotdot(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

// The backing name as QEMU's header gives it ("" when none), read apart
// from the code under test; qcow2_header.cc checks the two agree.
std::string named_backing(const std::string& d) {
  if (d.size() < 20 || d.compare(0, 4, "QFI\xfb") != 0) return {};
  uint64_t off = 0, len = 0;
  for (int i = 8; i < 16; i++) off = (off << 8) | static_cast<uint8_t>(d[i]);
  for (int i = 16; i < 20; i++) len = (len << 8) | static_cast<uint8_t>(d[i]);
  if (off == 0 || len == 0 || off > d.size() || len > d.size() - off) return {};
  return d.substr(off, len);
}

bool stays_inside(const std::string& backing) {
  if (has_dotdot(backing)) return false;
  return backing.empty() || backing[0] != '/' || backing.compare(0, 15, "/proc/self/cwd/") == 0;
}

int disks_fd() {
  static const int fd = [] {
    FUZZ_CHECK(::chdir(fuzz::scratch().c_str()) == 0, "chdir");
    FUZZ_CHECK(::mkdir("disks", 0700) == 0, "mkdir disks");
    return ::open("disks", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }();
  FUZZ_CHECK(fd >= 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int dir = disks_fd();
  fuzz::check_no_fd_leak();
  std::vector<File> files;
  size_t at = 0;
  while (at < size && files.size() < 20) {
    size_t n = data[at++];
    if (size - at < n + 4) break;
    File f;
    f.name.assign(reinterpret_cast<const char*>(data) + at, n);
    at += n;
    uint32_t len = 0;
    for (int i = 0; i < 4; i++) len = (len << 8) | data[at++];
    len = static_cast<uint32_t>(std::min<size_t>(len, size - at));
    f.data.assign(reinterpret_cast<const char*>(data) + at, len);
    at += len;
    if (!blx::is_plain_name(f.name) || f.name.find('\0') != std::string::npos) return 0;
    if (!stays_inside(named_backing(f.data))) return 0;
    for (const File& g : files) {
      if (g.name == f.name) return 0;
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) return 0;
  for (const File& f : files) fuzz::write_file(dir, f.name, f.data);

  blx::BackingChain chain;
  chain.image = "disks/" + files[0].name;
  const std::string disks = "disks";
  blx::read_backing_chain(blx::Dir{dir, disks}, files[0].name.c_str(), &chain);

  FUZZ_CHECK(chain.files.size() <= 17, "a chain of %zu files", chain.files.size());
  FUZZ_CHECK(chain.real.size() == chain.files.size() || chain.real.size() + 1 == chain.files.size());
  if (chain.files.size() == 17) FUZZ_CHECK(chain.error && chain.error.reason == blx::Reason::kBackingChain);
  if (chain.error.code == ELOOP) FUZZ_CHECK(chain.error.reason == blx::Reason::kBackingChain);
  for (const std::string& f : chain.files) FUZZ_CHECK(f.find('\0') == std::string::npos, "a name with a NUL");
  for (const std::string& r : chain.real) {
    FUZZ_CHECK(r.compare(0, fuzz::scratch().size() + 1, fuzz::scratch() + "/") == 0, "left the scratch dir: %s",
               r.c_str());
  }
  if (!chain.error && !chain.files.empty()) {
    // The chain ends at a file that names no backing file.
    FUZZ_CHECK(chain.real.size() == chain.files.size());
  }
  for (const File& f : files) FUZZ_CHECK(::unlinkat(dir, f.name.c_str(), 0) == 0, "unlink");
  fuzz::check_no_fd_leak();
  return 0;
}
