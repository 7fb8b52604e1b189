// Filesystem facts on operator paths, the same on every POSIX system around
// the platform's probe(): one call for N paths, FIEMAP through an fd.
#include <fcntl.h>

#include "../internal.h"

namespace blx {

Error same_filesystem(const std::vector<std::string>& paths, std::vector<Device>* devices) {
  devices->clear();
  for (const std::string& p : paths) {
    FileStat st;
    if (Error e = stat_at(AT_FDCWD, p.c_str(), true, &st, p)) return e;
    devices->push_back(Device{st.dev_major, st.dev_minor});
  }
  return {};
}

Error extents_shared(const std::string& path, int* out) {
  *out = -1;
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("open", path);
  return extents_shared_fd(fd.get(), path, out);
}

}  // namespace blx
