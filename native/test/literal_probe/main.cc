// Whether this build keeps identical string literals of two translation
// units apart, as zig's Mach-O link and AddressSanitizer do (GNU ld merges
// them). The sanitizer build must keep them apart: that is what makes it
// see the bugs a darwin build would have, such as reasons compared by
// address. Prints "apart" or "merged"; with --expect-apart, exits 1 on
// "merged".
#include <cstdint>
#include <cstdio>
#include <cstring>

const char* literal_probe_a();
const char* literal_probe_b();

int main(int argc, char** argv) {
  const char* a = literal_probe_a();
  const char* b = literal_probe_b();
  if (std::strcmp(a, b) != 0) {
    std::puts("literal probe: the two literals differ in content");
    return 2;
  }
  // Addresses as integers: the question here is exactly whether they match.
  const bool apart = reinterpret_cast<std::uintptr_t>(a) != reinterpret_cast<std::uintptr_t>(b);
  std::printf("literal probe: identical literals of two translation units are %s\n", apart ? "apart" : "merged");
  const bool expect_apart = argc > 1 && std::strcmp(argv[1], "--expect-apart") == 0;
  return expect_apart && !apart ? 1 : 0;
}
