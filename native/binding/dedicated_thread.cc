// Jobs that must wait (a contended box or lock flock) run here, on a thread
// of their own with a 64 KiB stack, so any number of waiters leave the libuv
// pool free for the rest of the program.
//
// The thread and the JS side each hold a reference to the shared state. If
// the environment goes away while the thread waits (a worker terminated), a
// cleanup hook marks the state orphaned: the thread then destroys the job
// itself (closing its fds, which releases any lock it took) and never
// touches Node-API again.
#include <pthread.h>

#include <cerrno>
#include <mutex>

#include "job.h"

// libuv's thread API, exported by every Node binary. Declared here rather
// than including uv.h because the cmake-js build uses node-api-headers,
// which ship no uv.h; uv_thread_t is pthread_t on Unix.
extern "C" {
typedef pthread_t uv_thread_t;
typedef struct uv_thread_options_s {
  unsigned int flags;
  size_t stack_size;
} uv_thread_options_t;
int uv_thread_create_ex(uv_thread_t* tid, const uv_thread_options_t* params, void (*entry)(void* arg), void* arg);
int uv_thread_join(uv_thread_t* tid);
}

namespace blx::binding {

namespace {

constexpr unsigned kUvThreadHasStackSize = 1;

struct Runner {
  Job* job = nullptr;
  Error error;
  uv_thread_t thread{};
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::mutex mu;
  bool orphaned = false;
  bool js_released = false;  // the JS side's reference has been dropped
  int refs = 2;              // the thread's and the JS side's
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
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->orphaned = true;
  }
  ReleaseJsSide(r);
}

void ThreadMain(void* arg) {
  auto* r = static_cast<Runner*>(arg);
  r->error = r->job->Run(true);
  {
    std::lock_guard<std::mutex> lock(r->mu);
    if (!r->orphaned) {
      napi_call_threadsafe_function(r->tsfn, r, napi_tsfn_nonblocking);
      napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    }
  }
  Release(r);
}

void Done(napi_env env, napi_value, void*, void* data) {
  auto* r = static_cast<Runner*>(data);
  if (env != nullptr) {
    napi_remove_env_cleanup_hook(env, Orphan, r);
    uv_thread_join(&r->thread);  // it has only to return
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
  uv_thread_options_t opts{kUvThreadHasStackSize, 64 * 1024};
  int rc = uv_thread_create_ex(&r->thread, &opts, ThreadMain, r);
  if (rc != 0) {
    napi_remove_env_cleanup_hook(env, Orphan, r);
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
    Error e;
    e.code = -rc;
    e.syscall = "uv_thread_create";
    napi_reject_deferred(env, deferred, NativeError(env, e));
    delete job;
    delete r;
  }
}

}  // namespace blx::binding
