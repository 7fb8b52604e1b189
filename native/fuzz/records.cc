// Pid files and exit records as a shim or guest leaves them: any bytes at
// shim.pid and exit in a private scratch directory, read back through
// pid_read and file_read (the caps BoxLite's readers use); then pid_write's
// own format read back. Also pid_of_text against a model of the facade's
// parser (String.prototype.trim, then the digits of line 1).
#include <cstring>

#include "fuzz.h"

namespace {

constexpr size_t kPidCap = 4096;
constexpr size_t kExitCap = 64 * 1024;

// Whitespace String.prototype.trim removes, as UTF-8 (line 1 has no "\n").
const char* const kSpaces[] = {" ",
                               "\t",
                               "\v",
                               "\f",
                               "\r",
                               "\xc2\xa0",
                               "\xe1\x9a\x80",
                               "\xe2\x80\x80",
                               "\xe2\x80\x81",
                               "\xe2\x80\x82",
                               "\xe2\x80\x83",
                               "\xe2\x80\x84",
                               "\xe2\x80\x85",
                               "\xe2\x80\x86",
                               "\xe2\x80\x87",
                               "\xe2\x80\x88",
                               "\xe2\x80\x89",
                               "\xe2\x80\x8a",
                               "\xe2\x80\xa8",
                               "\xe2\x80\xa9",
                               "\xe2\x80\xaf",
                               "\xe2\x81\x9f",
                               "\xe3\x80\x80",
                               "\xef\xbb\xbf"};

int64_t model_pid(const std::string& text) {
  size_t i = 0;
  for (bool more = true; more;) {
    more = false;
    for (const char* s : kSpaces) {
      if (text.compare(i, std::strlen(s), s) == 0) {
        i += std::strlen(s);
        more = true;
        break;
      }
    }
  }
  size_t end = i;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') end++;
  // Leading zeros are harmless here (the facade refuses them); the value is
  // what counts, and it must be a pid: 1..2^31-1.
  size_t first = i;
  while (first < end && text[first] == '0') first++;
  if (end == i || end - first > 10) return -1;
  int64_t v = first == end ? 0 : std::stoll(text.substr(first, end - first));
  return v >= 1 && v <= 0x7fffffff ? v : -1;
}

const blx::DirRef& dir() {
  static const blx::DirRef ref{fuzz::scratch(), ""};
  return ref;
}

int dir_fd() {
  static const int fd = ::open(fuzz::scratch().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(blx::pid_of_text(bytes) == model_pid(bytes), "pid_of_text %lld, model %lld",
             static_cast<long long>(blx::pid_of_text(bytes)), static_cast<long long>(model_pid(bytes)));
  const int fd = dir_fd();
  fuzz::check_no_fd_leak();

  // shim.pid as the shim left it.
  fuzz::write_file(fd, "shim.pid", bytes);
  blx::PidRead pid;
  blx::Error e = blx::pid_read(dir(), "shim.pid", &pid);
  if (size > kPidCap) {
    FUZZ_CHECK(e && e.reason == blx::Reason::kTooLarge, "a %zu-byte pid file read", size);
  } else {
    FUZZ_CHECK(!e && pid.present && pid.text == bytes, "errno %d", e.code);
    FUZZ_CHECK(pid.pid == model_pid(bytes));
    if (pid.pid < 0) FUZZ_CHECK(!pid.process.alive && pid.process.start_time.empty());
  }

  // exit as the shim left it, and rotated the way the facade rotates it.
  fuzz::write_file(fd, "exit", bytes);
  std::string text;
  bool present = false;
  e = blx::file_read(dir(), "exit", kExitCap, &text, &present);
  if (size > kExitCap) {
    FUZZ_CHECK(e && e.reason == blx::Reason::kTooLarge);
  } else {
    FUZZ_CHECK(!e && present && text == bytes, "errno %d", e.code);
  }
  bool renamed = false;
  FUZZ_CHECK(!blx::file_rename(dir(), "exit", "exit.previous", &renamed) && renamed);
  FUZZ_CHECK(!blx::file_read(dir(), "exit", kExitCap, &text, &present) && !present);

  // Our own writes read back: an atomic write of the bytes, and pid_write's
  // format with capability lines cut from the input.
  FUZZ_CHECK(!blx::file_write(dir(), "exit", bytes, 0644));
  FUZZ_CHECK(!blx::file_read(dir(), "exit", size + 1, &text, &present) && present && text == bytes);
  std::vector<std::string> caps;
  for (size_t a = 0; a < size && caps.size() < 4;) {
    size_t b = bytes.find_first_of("\n\r", a);
    if (b == std::string::npos) b = size;
    caps.push_back(bytes.substr(a, std::min<size_t>(b - a, 64)));
    a = b + 1;
  }
  const int64_t self = ::getpid();
  std::string start;
  FUZZ_CHECK(!blx::pid_write(dir(), "shim.pid", self, caps, &start));
  FUZZ_CHECK(!start.empty(), "no start time for this process");
  FUZZ_CHECK(!blx::pid_read(dir(), "shim.pid", &pid) && pid.pid == self && pid.process.alive &&
             pid.process.start_time == start);
  std::string expected = std::to_string(self) + "\n" + start + "\n";
  for (const std::string& c : caps) expected += c + "\n";
  FUZZ_CHECK(pid.text == expected || expected.size() > kPidCap);
  fuzz::check_no_fd_leak();
  return 0;
}
