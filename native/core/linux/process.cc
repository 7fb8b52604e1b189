// Process start times for Linux: field 22 of /proc/PID/stat, the
// fingerprint that tells a live shim from a recycled pid.
#include <fcntl.h>

#include "../internal.h"

namespace blx {

std::string start_time_of_stat(const std::string& stat) {
  // comm (field 2) is in parentheses and may itself hold spaces and ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  size_t pos = close + 2;  // field 3
  for (int field = 3; field < 22; field++) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) return {};
    pos++;
  }
  size_t end = stat.find(' ', pos);
  return stat.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

std::string process_start_time(int64_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return {};
  char buf[1024];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return start_time_of_stat(std::string(buf, static_cast<size_t>(n)));
}

std::string darwin_user_cache_dir() { return {}; }

}  // namespace blx
