// qcow2_backing_name on any bytes: the image header a shim or guest can
// write. The name returned is exactly the bytes the header points at, or
// nothing; never a read outside the file, never a partial name.
#include <sys/mman.h>

#include <cstring>

#include "fuzz.h"

namespace {

uint64_t big_endian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

int image_fd() {
  static const int fd = ::memfd_create("qcow2", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create");
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = image_fd();
  FUZZ_CHECK(::ftruncate(fd, 0) == 0);
  FUZZ_CHECK(::pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
  std::string name;
  blx::Error e = blx::qcow2_backing_name(fd, "disk.qcow2", &name);

  // The model: QEMU's header fields, read independently.
  if (size < 20 || std::memcmp(data, "QFI\xfb", 4) != 0) {
    FUZZ_CHECK(!e && name.empty(), "not qcow2, yet a name or an error");
    return 0;
  }
  const uint64_t offset = big_endian(data + 8, 8);
  const uint64_t length = big_endian(data + 16, 4);
  if (offset == 0 || length == 0) {
    FUZZ_CHECK(!e && name.empty(), "no backing file named, yet a name or an error");
    return 0;
  }
  const bool readable = length <= 1023 && offset <= size && length <= size - offset;
  const bool has_nul = readable && std::memchr(data + offset, 0, length) != nullptr;
  if (!readable || has_nul) {
    FUZZ_CHECK(e && e.code == EINVAL && e.reason == blx::Reason::kBackingChain && name.empty(),
               "offset %llu length %llu size %zu nul %d: expected EINVAL backing-chain, got errno %d",
               static_cast<unsigned long long>(offset), static_cast<unsigned long long>(length), size, has_nul, e.code);
    return 0;
  }
  FUZZ_CHECK(!e, "errno %d", e.code);
  FUZZ_CHECK(name == std::string(reinterpret_cast<const char*>(data) + offset, length), "wrong name");
  return 0;
}
