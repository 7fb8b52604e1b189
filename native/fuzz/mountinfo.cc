// parse_mountinfo. Mount points are paths whose names others choose (a
// guest's directories, a user's volume); the kernel escapes space, tab,
// newline and backslash in them as \ooo. Two modes, by the first byte:
//  - even: mounts built from the input (id, read-only, mount point bytes)
//    are rendered as the kernel renders them and must parse back exactly:
//    those at or below the root, with their relative paths;
//  - odd: the rest of the input is the text itself; the parse must not
//    crash, and every mount it reports must be at or below the root.
#include <cstdio>

#include "fuzz.h"

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

const char* const kRoots[] = {"/", "/srv/home/boxes/b1", "/a b\\c"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string root = kRoots[data[1] % 3];
  std::vector<blx::MountBelow> got;
  if (data[0] % 2 == 1) {
    blx::parse_mountinfo(std::string(reinterpret_cast<const char*>(data) + 2, size - 2), root, &got);
    for (const blx::MountBelow& m : got) {
      std::string back = m.rel.empty() ? root : blx::join_path(root, m.rel);
      FUZZ_CHECK(back.compare(0, root.size(), root) == 0);
      FUZZ_CHECK(m.rel.empty() || m.rel[0] != '/', "an absolute rel \"%s\"", m.rel.c_str());
    }
    return 0;
  }
  // Structured: [u8 id][u8 flags][u8 n][n bytes of mount point below a prefix].
  std::string text;
  std::vector<blx::MountBelow> want;
  for (size_t at = 2; at + 3 <= size;) {
    const uint64_t id = data[at];
    const bool ro = (data[at + 1] & 1) != 0;
    const int prefix = (data[at + 1] >> 1) % 4;  // root itself, below it, beside it, elsewhere
    size_t n = std::min<size_t>(data[at + 2], size - at - 3);
    std::string tail(reinterpret_cast<const char*>(data) + at + 3, n);
    at += 3 + n;
    // A mount point is an absolute path without NUL and without "//".
    std::string mp;
    std::string rel;
    switch (prefix) {
      case 0:
        mp = root;
        break;
      case 1:
        if (tail.empty() || tail[0] == '/' || tail.back() == '/' || tail.find('\0') != std::string::npos ||
            tail.find("//") != std::string::npos) {
          continue;
        }
        rel = tail;
        mp = blx::join_path(root, tail);
        break;
      case 2:
        mp = root == "/" ? "/" : root + "x" + tail;
        break;
      default:
        mp = "/elsewhere/" + tail;
        break;
    }
    if (mp.find('\0') != std::string::npos) continue;
    text += std::to_string(id) + " 1 0:42 / " + escape(mp) + (ro ? " ro,nosuid" : " rw,relatime") +
            " shared:1 - ext4 /dev/vda " + (ro ? "ro" : "rw") + "\n";
    bool inside =
        prefix <= 1 || mp == root || (mp.compare(0, root.size(), root) == 0 && (root == "/" || mp[root.size()] == '/'));
    if (inside) {
      if (mp == root)
        rel.clear();
      else
        rel = mp.substr(root == "/" ? 1 : root.size() + 1);
      want.push_back(blx::MountBelow{id, rel, ro});
    }
  }
  blx::parse_mountinfo(text, root, &got);
  FUZZ_CHECK(got.size() == want.size(), "%zu mounts parsed, %zu rendered", got.size(), want.size());
  for (size_t i = 0; i < got.size(); i++) {
    FUZZ_CHECK(
        got[i].mount_id == want[i].mount_id && got[i].rel == want[i].rel && got[i].read_only == want[i].read_only,
        "mount %zu: parsed (%llu, \"%s\", %d)", i, static_cast<unsigned long long>(got[i].mount_id), got[i].rel.c_str(),
        got[i].read_only);
  }
  return 0;
}
