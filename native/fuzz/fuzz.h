// What the fuzz targets share: a private scratch directory (removed at
// exit), a check that aborts with a message (libFuzzer keeps the input), and
// files written whole.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../core/internal.h"

namespace fuzz {

// A finding: print what was expected and abort, so libFuzzer saves the input.
#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "" __VA_ARGS__);                                                \
      std::fprintf(stderr, "\n");                                                          \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

// This process's scratch directory, made on first use under
// $BLX_FUZZ_SCRATCH (the runner's, removed by it) or /tmp, and removed with
// everything in it at exit.
inline const std::string& scratch() {
  // Never destroyed: the atexit handler below runs after static destructors
  // registered later.
  static const std::string& dir = *new std::string([] {
    const char* parent = std::getenv("BLX_FUZZ_SCRATCH");
    std::string tmpl = std::string(parent != nullptr && *parent != '\0' ? parent : "/tmp") + "/blx-fuzz-XXXXXX";
    if (::mkdtemp(&tmpl[0]) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    std::atexit([] {
      blx::RemoveStats stats;
      std::string parent_dir, name;
      blx::split_path(scratch(), &parent_dir, &name);
      blx::Fd at(::open(parent_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (at.valid()) blx::remove_tree_at(blx::Dir{at.get(), parent_dir}, name, false, &stats);
    });
    return tmpl;
  }());
  return dir;
}

// dirfd/name replaced by exactly data (0600).
inline void write_file(int dirfd, const std::string& name, const std::string& data) {
  blx::Fd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  FUZZ_CHECK(fd.valid(), "cannot create %s", name.c_str());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    FUZZ_CHECK(n > 0, "cannot write %s", name.c_str());
    off += static_cast<size_t>(n);
  }
}

// The fds open now, pipes left out (the sanitizers' symbolizer talks over
// pipes it opens whenever it likes; the code under test opens none).
inline int open_fds() {
  int n = 0;
  const std::string path = "/proc/self/fd";
  blx::Fd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::vector<blx::DirEntry> entries;
  FUZZ_CHECK(dir.valid() && !blx::list_dir(blx::Dir{dir.get(), path}, &entries));
  for (const blx::DirEntry& e : entries) {
    std::string target;
    if (blx::read_link_at(dir.get(), e.name.c_str(), &target) && target.compare(0, 5, "pipe:") != 0) n++;
  }
  return n;
}

// Aborts when more fds are open than at the first call: an fd leaked by
// the code under test.
inline void check_no_fd_leak() {
  static const int first = open_fds();
  const int now = open_fds();
  FUZZ_CHECK(now <= first, "an fd leaked (%d open, was %d)", now, first);
}

}  // namespace fuzz
