// The small parsers of names and paths, each against a model written from
// its documented rule: join_path (Rust's PathBuf::join for the relative
// names the core joins), split_path, is_plain_name, is_valid_id (1-128
// bytes of [A-Za-z0-9_-]), is_partial_copy (.{name}.blx-{16 hex}) and
// lock_id_of_name (the decimal a lock id is written as). The input is split
// at its first NUL into two strings.
#include <cstring>

#include "fuzz.h"

namespace {

std::string rust_join(const std::string& base, const std::string& rhs) {
  if (!rhs.empty() && rhs[0] == '/') return rhs;  // an absolute right side replaces
  const bool need_sep = !base.empty() && base.back() != '/';
  return base + (need_sep ? "/" : "") + rhs;
}

bool model_valid_id(const std::string& s) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (c == '\0' || std::strchr(kChars, c) == nullptr) return false;
  }
  return true;
}

bool model_partial_copy(const std::string& s) {
  // "." + name (not empty) + ".blx-" + 16 lowercase hex digits.
  if (s.size() < 1 + 1 + 5 + 16 || s[0] != '.') return false;
  const std::string hex = s.substr(s.size() - 16);
  if (hex.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
  return s.compare(s.size() - 21, 5, ".blx-") == 0;
}

bool model_lock_id(const std::string& s, uint32_t* id) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long long v = std::stoull(s);
  if (v > 0xffffffffull || std::to_string(v) != s) return false;
  *id = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string a = all.substr(0, nul);
  const std::string b = nul == std::string::npos ? std::string() : all.substr(nul + 1);

  // join_path: PathBuf::join for a relative, non-empty name. Two documented
  // differences, because the core joins a dir with a name it resolves
  // beneath that dir (DirRef root + rel, display paths): an empty name adds
  // nothing (PathBuf adds "/"), and an absolute one stays beneath the base
  // (PathBuf replaces the base with it).
  const std::string joined = blx::join_path(a, b);
  if (b.empty()) {
    FUZZ_CHECK(joined == a);
  } else if (b[0] != '/') {
    FUZZ_CHECK(joined == rust_join(a, b), "join_path(\"%s\", \"%s\") = \"%s\"", a.c_str(), b.c_str(), joined.c_str());
  } else {
    FUZZ_CHECK(joined == (a.empty() || a.back() == '/' ? a + b : a + "/" + b));
  }

  // split_path: the last component, trailing slashes ignored, and what
  // precedes it less one slash ("/" for a top-level name). Repeated slashes
  // before the name stay in the parent ("/a//b" -> "/a/", "b"): the parent
  // is joined with other names again, never compared.
  std::string dir, name;
  blx::split_path(a, &dir, &name);
  std::string trimmed = a;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos) {
    FUZZ_CHECK(dir == "." && name == trimmed);
  } else if (trimmed == "/") {
    FUZZ_CHECK(dir == "/" && name.empty());
  } else {
    FUZZ_CHECK(name == trimmed.substr(slash + 1) && dir == (slash == 0 ? "/" : trimmed.substr(0, slash)),
               "split_path(\"%s\") = \"%s\", \"%s\"", a.c_str(), dir.c_str(), name.c_str());
  }

  FUZZ_CHECK(blx::is_plain_name(a) == (!a.empty() && a != "." && a != ".." && a.find('/') == std::string::npos));
  FUZZ_CHECK(blx::is_valid_id(all) == model_valid_id(all), "is_valid_id disagrees");
  if (blx::is_valid_id(all)) FUZZ_CHECK(blx::is_plain_name(all));
  FUZZ_CHECK(blx::is_partial_copy(all) == model_partial_copy(all), "is_partial_copy disagrees");
  uint32_t id = 0, model_id = 0;
  const bool ok = blx::lock_id_of_name(all, &id);
  FUZZ_CHECK(ok == model_lock_id(all, &model_id) && (!ok || id == model_id), "lock_id_of_name disagrees");
  return 0;
}
