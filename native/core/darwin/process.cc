// Process start times for macOS: proc_pidinfo(PROC_PIDTBSDINFO), the
// fingerprint that tells a live shim from a recycled pid (macOS reuses pids
// below 99999). Written as BoxLite writes it on macOS:
// pbi_start_tvsec * 1000000 + pbi_start_tvusec, microseconds since the epoch.
#include <libproc.h>
#include <sys/proc_info.h>
#include <unistd.h>

#include "../internal.h"

namespace blx {

std::string process_start_time(int64_t pid) {
  if (pid <= 0 || pid > 0x7fffffff) return {};
  struct proc_bsdinfo info;
  // It returns the bytes filled: anything short of the struct is a process
  // gone, or one we may not look at (then "" reads as unknown).
  int n = ::proc_pidinfo(static_cast<int>(pid), PROC_PIDTBSDINFO, 0, &info, sizeof info);
  if (n != static_cast<int>(sizeof info)) return {};
  return std::to_string(info.pbi_start_tvsec * 1000000u + info.pbi_start_tvusec);
}

std::string darwin_user_cache_dir() {
  char buf[1024];
  size_t n = ::confstr(_CS_DARWIN_USER_CACHE_DIR, buf, sizeof buf);
  if (n == 0 || n > sizeof buf) return {};
  return macos_canonical(buf);
}

}  // namespace blx
