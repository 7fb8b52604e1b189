// The native reading of boot/current.json, bytes an older BoxLite, a user or
// a restored backup may have written: manifest_generation() picks the
// generation whose files boot_read() hashes. Besides not
// crashing, a name it returns must be a valid generation name (so it cannot
// climb out of boot/generations/) that appears quoted in the input exactly
// once as the value of the one "generation" key.
#include <cstdlib>
#include <string>

#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string name = blx::manifest_generation(text);
  if (name.empty()) return 0;
  if (!blx::is_generation_name(name)) std::abort();
  if (name.find('/') != std::string::npos || name == "." || name == "..") std::abort();
  const size_t key = text.find("\"generation\"");
  if (key == std::string::npos || text.find("\"generation\"", key + 1) != std::string::npos) std::abort();
  if (text.find("\"" + name + "\"", key) == std::string::npos) std::abort();
  return 0;
}
