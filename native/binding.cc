// The one Node-API file: argument marshalling around the Node-free core.
//
// Every core operation is a small struct with Parse (JS thread), Run (any
// thread, no JS) and Result (JS thread). RunSync runs it inline; RunAsync
// runs it on the libuv pool through one AsyncWorker template. Blocking
// waits (flock) never go to the pool: they get a thread of their own.
#include <napi.h>

#include <fcntl.h>
#include <mutex>
#include <pthread.h>
#include <unistd.h>

#include "core/core.h"

#ifndef BLX_SOURCE_HASH
#error "BLX_SOURCE_HASH must be defined by the build (scripts/source-hash.cjs)"
#endif

// libuv's thread API, exported by every Node binary. Declared here rather
// than including uv.h because the cmake-js build uses node-api-headers,
// which ship no uv.h; uv_thread_t is pthread_t on Unix.
extern "C" {
typedef pthread_t uv_thread_t;
typedef struct uv_thread_options_s {
  unsigned int flags;
  size_t stack_size;
} uv_thread_options_t;
int uv_thread_create_ex(uv_thread_t* tid, const uv_thread_options_t* params, void (*entry)(void* arg),
                        void* arg);
int uv_thread_join(uv_thread_t* tid);
}

namespace {

using blx::Error;

constexpr unsigned kUvThreadHasStackSize = 1;

// ---------------------------------------------------------------------------
// Errors: a plain Error carrying errno/syscall/paths; TypeScript builds the
// public LayoutError from these fields.

Napi::Object NativeError(Napi::Env env, const Error& e) {
  Napi::Object err = Napi::Error::New(env, "native error").Value();
  err.Set("nativeError", true);
  err.Set("errno", e.code);
  if (e.syscall != nullptr) err.Set("syscall", e.syscall);
  if (!e.path.empty()) err.Set("path", e.path);
  if (!e.dest.empty()) err.Set("dest", e.dest);
  if (!e.detail.empty()) err.Set("detail", e.detail);
  return err;
}

bool ArgError(Napi::Env env, const char* what) {
  // A throwing getter may already have left an exception pending: throwing
  // a second one would abort the process.
  if (!env.IsExceptionPending()) Napi::TypeError::New(env, what).ThrowAsJavaScriptException();
  return false;
}

bool GetString(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (!info[i].IsString()) return ArgError(info.Env(), "expected a string argument");
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) return ArgError(info.Env(), "path contains a NUL byte");
  return true;
}

bool GetStrings(const Napi::CallbackInfo& info, size_t i, std::vector<std::string>* out) {
  if (!info[i].IsArray()) return ArgError(info.Env(), "expected an array of strings");
  Napi::Array arr = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (info.Env().IsExceptionPending() || !v.IsString()) return ArgError(info.Env(), "expected an array of strings");
    out->push_back(v.As<Napi::String>().Utf8Value());
    if (out->back().find('\0') != std::string::npos) return ArgError(info.Env(), "path contains a NUL byte");
  }
  return true;
}

bool GetBool(const Napi::CallbackInfo& info, size_t i, bool* out) {
  if (!info[i].IsBoolean()) return ArgError(info.Env(), "expected a boolean argument");
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

bool GetUint32(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  if (!info[i].IsNumber()) return ArgError(info.Env(), "expected a number argument");
  *out = info[i].As<Napi::Number>().Uint32Value();
  return true;
}

bool GetFd(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (!info[i].IsNumber()) return ArgError(info.Env(), "expected a file descriptor");
  *out = info[i].As<Napi::Number>().Int32Value();
  if (*out < 0) return ArgError(info.Env(), "expected a file descriptor");
  return true;
}

// ---------------------------------------------------------------------------
// Sync and async runners.

template <class Op>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Op op;
  if (!op.Parse(info)) return env.Undefined();
  if (Error e = op.Run()) {
    napi_throw(env, NativeError(env, e));
    return env.Undefined();
  }
  return op.Result(env);
}

template <class Op>
class OpWorker : public Napi::AsyncWorker {
 public:
  explicit OpWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "boxlite-layout"), deferred_(Napi::Promise::Deferred::New(env)) {}

  Op op;
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { error_ = op.Run(); }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (error_) {
      deferred_.Reject(NativeError(Env(), error_));
    } else {
      deferred_.Resolve(op.Result(Env()));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Error error_;
};

template <class Op>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* worker = new OpWorker<Op>(env);
  if (!worker->op.Parse(info)) {
    delete worker;
    return env.Undefined();
  }
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---------------------------------------------------------------------------
// Operations.

struct ProbeOp {
  std::string path;
  blx::FsFacts facts;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &path); }
  Error Run() { return blx::probe(path, &facts); }
  Napi::Value Result(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("devMajor", facts.dev_major);
    o.Set("devMinor", facts.dev_minor);
    o.Set("ino", Napi::BigInt::New(env, facts.ino));
    if (facts.mount_id_known) {
      o.Set("mountId", Napi::BigInt::New(env, facts.mount_id));
    } else {
      o.Set("mountId", env.Null());
    }
    o.Set("fsMagic", Napi::Number::New(env, static_cast<double>(facts.fs_magic)));
    o.Set("fsName", facts.fs_name);
    o.Set("readOnly", facts.read_only);
    o.Set("nosuid", facts.nosuid);
    o.Set("nodev", facts.nodev);
    o.Set("noexec", facts.noexec);
    o.Set("isMountRoot", facts.is_mount_root);
    return o;
  }
};

struct ExtentsSharedOp {
  std::string path;
  int shared = -1;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &path); }
  Error Run() { return blx::extents_shared(path, &shared); }
  Napi::Value Result(Napi::Env env) {
    if (shared < 0) return env.Null();
    return Napi::Boolean::New(env, shared == 1);
  }
};

struct SameFilesystemOp {
  std::vector<std::string> paths;
  blx::SameFilesystem out;
  bool Parse(const Napi::CallbackInfo& info) { return GetStrings(info, 0, &paths); }
  Error Run() { return blx::same_filesystem(paths, &out); }
  Napi::Value Result(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("same", out.same);
    o.Set("oddIndex", out.odd_index);
    // "major:minor", the form users read and compare.
    Napi::Array devs = Napi::Array::New(env, out.dev_major.size());
    for (uint32_t i = 0; i < out.dev_major.size(); i++) {
      devs.Set(i, std::to_string(out.dev_major[i]) + ":" + std::to_string(out.dev_minor[i]));
    }
    o.Set("devices", devs);
    return o;
  }
};

struct MakeDirsOp {
  std::vector<std::string> paths;
  uint32_t mode = 0777;
  bool Parse(const Napi::CallbackInfo& info) { return GetStrings(info, 0, &paths) && GetUint32(info, 1, &mode); }
  Error Run() { return blx::make_dirs(paths, static_cast<mode_t>(mode)); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct BindReadOnlyOp {
  std::string source, target;
  bool force_legacy = false;
  blx::BindMethod used = blx::BindMethod::kNewApi;
  bool Parse(const Napi::CallbackInfo& info) {
    return GetString(info, 0, &source) && GetString(info, 1, &target) && GetBool(info, 2, &force_legacy);
  }
  Error Run() { return blx::bind_readonly(source, target, force_legacy, &used); }
  Napi::Value Result(Napi::Env env) {
    return Napi::String::New(env, used == blx::BindMethod::kNewApi ? "bind-ro" : "bind-ro-legacy");
  }
};

struct ResealReadOnlyOp {
  std::string target;
  bool force_legacy = false;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &target) && GetBool(info, 1, &force_legacy); }
  Error Run() { return blx::reseal_readonly(target, force_legacy); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct UnmountOp {
  std::string target;
  bool was_mounted = false;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &target); }
  Error Run() { return blx::unmount(target, &was_mounted); }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, was_mounted); }
};

struct UnmountBeneathOp {
  std::string root, rel;
  double mount_id = 0;
  bool detached = false;
  bool Parse(const Napi::CallbackInfo& info) {
    if (!GetString(info, 0, &root) || !GetString(info, 1, &rel)) return false;
    if (!info[2].IsNumber()) return ArgError(info.Env(), "expected a mount id");
    mount_id = info[2].As<Napi::Number>().DoubleValue();
    return true;
  }
  Error Run() { return blx::unmount_beneath(root, rel, static_cast<uint64_t>(mount_id), &detached); }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, detached); }
};

struct InspectSharedOp {
  std::string source, target;
  blx::SharedState state;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &source) && GetString(info, 1, &target); }
  Error Run() { return blx::inspect_shared(source, target, &state); }
  Napi::Value Result(Napi::Env env) {
    static const char* kinds[] = {"missing", "directory", "symlink", "mount", "other"};
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", kinds[static_cast<int>(state.kind)]);
    o.Set("empty", state.empty);
    o.Set("linkTarget", state.link_target);
    o.Set("readOnly", state.read_only);
    o.Set("showsSource", state.shows_source);
    return o;
  }
};

struct MountsUnderOp {
  std::string prefix;
  std::vector<blx::MountEntry> mounts;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &prefix); }
  Error Run() { return blx::mounts_under(prefix, &mounts); }
  Napi::Value Result(Napi::Env env) {
    Napi::Array arr = Napi::Array::New(env, mounts.size());
    for (uint32_t i = 0; i < mounts.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("mountId", Napi::Number::New(env, static_cast<double>(mounts[i].mount_id)));
      o.Set("mountPoint", mounts[i].mount_point);
      o.Set("fsType", mounts[i].fs_type);
      o.Set("readOnly", mounts[i].read_only);
      arr.Set(i, o);
    }
    return arr;
  }
};

struct RemoveTreeOp {
  std::string parent, name;
  bool detach_mounts = true;
  blx::RemoveStats stats;
  bool Parse(const Napi::CallbackInfo& info) {
    return GetString(info, 0, &parent) && GetString(info, 1, &name) && GetBool(info, 2, &detach_mounts);
  }
  Error Run() { return blx::remove_tree(parent, name, detach_mounts, &stats); }
  Napi::Value Result(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("entries", Napi::Number::New(env, static_cast<double>(stats.entries)));
    o.Set("unmounted", Napi::Number::New(env, static_cast<double>(stats.unmounted)));
    return o;
  }
};

const char* MethodName(blx::CloneMethod m) {
  switch (m) {
    case blx::CloneMethod::kReflink: return "reflink";
    case blx::CloneMethod::kClonefile: return "clonefile";
    case blx::CloneMethod::kCopyFileRange: return "copy_file_range";
    case blx::CloneMethod::kCopy: return "copy";
    case blx::CloneMethod::kSkipped: return "skipped";
  }
  return "copy";
}

// A batch of clones in one native call; stops at the first failure, whose
// error carries the index of the job that failed.
struct CloneFilesOp {
  std::vector<blx::CloneJob> jobs;
  size_t done = 0;
  bool Parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) return ArgError(env, "expected an array of clone jobs");
    Napi::Array arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (env.IsExceptionPending() || !v.IsObject()) return ArgError(env, "expected an array of clone jobs");
      Napi::Object o = v.As<Napi::Object>();
      Napi::Value src = o.Get("src"), dst = o.Get("dst"), mode = o.Get("mode"), skip = o.Get("skipUnchanged");
      if (env.IsExceptionPending() || !src.IsString() || !dst.IsString() || !mode.IsString() || !skip.IsBoolean()) {
        return ArgError(env, "clone job needs src, dst, mode and skipUnchanged");
      }
      blx::CloneJob job;
      job.src = src.As<Napi::String>().Utf8Value();
      job.dst = dst.As<Napi::String>().Utf8Value();
      std::string m = mode.As<Napi::String>().Utf8Value();
      if (m == "auto") {
        job.mode = blx::CloneMode::kAuto;
      } else if (m == "force") {
        job.mode = blx::CloneMode::kForce;
      } else if (m == "never") {
        job.mode = blx::CloneMode::kNever;
      } else {
        return ArgError(env, "clone mode must be auto, force or never");
      }
      job.skip_unchanged = skip.As<Napi::Boolean>().Value();
      if (job.src.find('\0') != std::string::npos || job.dst.find('\0') != std::string::npos) {
        return ArgError(env, "path contains a NUL byte");
      }
      jobs.push_back(std::move(job));
    }
    return true;
  }
  Error Run() {
    Error e = blx::clone_files(&jobs, &done);
    if (e) e.detail = (e.detail.empty() ? "" : e.detail + " ") + "index=" + std::to_string(done);
    return e;
  }
  Napi::Value Result(Napi::Env env) {
    Napi::Array arr = Napi::Array::New(env, jobs.size());
    for (uint32_t i = 0; i < jobs.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("method", MethodName(jobs[i].method));
      o.Set("bytes", Napi::Number::New(env, static_cast<double>(jobs[i].bytes)));
      arr.Set(i, o);
    }
    return arr;
  }
};

struct SocketLinkEnsureOp {
  std::string dir, name, target;
  uint32_t uid = 0;
  blx::LinkResult result;
  bool Parse(const Napi::CallbackInfo& info) {
    return GetString(info, 0, &dir) && GetUint32(info, 1, &uid) && GetString(info, 2, &name) &&
           GetString(info, 3, &target);
  }
  Error Run() { return blx::socket_link_ensure(dir, static_cast<uid_t>(uid), name, target, &result); }
  Napi::Value Result(Napi::Env env) {
    static const char* states[] = {"created", "kept", "replaced"};
    Napi::Object o = Napi::Object::New(env);
    o.Set("state", states[static_cast<int>(result.state)]);
    o.Set("modeRepaired", result.mode_repaired);
    o.Set("previousTarget", result.previous_target);
    return o;
  }
};

struct SocketLinkRemoveOp {
  std::string dir, name, target;
  bool removed = false;
  bool Parse(const Napi::CallbackInfo& info) {
    return GetString(info, 0, &dir) && GetString(info, 1, &name) && GetString(info, 2, &target);
  }
  Error Run() { return blx::socket_link_remove(dir, name, target, &removed); }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, removed); }
};

struct SweepDanglingLinksOp {
  std::string dir;
  uint32_t uid = 0;
  std::vector<std::string> removed;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &dir) && GetUint32(info, 1, &uid); }
  Error Run() { return blx::sweep_dangling_links(dir, static_cast<uid_t>(uid), &removed); }
  Napi::Value Result(Napi::Env env) {
    Napi::Array arr = Napi::Array::New(env, removed.size());
    for (uint32_t i = 0; i < removed.size(); i++) arr.Set(i, removed[i]);
    return arr;
  }
};

// lockFd(fd, exclusive, wait): sync only. With wait it blocks the caller,
// which is what a *Sync API promises.
struct LockFdOp {
  int fd = -1;
  bool exclusive = true, wait = false, acquired = false;
  bool Parse(const Napi::CallbackInfo& info) {
    return GetFd(info, 0, &fd) && GetBool(info, 1, &exclusive) && GetBool(info, 2, &wait);
  }
  Error Run() { return blx::lock_fd(fd, exclusive, wait, &acquired); }
  Napi::Value Result(Napi::Env env) { return Napi::Boolean::New(env, acquired); }
};

// lockDir(dir, wait) -> { fd, acquired }: open + flock + identity check in
// one call; the fd is the caller's to close either way.
struct LockDirOp {
  std::string dir;
  bool wait = false, acquired = false;
  int fd = -1;
  bool Parse(const Napi::CallbackInfo& info) { return GetString(info, 0, &dir) && GetBool(info, 1, &wait); }
  Error Run() { return blx::lock_dir(dir, wait, &fd, &acquired); }
  Napi::Value Result(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", Napi::Number::New(env, fd));
    o.Set("acquired", Napi::Boolean::New(env, acquired));
    return o;
  }
};

struct CheckLockIdentityOp {
  std::string path;
  int fd = -1;
  bool Parse(const Napi::CallbackInfo& info) { return GetFd(info, 0, &fd) && GetString(info, 1, &path); }
  Error Run() { return blx::check_lock_identity(fd, path); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct UnlockFdOp {
  int fd = -1;
  bool Parse(const Napi::CallbackInfo& info) { return GetFd(info, 0, &fd); }
  Error Run() { return blx::unlock_fd(fd); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

// ---------------------------------------------------------------------------
// lockFdWait(fd, exclusive) -> Promise<void>: a blocking flock on a thread
// of its own (64 KiB stack), so any number of waiters leave the libuv pool
// free for the rest of the program.
//
// The thread waits on its own dup of the fd (same open file description, so
// the lock it takes is the caller's). If the environment goes away first (a
// worker terminated while waiting), a cleanup hook marks the waiter orphaned:
// the thread then releases what it got and never touches Node-API again.

struct LockWaiter {
  int fd = -1;                 // our dup, closed by whoever finishes last
  bool exclusive = true;
  Error error;
  uv_thread_t thread{};
  napi_env env = nullptr;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  std::mutex mu;
  bool orphaned = false;
  bool js_released = false;    // the JS side's reference has been dropped
  int refs = 2;                // the thread's and the JS side's
};

void ReleaseWaiter(LockWaiter* w) {
  bool last;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    last = --w->refs == 0;
  }
  if (last) {
    if (w->fd >= 0) ::close(w->fd);
    delete w;
  }
}

// Drop the JS side's reference exactly once (Done or the cleanup hook).
void ReleaseJsSide(LockWaiter* w) {
  {
    std::lock_guard<std::mutex> lock(w->mu);
    if (w->js_released) return;
    w->js_released = true;
  }
  ReleaseWaiter(w);
}

void OrphanWaiter(void* arg) {
  auto* w = static_cast<LockWaiter*>(arg);
  {
    std::lock_guard<std::mutex> lock(w->mu);
    w->orphaned = true;
  }
  ReleaseJsSide(w);
}

void LockWaiterThread(void* arg) {
  auto* w = static_cast<LockWaiter*>(arg);
  bool acquired = false;
  w->error = blx::lock_fd(w->fd, w->exclusive, true, &acquired);
  {
    std::lock_guard<std::mutex> lock(w->mu);
    if (w->orphaned) {
      // Nobody is left to hold it: give the lock back.
      if (!w->error) blx::unlock_fd(w->fd);
    } else {
      napi_call_threadsafe_function(w->tsfn, w, napi_tsfn_nonblocking);
      napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
    }
  }
  ReleaseWaiter(w);
}

void LockWaiterDone(napi_env env, napi_value, void*, void* data) {
  auto* w = static_cast<LockWaiter*>(data);
  if (env != nullptr) {
    napi_remove_env_cleanup_hook(env, OrphanWaiter, w);
    uv_thread_join(&w->thread);  // it has only to return
    Napi::HandleScope scope(env);
    if (w->error) {
      napi_reject_deferred(env, w->deferred, NativeError(Napi::Env(env), w->error));
    } else {
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, w->deferred, undefined);
    }
  }
  ReleaseJsSide(w);
}

Napi::Value LockFdWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  bool exclusive = true;
  if (!GetFd(info, 0, &fd) || !GetBool(info, 1, &exclusive)) return env.Undefined();

  napi_value promise, name;
  napi_deferred deferred;
  napi_create_promise(env, &deferred, &promise);
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) {
    napi_reject_deferred(env, deferred, NativeError(env, blx::fail_errno("fcntl")));
    return Napi::Value(env, promise);
  }
  auto* w = new LockWaiter();
  w->fd = dup;
  w->exclusive = exclusive;
  w->env = env;
  w->deferred = deferred;
  napi_create_string_utf8(env, "boxlite-layout:lock", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                      LockWaiterDone, &w->tsfn) != napi_ok) {
    napi_reject_deferred(env, deferred, NativeError(env, blx::fail(EAGAIN, "napi_create_threadsafe_function")));
    ::close(w->fd);
    delete w;
    return Napi::Value(env, promise);
  }
  napi_add_env_cleanup_hook(env, OrphanWaiter, w);
  uv_thread_options_t opts{kUvThreadHasStackSize, 64 * 1024};
  int rc = uv_thread_create_ex(&w->thread, &opts, LockWaiterThread, w);
  if (rc != 0) {
    napi_remove_env_cleanup_hook(env, OrphanWaiter, w);
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    napi_reject_deferred(env, deferred, NativeError(env, blx::fail(-rc, "uv_thread_create")));
    ::close(w->fd);
    delete w;
  }
  return Napi::Value(env, promise);
}

Napi::Value NewMountApiAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), blx::new_mount_api_available());
}

template <class Op>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, RunSync<Op>, name));
  std::string async_name = std::string(name) + "Async";
  exports.Set(async_name, Napi::Function::New(env, RunAsync<Op>, async_name));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sourceHash", BLX_SOURCE_HASH);
#if defined(__linux__)
  exports.Set("platform", "linux");
#elif defined(__APPLE__)
  exports.Set("platform", "darwin");
#endif
  Export<ProbeOp>(env, exports, "probe");
  Export<SameFilesystemOp>(env, exports, "sameFilesystem");
  Export<ExtentsSharedOp>(env, exports, "extentsShared");
  Export<MakeDirsOp>(env, exports, "makeDirs");
  Export<BindReadOnlyOp>(env, exports, "bindReadOnly");
  Export<ResealReadOnlyOp>(env, exports, "resealReadOnly");
  Export<UnmountOp>(env, exports, "unmount");
  Export<UnmountBeneathOp>(env, exports, "unmountBeneath");
  Export<InspectSharedOp>(env, exports, "inspectShared");
  Export<MountsUnderOp>(env, exports, "mountsUnder");
  Export<RemoveTreeOp>(env, exports, "removeTree");
  Export<CloneFilesOp>(env, exports, "cloneFiles");
  Export<SocketLinkEnsureOp>(env, exports, "socketLinkEnsure");
  Export<SocketLinkRemoveOp>(env, exports, "socketLinkRemove");
  Export<SweepDanglingLinksOp>(env, exports, "sweepDanglingLinks");
  exports.Set("lockFd", Napi::Function::New(env, RunSync<LockFdOp>, "lockFd"));
  exports.Set("unlockFd", Napi::Function::New(env, RunSync<UnlockFdOp>, "unlockFd"));
  Export<LockDirOp>(env, exports, "lockDir");
  Export<CheckLockIdentityOp>(env, exports, "checkLockIdentity");
  exports.Set("lockFdWait", Napi::Function::New(env, LockFdWait, "lockFdWait"));
  exports.Set("newMountApiAvailable", Napi::Function::New(env, NewMountApiAvailable, "newMountApiAvailable"));
  return exports;
}

}  // namespace

NODE_API_MODULE(boxlite_layout, Init)
