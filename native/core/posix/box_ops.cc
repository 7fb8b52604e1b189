// One box: prepare, cleanup, the CA, containers. Each operation opens the
// box once (internal.h open_box), holds its lock where it changes the box,
// and works beneath the box fd.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

constexpr size_t kExitJsonCap = 64 * 1024;
constexpr size_t kPidFileCap = 4096;

// A box's subdirectories are made once in its life (prepare, the first
// shim install, the first mount): mkdirat before the look.
Error make_box_dir(const BoxDirs& d, const std::string& rel, mode_t mode, OwnedDir* out = nullptr) {
  OwnedDir made;
  return make_dir_beneath(d.box, rel, mode, Trust::kNone, out == nullptr ? &made : out, nullptr, nullptr, true);
}

std::string container_rel(const char* base, const std::string& cid) { return std::string(base) + "/containers/" + cid; }

// The socket link goes whatever else happens: its outcome is reported.
void remove_link_best_effort(const LinkSpec& link, const std::string& id, CleanupResult* out) {
  out->link_error = socket_link_remove(link, id, &out->link_removed);
}

// The tag of a box's trash name: its inode in hex, from the stat its lock
// took (no random bytes to fetch); random where no stat was taken.
std::string trash_tag(const BoxDirs& d) {
  if (!d.box_stat_known) return random_suffix().substr(0, 8);
  static const char kHex[] = "0123456789abcdef";
  std::string tag;
  for (uint64_t v = d.box_stat.ino; tag.empty() || v != 0; v >>= 4) tag.insert(tag.begin(), kHex[v & 15]);
  return tag;
}

}  // namespace

Error box_prepare(const BoxRef& ref, bool isolate, const LinkSpec& link, bool may_block, BoxPrepareResult* out) {
  *out = BoxPrepareResult{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kCreate, true, may_block, Trust::kRepair, &d, &out->repaired)) return e;
  if (Error e = make_leaf_dir(d.box, "sockets", 0755)) return e;
  // Every socket binds through the link: it exists before anything binds.
  if (Error e = socket_link_ensure(link, ref.id, &out->link)) return e;
  for (const char* rel : {"tmp", "disks", isolate ? "mounts" : "shared", "logs"}) {
    if (Error e = make_leaf_dir(d.box, rel, 0755)) return e;
  }
  return {};
}

Error box_cleanup(const BoxRef& ref, const LinkSpec& link, bool refuse_live_shim, bool may_block, CleanupResult* out) {
  *out = CleanupResult{};
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) {
    if (e.reason == Reason::kWouldBlock || !d.boxes.valid()) {
      // No boxes dir at all is nothing to clean; anything else is an error.
      if (e.reason != Reason::kNotPrepared) return e;
      remove_link_best_effort(link, ref.id, out);
      return {};
    }
    if (e.code == ENOENT) {  // never prepared, or another cleanup won
      remove_link_best_effort(link, ref.id, out);
      return {};
    }
    if (e.reason != Reason::kSymlink && e.reason != Reason::kNotDirectory) return e;
    // A planted symlink or file in the box's place: unlink it, never follow.
    if (::unlinkat(d.boxes.get(), ref.id.c_str(), 0) != 0 && errno != ENOENT) {
      return fail_errno("unlinkat", d.box.path);
    }
    out->removed = true;
    out->stats.entries = 1;
    remove_link_best_effort(link, ref.id, out);
    return {};
  }
  if (refuse_live_shim) {
    // Read under the lock, so the judgement holds for what follows. A pid
    // file that cannot be read (a FIFO, too large) names no shim we know.
    PidRead pid;
    if (!read_regular_beneath(d.box, "shim.pid", kPidFileCap, &pid.text, &pid.present) && pid.present) {
      read_pid_facts(&pid);
      if (shim_alive(pid)) {
        return fail_reason(EBUSY, Reason::kShimAlive, "kill", d.box.child("shim.pid"), pid.pid);
      }
    }
  }
  // Under the lock: a preparer of the same id waiting for it would
  // otherwise have its fresh link removed by us.
  remove_link_best_effort(link, ref.id, out);
  uint64_t unmounted = 0;
  if (Error e = detach_stack_at(d.box, "shared", &unmounted)) return e;
  // Out of sight first: a crash from here on leaves a .trash-* dir that gc
  // finishes, never a half-removed box under its own id.
  // Named by the box dir's inode: unique while the dir exists, and a
  // leftover .trash-* of another dir holds a different inode.
  std::string victim = ".trash-" + ref.id + "-" + trash_tag(d);
  if (::renameat(d.boxes.get(), ref.id.c_str(), d.boxes.get(), victim.c_str()) != 0) {
    // EBUSY: the box dir is itself a mount point; remove in place.
    if (errno != EBUSY) return fail_errno("rename", d.box.path, d.boxes.child(victim));
    victim = ref.id;
    if (Error e = remove_tree_at(d.boxes, victim, true, &out->stats)) return e;
  } else if (!d.box_stat_known) {
    if (Error e = remove_tree_at(d.boxes, victim, true, &out->stats)) return e;
  } else {
    // Renamed, so no mount point: removed through the fd we hold (its
    // lock goes with it, the tree being out of sight already).
    if (Error e = remove_open_tree_at(d.boxes, victim, std::move(d.box.fd), d.box_stat, true, &out->stats)) {
      return e;
    }
  }
  out->stats.unmounted += unmounted;
  out->removed = true;
  return {};
}

Error box_write_ca(const BoxRef& ref, const std::string& cert, const std::string& key, bool may_block) {
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir ca;
  if (Error e = make_box_dir(d, "ca", 0700, &ca)) return e;
  // Only we read the key: whatever mode an older ca/ had, it is 0700 now.
  if (::fchmod(ca.get(), 0700) != 0) return fail_errno("fchmod", ca.path);
  if (Error e = write_atomic_at(ca, "key.pem", key, 0600)) return e;
  return write_atomic_at(ca, "cert.pem", cert, 0644);
}

Error container_prepare(const BoxRef& ref, const std::string& cid, bool may_block) {
  BoxDirs d;
  if (!is_plain_name(cid)) return fail(EINVAL, "mkdirat", cid);
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  // BoxLite roots the container tree at mounts/ whether or not the box
  // isolates mounts.
  const std::string base = container_rel("mounts", cid);
  for (const char* rel : {"overlayfs/upper", "overlayfs/work", "rootfs", "volumes"}) {
    if (Error e = make_box_dir(d, base + "/" + rel, 0755)) return e;
  }
  return {};
}

Error container_exit_write(const BoxRef& ref, bool isolate, const std::string& cid, const std::string& json,
                           bool may_block) {
  BoxDirs d;
  if (!is_plain_name(cid)) return fail(EINVAL, "openat", cid);
  if (Error e = open_box(ref, BoxOpen::kExisting, true, may_block, Trust::kCheck, &d, nullptr)) return e;
  // The guest-visible side the host may write: mounts/ when isolating
  // (shown read-only at shared/), else shared/ itself, where the guest
  // reads and writes containers/{cid}/exit.json.
  const std::string rel = container_rel(isolate ? "mounts" : "shared", cid);
  OwnedDir dir;
  if (Error e = make_box_dir(d, rel, 0755, &dir)) return e;
  return write_atomic_at(dir, "exit.json", json, 0644);
}

Error container_exit_read(const BoxRef& ref, const std::string& cid, std::string* json, bool* present) {
  *present = false;
  if (!is_plain_name(cid)) return fail(EINVAL, "openat", cid);
  BoxDirs d;
  if (Error e = open_box(ref, BoxOpen::kExisting, false, false, Trust::kCheck, &d, nullptr)) return e;
  OwnedDir shared;
  if (Error e = open_shared_root(d.box, &shared)) return e.code == ENOENT ? Error{} : e;
  return read_regular_beneath(shared, "containers/" + cid + "/exit.json", kExitJsonCap, json, present);
}

}  // namespace blx
