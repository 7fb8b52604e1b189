// Small files of a box that a shim or guest can reach: shim.pid, exit,
// exit.previous. Read without blocking and with a cap, written atomically,
// all beneath the directory fd of their DirRef.
#include <fcntl.h>

#include <cerrno>
#include <csignal>

#include "../internal.h"

namespace blx {

namespace {

constexpr size_t kPidFileCap = 4096;
#ifdef __linux__
constexpr bool kProcessStartTimes = true;
#else
constexpr bool kProcessStartTimes = false;
#endif

Error check_name(const DirRef& dir, const std::string& name) {
  if (is_plain_name(name)) return {};
  return fail(EINVAL, "openat", join_path(join_path(dir.root, dir.rel), name));
}

}  // namespace

Error file_read(const DirRef& dir, const std::string& name, size_t cap, std::string* out, bool* present) {
  *present = false;
  if (Error e = check_name(dir, name)) return e;
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e.code == ENOENT ? Error{} : e;
  return read_regular_beneath(held, name, cap, out, present);
}

Error file_write(const DirRef& dir, const std::string& name, const std::string& data, mode_t mode) {
  if (Error e = check_name(dir, name)) return e;
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e;
  return write_atomic_at(held, name, data, mode);
}

Error file_rename(const DirRef& dir, const std::string& from, const std::string& to, bool* renamed) {
  *renamed = false;
  if (Error e = check_name(dir, from)) return e;
  if (Error e = check_name(dir, to)) return e;
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e.code == ENOENT ? Error{} : e;
  if (::renameat(held.get(), from.c_str(), held.get(), to.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("rename", held.child(from), held.child(to));
  }
  *renamed = true;
  return {};
}

Error file_remove(const DirRef& dir, const std::string& name, bool* removed) {
  *removed = false;
  if (Error e = check_name(dir, name)) return e;
  OwnedDir held;
  if (Error e = open_dir_ref(dir, false, &held)) return e.code == ENOENT ? Error{} : e;
  if (::unlinkat(held.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("unlink", held.child(name));
  }
  *removed = true;
  return {};
}

void process_facts(int64_t pid, ProcessFacts* out) {
  *out = ProcessFacts{};
  if (pid <= 0 || pid > 0x7fffffff) return;
  // EPERM: it exists, it is just not ours to signal.
  out->alive = ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
  if (out->alive) out->start_time = process_start_time(pid);
}

namespace {

// The length of the whitespace starting at text[i] as the facade's parser
// (String.prototype.trim) sees it, UTF-8 encoded; 0 when there is none. Both
// must read the same pid out of line 1, or a live shim's box would be
// judged by another process (or by none) and gc would unmount it.
size_t space_at(const std::string& text, size_t i) {
  const char c = text[i];
  if (c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r') return 1;
  // U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF
  auto byte = [&](size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u; };
  const unsigned b0 = byte(0), b1 = byte(1), b2 = byte(2);
  if (b0 == 0xc2 && b1 == 0xa0) return 2;
  if (b0 == 0xe1 && b1 == 0x9a && b2 == 0x80) return 3;
  if (b0 == 0xe2 && b1 == 0x80 && ((b2 >= 0x80 && b2 <= 0x8a) || b2 == 0xa8 || b2 == 0xa9 || b2 == 0xaf)) return 3;
  if (b0 == 0xe2 && b1 == 0x81 && b2 == 0x9f) return 3;
  if (b0 == 0xe3 && b1 == 0x80 && b2 == 0x80) return 3;
  if (b0 == 0xef && b1 == 0xbb && b2 == 0xbf) return 3;
  return 0;
}

}  // namespace

int64_t pid_of_text(const std::string& text) {
  int64_t pid = 0;
  size_t i = 0;
  for (size_t n; i < text.size() && (n = space_at(text, i)) > 0;) i += n;
  const size_t digits = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && pid <= 0x7fffffff) pid = pid * 10 + (text[i++] - '0');
  return i == digits || pid <= 0 || pid > 0x7fffffff ? -1 : pid;
}

void read_pid_facts(PidRead* out) {
  out->pid = pid_of_text(out->text);
  if (out->pid > 0) process_facts(out->pid, &out->process);
}

namespace {

// Line n (0-based) of text without its newline, spaces, tabs and CRs around it.
std::string trimmed_line(const std::string& text, size_t n) {
  size_t begin = 0;
  for (size_t i = 0; i < n; i++) {
    begin = text.find('\n', begin);
    if (begin == std::string::npos) return {};
    begin++;
  }
  size_t end = text.find('\n', begin);
  std::string line = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  const char* space = " \t\r";
  size_t first = line.find_first_not_of(space);
  if (first == std::string::npos) return {};
  return line.substr(first, line.find_last_not_of(space) - first + 1);
}

bool all_digits(const std::string& s, size_t max) {
  return !s.empty() && s.size() <= max && s.find_first_not_of("0123456789") == std::string::npos;
}

// A decimal u64 written with any number of leading zeros, as its canonical
// digits ("" when it is not one): the facade's parsePidFile and
// judgeIdentity take and compare fingerprints as numbers, so "0042" is 42.
std::string u64_digits(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return {};
  const size_t first = s.find_first_not_of('0');
  std::string digits = first == std::string::npos ? std::string("0") : s.substr(first);
  static const char kMax[] = "18446744073709551615";
  const size_t max_len = sizeof kMax - 1;
  if (digits.size() > max_len || (digits.size() == max_len && digits > std::string(kMax))) return {};
  return digits;
}

}  // namespace

bool shim_alive(const PidRead& read) {
  if (!read.present || read.pid <= 0 || !read.process.alive) return false;
  const std::string pid = trimmed_line(read.text, 0);
  if (!all_digits(pid, 10) || pid[0] == '0' || pid != std::to_string(read.pid)) return false;
  const std::string line = trimmed_line(read.text, 1);
  if (line.empty()) return true;  // legacy: no fingerprint, the pid is alive
  // Compared as numbers, zeros padding it or not; anything but a decimal
  // u64 is malformed and names no shim.
  const std::string recorded = u64_digits(line);
  if (recorded.empty()) return false;
  const std::string now = u64_digits(read.process.start_time);
#if defined(__linux__)
  return !now.empty() && now == recorded;  // "" (gone meanwhile) or another: not ours
#else
  return read.process.start_time.empty() || now == recorded;
#endif
}

Error pid_read(const DirRef& dir, const std::string& name, PidRead* out) {
  *out = PidRead{};
  if (Error e = file_read(dir, name, kPidFileCap, &out->text, &out->present)) return e;
  if (out->present) read_pid_facts(out);
  return {};
}

Error pid_write(const DirRef& dir, const std::string& name, int64_t pid, const std::vector<std::string>& caps,
                std::string* start_time) {
  ProcessFacts facts;
  errno = 0;
  process_facts(pid, &facts);
  // Written without a fingerprint, a record reads as legacy, and gc counts
  // a reused pid as live: a fingerprint missing for want of resources (or a
  // kill(2) that failed otherwise than "no such process") is an error, not a
  // legacy record. A process we may not look at (hidepid, ENOENT/EACCES) or
  // a platform without start times still gets one.
  int err = errno;
  if ((!facts.alive && err != 0 && err != ESRCH) ||
      (facts.alive && facts.start_time.empty() && kProcessStartTimes &&
       (err == EMFILE || err == ENFILE || err == ENOMEM || err == EIO || err == EINTR))) {
    return fail(err, facts.alive ? "open" : "kill", "/proc/" + std::to_string(pid) + (facts.alive ? "/stat" : ""));
  }
  *start_time = facts.start_time;
  // Line 1 the pid, line 2 the fingerprint (empty when unknown but
  // capability lines follow), then one capability per line.
  std::string text = std::to_string(pid) + "\n";
  if (!facts.start_time.empty()) {
    text += facts.start_time + "\n";
  } else if (!caps.empty()) {
    text += "\n";
  }
  for (const std::string& cap : caps) {
    if (cap.find('\n') != std::string::npos || cap.find('\r') != std::string::npos) {
      return fail(EINVAL, "write", join_path(join_path(dir.root, dir.rel), name));
    }
    text += cap + "\n";
  }
  return file_write(dir, name, text, 0644);
}

}  // namespace blx
