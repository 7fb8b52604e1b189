// Which of a box's sockets exist and accept connections, for inspect: one
// non-blocking connect per socket, never through a symlink planted in
// sockets/ (it could point anywhere on the host).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "../internal.h"

namespace blx {

namespace {

// connect() to addr with a socket of type, without waiting: a listener
// (or a bound datagram socket) answers at once or with EINPROGRESS/EAGAIN
// (a full backlog is still a listener).
int try_connect(int type, const std::string& addr) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (addr.size() >= sizeof sa.sun_path) return ENAMETOOLONG;
  std::memcpy(sa.sun_path, addr.c_str(), addr.size() + 1);
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
  // Close-on-exec from birth: this runs on a pool thread, and a process the
  // main thread spawns meanwhile (a jailed shim) must not inherit the socket.
  Fd s(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s.valid()) return errno;
#else
  // macOS has neither flag: set both at once after (a window Linux does not have).
  Fd s(::socket(AF_UNIX, type, 0));
  if (!s.valid()) return errno;
  int flags = ::fcntl(s.get(), F_GETFL);
  if (flags < 0 || ::fcntl(s.get(), F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  ::fcntl(s.get(), F_SETFD, FD_CLOEXEC);
#endif
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return 0;
  return errno == EINPROGRESS || errno == EAGAIN ? 0 : errno;
}

SocketState state_of_connect(const std::string& addr) {
  int err = try_connect(SOCK_STREAM, addr);
  // net.sock and its -krun peer are datagram sockets on some platforms.
  if (err == EPROTOTYPE) err = try_connect(SOCK_DGRAM, addr);
  return err == 0 ? SocketState::kListening : SocketState::kRefused;
}

}  // namespace

void probe_sockets(Dir box, const std::string& binding_dir, bool link_ok, const std::vector<std::string>& names,
                   std::vector<SocketProbe>* out) {
  out->clear();
  OwnedDir dir;
  bool have_dir = !open_dir_beneath(box, "sockets", Trust::kNone, &dir, nullptr);
  for (const std::string& name : names) {
    SocketProbe p{name, SocketState::kMissing};
    FileStat st;
    if (!have_dir || !is_plain_name(name) ||
        stat_at(dir.get(), name.c_str(), false, &st, box.child("sockets/" + name))) {
      out->push_back(p);
      continue;
    }
    if (!S_ISSOCK(st.mode)) {
      p.state = SocketState::kNotSocket;  // a symlink included: never followed
      out->push_back(p);
      continue;
    }
#if defined(__linux__)
    // The socket inode itself, opened without following anything: a name
    // swapped for a symlink after the stat opens as the symlink and fails
    // the check, so the connect cannot be redirected out of the box.
    (void)binding_dir;
    (void)link_ok;
    Fd at(::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    FileStat again;
    if (!at.valid() || stat_at(at.get(), "", false, &again, name) || !S_ISSOCK(again.mode)) {
      p.state = at.valid() ? SocketState::kNotSocket : SocketState::kMissing;
      out->push_back(p);
      continue;
    }
    char proc[64];
    std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", at.get());
    p.state = state_of_connect(proc);
#else
    // No O_PATH: through the short link, only when it is this box's own.
    p.state = link_ok ? state_of_connect(join_path(binding_dir, name)) : SocketState::kRefused;
#endif
    out->push_back(p);
  }
}

}  // namespace blx
