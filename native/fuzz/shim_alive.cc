// The native judgement of shim.pid, bytes a shim can influence:
// read_pid_facts (line 1) and shim_alive (lines 1 and 2, the judgement
// cleanup refuses on). Besides not crashing, a file judged alive must name, on
// its first line, the very pid whose liveness was checked.
#include <cstdlib>
#include <string>

#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  blx::PidRead read;
  read.present = true;
  read.text.assign(reinterpret_cast<const char*>(data), size);
  blx::read_pid_facts(&read);
  if (!blx::shim_alive(read)) return 0;
  const size_t end = read.text.find('\n');
  const std::string first = read.text.substr(0, end);
  if (!read.process.alive || read.pid <= 0 || blx::pid_of_text(first) != read.pid) std::abort();
  return 0;
}
