// start_time_of_stat on any text: /proc/PID/stat carries comm, which the
// process chooses (prctl PR_SET_NAME): spaces, ')' and all. Checked
// against a model: the fields after the last ')' split on single spaces,
// field 22 being the 20th of them.
#include "fuzz.h"

namespace {

std::string model(const std::string& stat) {
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) return {};
  std::vector<std::string> fields;
  size_t a = close + 2;
  for (;;) {
    size_t b = stat.find(' ', a);
    fields.push_back(stat.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return fields.size() > 19 ? fields[19] : std::string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string stat(reinterpret_cast<const char*>(data), size);
  const std::string got = blx::start_time_of_stat(stat);
  FUZZ_CHECK(got == model(stat), "got \"%s\", model \"%s\"", got.c_str(), model(stat).c_str());
  return 0;
}
