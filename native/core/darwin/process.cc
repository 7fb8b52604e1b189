// macOS keeps no start-time fingerprint the layout could check: identities
// there are judged on liveness alone (reported as legacy).
#include <unistd.h>

#include "../internal.h"

namespace blx {

std::string process_start_time(int64_t) { return {}; }

std::string darwin_user_cache_dir() {
  char buf[1024];
  size_t n = ::confstr(_CS_DARWIN_USER_CACHE_DIR, buf, sizeof buf);
  if (n == 0 || n > sizeof buf) return {};
  return macos_canonical(buf);
}

}  // namespace blx
