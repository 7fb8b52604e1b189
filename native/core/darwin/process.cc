// macOS keeps no start-time fingerprint the layout could check: identities
// there are judged on liveness alone (reported as legacy).
#include "../internal.h"

namespace blx {

std::string process_start_time(int64_t) { return {}; }

}  // namespace blx
