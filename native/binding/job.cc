// Errors and settlement shared by the three ways a job runs.
#include "job.h"

namespace blx::binding {

Napi::Object NativeError(Napi::Env env, const Error& e) {
  Napi::Object err = Napi::Error::New(env, "native error").Value();
  err.Set("nativeError", true);
  err.Set("errno", e.code);
  if (e.syscall != nullptr) err.Set("syscall", e.syscall);
  if (const char* name = reason_name(e.reason)) err.Set("reason", name);
  if (!e.path.empty()) err.Set("path", e.path);
  if (!e.dest.empty()) err.Set("dest", e.dest);
  if (e.value >= 0) err.Set("value", Napi::Number::New(env, static_cast<double>(e.value)));
  return err;
}

void Settle(Napi::Env env, napi_deferred deferred, Job& job, const Error& error) {
  if (error) {
    napi_reject_deferred(env, deferred, NativeError(env, error));
    return;
  }
  Napi::Value result = job.Result(env);
  if (env.IsExceptionPending()) {
    // Building the result threw (out of memory): reject with that.
    Napi::Error thrown = env.GetAndClearPendingException();
    napi_reject_deferred(env, deferred, thrown.Value());
    return;
  }
  // An environment that can no longer run JS (a worker being terminated)
  // refuses the resolve: then the job keeps what the result carried and
  // closes it (releasing a lock) instead of handing it to nobody.
  if (napi_resolve_deferred(env, deferred, result) == napi_ok) job.Delivered();
}

}  // namespace blx::binding
