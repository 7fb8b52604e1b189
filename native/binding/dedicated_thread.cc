// Jobs that must wait (a contended box or lock flock) run here, on a thread
// of their own with a 64 KiB stack, so any number of waiters leave the libuv
// pool free for the rest of the program.
//
// The thread and the JS side each hold a reference to the shared state. If
// the environment goes away while the thread waits (a worker terminated), a
// cleanup hook marks the state orphaned: the thread then destroys the job
// itself (closing its fds, which releases any lock it took) and never
// touches Node-API again. If the thread had already queued its result, the
// thread-safe function's own teardown still calls Done for it (with no env):
// then whichever of the hook and that call comes second drops the JS side's
// reference, so neither frees what the other will use.
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <mutex>

#include "job.h"

namespace blx::binding {

namespace {

// A waiter only calls flock and a few *at() calls.
constexpr size_t kWaiterStack = 64 * 1024;

struct Runner {
  Job* job = nullptr;
  Error error;
  pthread_t thread{};
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::mutex mu;
  bool orphaned = false;
  bool queued = false;            // the result is on the thread-safe function's queue: Done will run
  bool done_without_env = false;  // Done ran for a teardown (no env, nothing settled)
  bool js_released = false;       // the JS side's reference has been dropped
  int refs = 2;                   // the thread's and the JS side's
};

void Release(Runner* r) {
  bool last;
  {
    std::lock_guard<std::mutex> lock(r->mu);
    last = --r->refs == 0;
  }
  if (last) {
    delete r->job;
    delete r;
  }
}

// Drop the JS side's reference exactly once (Done or the cleanup hook).
void ReleaseJsSide(Runner* r) {
  {
    std::lock_guard<std::mutex> lock(r->mu);
    if (r->js_released) return;
    r->js_released = true;
  }
  Release(r);
}

void Orphan(void* arg) {
  auto* r = static_cast<Runner*>(arg);
  bool queued, done;
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->orphaned = true;
    queued = r->queued;
    done = r->done_without_env;
  }
  if (queued && !done) return;  // Done, still to come, drops the JS side's reference
  // Not queued: the thread may wait on for a long time, and nobody joins it now.
  if (!queued) pthread_detach(r->thread);
  ReleaseJsSide(r);
}

void* ThreadMain(void* arg) {
  auto* r = static_cast<Runner*>(arg);
  r->error = r->job->Run(true);
  {
    std::lock_guard<std::mutex> lock(r->mu);
    if (!r->orphaned) {
      r->queued = napi_call_threadsafe_function(r->tsfn, r, napi_tsfn_nonblocking) == napi_ok;
      napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    }
  }
  Release(r);
  return nullptr;
}

// pthread's own calls, not libuv's (which node exports but which would leave
// the addon with undefined symbols and a copy of libuv's ABI): the stack
// size rounded up to a page and to PTHREAD_STACK_MIN, as libuv does.
int StartWaiter(Runner* r) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t stack = std::max<size_t>(kWaiterStack, PTHREAD_STACK_MIN);
  stack = (stack + page - 1) / page * page;
  rc = pthread_attr_setstacksize(&attr, stack);
  if (rc == 0) rc = pthread_create(&r->thread, &attr, ThreadMain, r);
  pthread_attr_destroy(&attr);
  return rc;
}

// With no env, the thread-safe function is being torn down with this result
// still queued: nothing is settled, and the job's fds close with it.
void Done(napi_env env, napi_value, void*, void* data) {
  auto* r = static_cast<Runner*>(data);
  pthread_join(r->thread, nullptr);  // it queued this: it has only to return
  if (env == nullptr) {
    bool orphaned;
    {
      std::lock_guard<std::mutex> lock(r->mu);
      r->done_without_env = true;
      orphaned = r->orphaned;
    }
    if (!orphaned) return;  // the cleanup hook, still to come, drops the JS side's reference
  } else {
    napi_remove_env_cleanup_hook(env, Orphan, r);
    Napi::HandleScope scope(env);
    Settle(Napi::Env(env), r->deferred, *r->job, r->error);
  }
  ReleaseJsSide(r);
}

}  // namespace

void RunOnDedicatedThread(Napi::Env env, napi_deferred deferred, Job* job) {
  auto* r = new Runner();
  r->job = job;
  r->env = env;
  r->deferred = deferred;
  napi_value name;
  napi_create_string_utf8(env, "boxlite-layout:wait", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr, Done, &r->tsfn) !=
      napi_ok) {
    Error e;
    e.code = EAGAIN;
    e.syscall = "napi_create_threadsafe_function";
    napi_reject_deferred(env, deferred, NativeError(env, e));
    delete job;
    delete r;
    return;
  }
  napi_add_env_cleanup_hook(env, Orphan, r);
  int rc = StartWaiter(r);
  if (rc != 0) {
    napi_remove_env_cleanup_hook(env, Orphan, r);
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    Error e;
    e.code = rc;
    e.syscall = "pthread_create";
    napi_reject_deferred(env, deferred, NativeError(env, e));
    delete job;
    delete r;
  }
}

}  // namespace blx::binding
