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
  Fd fd;
  std::string display;
  if (Error e = open_dir_ref(dir, false, &fd, &display)) return e.code == ENOENT ? Error{} : e;
  return read_regular_beneath(fd.get(), name, cap, display, out, present);
}

Error file_write(const DirRef& dir, const std::string& name, const std::string& data, mode_t mode) {
  if (Error e = check_name(dir, name)) return e;
  Fd fd;
  std::string display;
  if (Error e = open_dir_ref(dir, false, &fd, &display)) return e;
  return write_atomic_at(fd.get(), name, data, mode, display);
}

Error file_rename(const DirRef& dir, const std::string& from, const std::string& to, bool* renamed) {
  *renamed = false;
  if (Error e = check_name(dir, from)) return e;
  if (Error e = check_name(dir, to)) return e;
  Fd fd;
  std::string display;
  if (Error e = open_dir_ref(dir, false, &fd, &display)) return e.code == ENOENT ? Error{} : e;
  if (::renameat(fd.get(), from.c_str(), fd.get(), to.c_str()) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("rename", join_path(display, from), join_path(display, to));
  }
  *renamed = true;
  return {};
}

Error file_remove(const DirRef& dir, const std::string& name, bool* removed) {
  *removed = false;
  if (Error e = check_name(dir, name)) return e;
  Fd fd;
  std::string display;
  if (Error e = open_dir_ref(dir, false, &fd, &display)) return e.code == ENOENT ? Error{} : e;
  if (::unlinkat(fd.get(), name.c_str(), 0) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("unlink", join_path(display, name));
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

void read_pid_facts(PidRead* out) {
  int64_t pid = 0;
  size_t i = 0;
  while (i < out->text.size() && out->text[i] >= '0' && out->text[i] <= '9' && pid <= 0x7fffffff) {
    pid = pid * 10 + (out->text[i++] - '0');
  }
  if (i == 0 || pid <= 0 || pid > 0x7fffffff) return;
  out->pid = pid;
  process_facts(pid, &out->process);
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
