// The shape every binding operation has, whether it runs inline (sync), on
// the libuv pool (Promise) or on a thread of its own (a Promise whose work
// must wait for a lock): parse on the JS thread, run anywhere, build the
// result on the JS thread.
#pragma once

#include <napi.h>

#include "../core/core.h"

namespace blx::binding {

class Job {
 public:
  virtual ~Job() = default;
  // Any thread, no JS. may_block: whether this thread may wait for a lock;
  // when it may not and would have to, the Error's reason is would-block.
  virtual Error Run(bool may_block) = 0;
  // JS thread, after a successful Run. What the job holds for the JS side
  // (an fd) stays the job's here, so that it is closed with the job if the
  // result never reaches JS.
  virtual Napi::Value Result(Napi::Env env) = 0;
  // JS thread: the result has been delivered; hand over what it carries.
  virtual void Delivered() {}
};

// A plain JS Error carrying the core's error value (errno, syscall, paths,
// reason); TypeScript builds the public LayoutError from these fields.
Napi::Object NativeError(Napi::Env env, const Error& e);

// Resolve deferred with job's result, or reject it with error.
void Settle(Napi::Env env, napi_deferred deferred, Job& job, const Error& error);

// Run job on a thread of its own, where it may block, then settle deferred
// on the JS thread. The libuv pool is never parked on a wait. If the
// environment goes away first (a worker terminated), the result is dropped
// and the job destroyed, closing what it holds (releasing its locks).
void RunOnDedicatedThread(Napi::Env env, napi_deferred deferred, Job* job);

// The module's exports (binding.cc).
Napi::Object Init(Napi::Env env, Napi::Object exports);

}  // namespace blx::binding
