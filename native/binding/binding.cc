// The Node-API binding: one table of operations around the Node-free core.
//
// Each operation is a Job (job.h): Parse (JS thread) reads its arguments,
// Run (any thread) calls one core function, Result (JS thread) builds the
// value. Every operation is exported twice by the same code: `name` runs it
// inline, `nameAsync` returns a Promise and runs it on the libuv pool; a run
// there that would have to wait for a lock is handed, from scratch, to a
// thread of its own (dedicated_thread.cc). One public operation of the
// library is one call here: `crossings()` counts them, for the tests.
//
// Naming rule: an operation's Job is `ops::X`, where X is its JS export name
// with the first letter capitalized (`pidRead` is ops::PidRead). The ops
// namespace keeps those names apart from the core's result types, which are
// then spelled blx::X inside it (ops::GcScan fills a blx::GcScan). Enums
// become JS strings only through the core's *_name() functions (core.h).
#include <napi.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "job.h"

#ifndef BLX_SOURCE_HASH
#error "BLX_SOURCE_HASH must be defined by the build (scripts/source-hash.cjs)"
#endif

namespace blx::binding {

namespace {

std::atomic<uint64_t> g_crossings{0};

// ---------------------------------------------------------------------------
// Arguments: a cursor over info[]. The first bad argument throws a TypeError
// and makes every later read a no-op, so Parse reads straight through and
// returns ok().

class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info) {}
  bool ok() const { return ok_; }

  std::string Str() {
    Napi::Value v = Next();
    if (!ok_ || !v.IsString()) return Bad("expected a string argument"), std::string();
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) Bad("a path contains a NUL byte");
    return s;
  }

  // A string (as UTF-8) or the bytes of a Buffer/Uint8Array, unchanged.
  std::string Bytes() {
    Napi::Value v = Next();
    if (ok_ && v.IsTypedArray()) {
      Napi::TypedArray t = v.As<Napi::TypedArray>();
      if (t.TypedArrayType() == napi_uint8_array) {
        Napi::Uint8Array u = t.As<Napi::Uint8Array>();
        return std::string(reinterpret_cast<const char*>(u.Data()), u.ByteLength());
      }
    }
    if (!ok_ || !v.IsString()) return Bad("expected a string or a Uint8Array"), std::string();
    return v.As<Napi::String>().Utf8Value();
  }

  std::vector<std::string> Strs() {
    std::vector<std::string> out;
    Napi::Value v = Next();
    if (!ok_ || !v.IsArray()) {
      Bad("expected an array of strings");
      return out;
    }
    Napi::Array arr = v.As<Napi::Array>();
    for (uint32_t k = 0; k < arr.Length() && ok_; k++) {
      Napi::Value item = arr.Get(k);
      if (Env().IsExceptionPending() || !item.IsString()) {
        Bad("expected an array of strings");
        break;
      }
      out.push_back(item.As<Napi::String>().Utf8Value());
      if (out.back().find('\0') != std::string::npos) Bad("a path contains a NUL byte");
    }
    return out;
  }

  bool Bool() {
    Napi::Value v = Next();
    if (!ok_ || !v.IsBoolean()) return Bad("expected a boolean argument"), false;
    return v.As<Napi::Boolean>().Value();
  }

  double Num() {
    Napi::Value v = Next();
    if (!ok_ || !v.IsNumber()) return Bad("expected a number argument"), 0;
    return v.As<Napi::Number>().DoubleValue();
  }

  uint32_t U32() {
    double d = Num();
    if (ok_ && (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))) {
      Bad("expected an integer in 0..2^32-1");
    }
    return ok_ ? static_cast<uint32_t>(d) : 0;
  }

  CloneMode Clone() {
    std::string m = Str();
    if (m == "auto") return CloneMode::kAuto;
    if (m == "force") return CloneMode::kForce;
    if (m == "never") return CloneMode::kNever;
    if (ok_) Bad("clone mode must be auto, force or never");
    return CloneMode::kAuto;
  }

  // (root, boxes, id)
  BoxRef Box() {
    BoxRef r;
    r.root = Str();
    r.boxes = Str();
    r.id = Str();
    return r;
  }

  // (root, rel)
  DirRef Dir() {
    DirRef r;
    r.root = Str();
    r.rel = Str();
    return r;
  }

  // A check of the arguments as a whole.
  void Require(bool cond, const char* what) {
    if (!cond) Bad(what);
  }

  // null, or a BigUint64Array of at least n counters that another thread
  // writes while JS reads it (progress); *keep holds it alive meanwhile.
  uint64_t* Counters(size_t n, Napi::ObjectReference* keep) {
    Napi::Value v = Next();
    if (!ok_ || v.IsNull() || v.IsUndefined()) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array ||
        v.As<Napi::TypedArray>().ElementLength() < n) {
      return Bad("expected null or a BigUint64Array of counters"), nullptr;
    }
    *keep = Napi::Persistent(v.As<Napi::Object>());
    return v.As<Napi::BigUint64Array>().Data();
  }

  // (parent, uid, target)
  LinkSpec Link() {
    LinkSpec l;
    l.parent = Str();
    l.uid = static_cast<uid_t>(U32());
    l.target = Str();
    return l;
  }

 private:
  Napi::Env Env() const { return info_.Env(); }
  Napi::Value Next() { return info_[index_++]; }
  void Bad(const char* what) {
    // A throwing getter may already have left an exception pending: a
    // second one would abort the process.
    if (ok_ && !Env().IsExceptionPending()) Napi::TypeError::New(Env(), what).ThrowAsJavaScriptException();
    ok_ = false;
  }

  const Napi::CallbackInfo& info_;
  size_t index_ = 0;
  bool ok_ = true;
};

// ---------------------------------------------------------------------------
// Result helpers

Napi::Value Str(Napi::Env env, const std::string& s) { return Napi::String::New(env, s); }
Napi::Value Num(Napi::Env env, double n) { return Napi::Number::New(env, n); }

Napi::Array StrArray(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); i++) a.Set(i, v[i]);
  return a;
}

Napi::Value ErrorOrNull(Napi::Env env, const Error& e) { return e ? Napi::Value(NativeError(env, e)) : env.Null(); }

Napi::Value TextOrNull(Napi::Env env, const std::string& text, bool present) {
  return present ? Str(env, text) : env.Null();
}

std::string DeviceName(const Device& d) { return std::to_string(d.major) + ":" + std::to_string(d.minor); }

Napi::Object LinkObject(Napi::Env env, const LinkResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("state", link_state_name(r.state));
  o.Set("modeRepaired", r.mode_repaired);
  o.Set("previousTarget", r.previous_target);
  return o;
}

Napi::Object SharedObject(Napi::Env env, const SharedState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", shared_kind_name(s.kind));
  o.Set("empty", s.empty);
  o.Set("linkTarget", s.link_target);
  o.Set("readOnly", s.read_only);
  o.Set("showsMounts", s.shows_mounts);
  o.Set("writableSubmounts", StrArray(env, s.writable_submounts));
  return o;
}

Napi::Object PidObject(Napi::Env env, const PidRead& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("text", TextOrNull(env, p.text, p.present));
  o.Set("pid", p.pid > 0 ? Num(env, static_cast<double>(p.pid)) : env.Null());
  o.Set("alive", p.process.alive);
  o.Set("startTime", p.process.start_time);
  return o;
}

Napi::Object RemoveObject(Napi::Env env, const RemoveStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("entries", Num(env, static_cast<double>(s.entries)));
  o.Set("unmounted", Num(env, static_cast<double>(s.unmounted)));
  return o;
}

Napi::Object CloneObject(Napi::Env env, const CloneResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", r.name);
  o.Set("method", clone_method_name(r.method));
  o.Set("bytes", Num(env, static_cast<double>(r.bytes)));
  return o;
}

// An fd the JS side takes over once the result carrying it is delivered;
// closed here (releasing its lock) if it never is.
class HeldFd {
 public:
  ~HeldFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int* out() { return &fd_; }
  int get() const { return fd_; }
  void handed_over() { fd_ = -1; }

 private:
  int fd_ = -1;
};

Napi::Object HomeObject(Napi::Env env, const HomePrepareResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("repaired", StrArray(env, r.repaired));
  Napi::Array devices = Napi::Array::New(env, 3);
  devices.Set(0u, DeviceName(r.tmp));
  devices.Set(1u, DeviceName(r.bases));
  devices.Set(2u, DeviceName(r.disk_images));
  o.Set("devices", devices);
  return o;
}

Napi::Object BootStagedObject(Napi::Env env, const BootStaged& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("method", clone_method_name(s.method));
  o.Set("bytes", Num(env, static_cast<double>(s.bytes)));
  o.Set("sha256", s.sha256);
  return o;
}

Napi::Object UsageObject(Napi::Env env, const UsageBytes& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("files", Num(env, static_cast<double>(b.files)));
  o.Set("apparentBytes", Num(env, static_cast<double>(b.apparent)));
  o.Set("allocatedBytes", Num(env, static_cast<double>(b.allocated)));
  o.Set("sharedBytes", Num(env, static_cast<double>(b.shared)));
  o.Set("exclusiveBytes", Num(env, static_cast<double>(b.exclusive)));
  o.Set("physicalBytes", Num(env, static_cast<double>(b.physical)));
  return o;
}

Napi::Array UsageList(Napi::Env env, const std::vector<std::pair<std::string, UsageBytes>>& list) {
  Napi::Array a = Napi::Array::New(env, list.size());
  for (uint32_t i = 0; i < list.size(); i++) {
    Napi::Object o = UsageObject(env, list[i].second);
    o.Set("name", list[i].first);
    a.Set(i, o);
  }
  return a;
}

// A file's identity as JS carries it: "major:minor:ino", exact beyond 2^53.
std::string InodeText(const FileInode& i) {
  return std::to_string(i.dev_major) + ":" + std::to_string(i.dev_minor) + ":" + std::to_string(i.ino);
}

// ---------------------------------------------------------------------------
// The operations (the naming rule: see the top of this file)

namespace ops {

// ---------------------------------------------------------------------------
// Operations: filesystem facts

struct Probe : Job {
  std::string path;
  FsFacts f;
  bool Parse(Args& a) { return path = a.Str(), a.ok(); }
  Error Run(bool) override { return probe(path, &f); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", DeviceName(f.dev));
    o.Set("devMajor", f.dev.major);
    o.Set("devMinor", f.dev.minor);
    o.Set("mountId", f.mount_id_known ? Napi::Value(Napi::BigInt::New(env, f.mount_id)) : env.Null());
    o.Set("fsMagic", Num(env, static_cast<double>(f.fs_magic)));
    o.Set("fsName", f.fs_name);
    o.Set("readOnly", f.read_only);
    o.Set("nosuid", f.nosuid);
    o.Set("nodev", f.nodev);
    o.Set("noexec", f.noexec);
    o.Set("isMountRoot", f.is_mount_root);
    return o;
  }
};

struct SameFilesystem : Job {
  std::vector<std::string> paths;
  std::vector<Device> devices;
  bool Parse(Args& a) { return paths = a.Strs(), a.ok(); }
  Error Run(bool) override { return same_filesystem(paths, &devices); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, devices.size());
    for (uint32_t i = 0; i < devices.size(); i++) arr.Set(i, DeviceName(devices[i]));
    return arr;
  }
};

struct ExtentsShared : Job {
  std::string path;
  int shared = -1;
  bool Parse(Args& a) { return path = a.Str(), a.ok(); }
  Error Run(bool) override { return extents_shared(path, &shared); }
  Napi::Value Result(Napi::Env env) override {
    return shared < 0 ? env.Null() : Napi::Value(Napi::Boolean::New(env, shared == 1));
  }
};

struct CloneFile : Job {
  std::string src, dst;
  CloneMode mode = CloneMode::kAuto;
  CloneResult r;
  bool Parse(Args& a) { return src = a.Str(), dst = a.Str(), mode = a.Clone(), a.ok(); }
  Error Run(bool) override { return clone_file(src, dst, mode, &r); }
  Napi::Value Result(Napi::Env env) override { return CloneObject(env, r); }
};

// ---------------------------------------------------------------------------
// The home

struct HomePrepare : Job {
  std::string home;
  HomePrepareResult r;
  bool Parse(Args& a) { return home = a.Str(), a.ok(); }
  Error Run(bool) override { return home_prepare(home, &r); }
  Napi::Value Result(Napi::Env env) override { return HomeObject(env, r); }
};

struct HomeDevices : Job {
  std::string home;
  HomePrepareResult r;
  bool Parse(Args& a) { return home = a.Str(), a.ok(); }
  Error Run(bool) override { return home_devices(home, &r); }
  Napi::Value Result(Napi::Env env) override { return HomeObject(env, r); }
};

struct ImagesPrepare : Job {
  DirRef dir;
  std::vector<std::string> repaired;
  bool Parse(Args& a) { return dir = a.Dir(), a.ok(); }
  Error Run(bool) override { return images_prepare(dir, &repaired); }
  Napi::Value Result(Napi::Env env) override { return StrArray(env, repaired); }
};

struct ListBoxes : Job {
  DirRef dir;
  std::vector<BoxEntry> entries;
  bool Parse(Args& a) { return dir = a.Dir(), a.ok(); }
  Error Run(bool) override { return list_boxes(dir, &entries); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, entries.size());
    for (uint32_t i = 0; i < entries.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", entries[i].name);
      o.Set("kind", entry_kind_name(entries[i].kind));
      arr.Set(i, o);
    }
    return arr;
  }
};

// ---------------------------------------------------------------------------
// One box

struct BoxPrepare : Job {
  BoxRef ref;
  bool isolate = false;
  LinkSpec link;
  BoxPrepareResult r;
  bool Parse(Args& a) { return ref = a.Box(), isolate = a.Bool(), link = a.Link(), a.ok(); }
  Error Run(bool may_block) override { return box_prepare(ref, isolate, link, may_block, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("link", LinkObject(env, r.link));
    o.Set("repaired", StrArray(env, r.repaired));
    return o;
  }
};

struct BoxCleanup : Job {
  BoxRef ref;
  LinkSpec link;
  bool refuse_live_shim = true;
  CleanupResult r;
  bool Parse(Args& a) { return ref = a.Box(), link = a.Link(), refuse_live_shim = a.Bool(), a.ok(); }
  Error Run(bool may_block) override { return box_cleanup(ref, link, refuse_live_shim, may_block, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = RemoveObject(env, r.stats);
    o.Set("removed", r.removed);
    o.Set("linkRemoved", r.link_removed);
    o.Set("linkError", ErrorOrNull(env, r.link_error));
    return o;
  }
};

struct BoxWriteCa : Job {
  BoxRef ref;
  std::string cert, key;
  bool Parse(Args& a) { return ref = a.Box(), cert = a.Bytes(), key = a.Bytes(), a.ok(); }
  Error Run(bool may_block) override { return box_write_ca(ref, cert, key, may_block); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

struct BoxStageVolumeFile : Job {
  BoxRef ref;
  bool isolate = false, read_only = false;
  std::string src;
  double index = 0;
  StagedVolume r;
  bool Parse(Args& a) {
    return ref = a.Box(), isolate = a.Bool(), src = a.Str(), index = a.Num(), read_only = a.Bool(), a.ok();
  }
  Error Run(bool may_block) override {
    return box_stage_volume_file(ref, isolate, src, static_cast<uint32_t>(index), read_only, may_block, &r);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("rel", r.rel);
    o.Set("method", r.linked ? "hardlink" : clone_method_name(r.method));
    o.Set("bytes", Num(env, static_cast<double>(r.bytes)));
    return o;
  }
};

struct ContainerPrepare : Job {
  BoxRef ref;
  std::string cid;
  bool Parse(Args& a) { return ref = a.Box(), cid = a.Str(), a.ok(); }
  Error Run(bool may_block) override { return container_prepare(ref, cid, may_block); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

struct ContainerExitWrite : Job {
  BoxRef ref;
  bool isolate = false;
  std::string cid, json;
  bool Parse(Args& a) { return ref = a.Box(), isolate = a.Bool(), cid = a.Str(), json = a.Str(), a.ok(); }
  Error Run(bool may_block) override { return container_exit_write(ref, isolate, cid, json, may_block); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

struct ContainerExitRead : Job {
  BoxRef ref;
  std::string cid, json;
  bool present = false;
  bool Parse(Args& a) { return ref = a.Box(), cid = a.Str(), a.ok(); }
  Error Run(bool) override { return container_exit_read(ref, cid, &json, &present); }
  Napi::Value Result(Napi::Env env) override { return TextOrNull(env, json, present); }
};

struct SharedMount : Job {
  BoxRef ref;
  bool require_read_only = false, force_legacy = false;
  MountResult r;
  bool Parse(Args& a) { return ref = a.Box(), require_read_only = a.Bool(), force_legacy = a.Bool(), a.ok(); }
  Error Run(bool may_block) override { return shared_mount(ref, require_read_only, force_legacy, may_block, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("method", mount_method_name(r.method));
    o.Set("reused", r.reused);
    o.Set("fallback", ErrorOrNull(env, r.fallback));
    return o;
  }
};

struct SharedUnmount : Job {
  BoxRef ref;
  UnmountOutcome outcome = UnmountOutcome::kNone;
  bool Parse(Args& a) { return ref = a.Box(), a.ok(); }
  Error Run(bool may_block) override { return shared_unmount(ref, may_block, &outcome); }
  Napi::Value Result(Napi::Env env) override { return Str(env, unmount_outcome_name(outcome)); }
};

struct SharedInspect : Job {
  BoxRef ref;
  bool submounts = false;
  SharedState s;
  bool Parse(Args& a) { return ref = a.Box(), submounts = a.Bool(), a.ok(); }
  Error Run(bool) override { return shared_inspect(ref, submounts, &s); }
  Napi::Value Result(Napi::Env env) override { return SharedObject(env, s); }
};

struct ShimInstall : Job {
  BoxRef ref;
  std::string shim;
  CloneMode mode = CloneMode::kAuto;
  std::vector<CloneResult> files;
  bool Parse(Args& a) { return ref = a.Box(), shim = a.Str(), mode = a.Clone(), a.ok(); }
  Error Run(bool may_block) override { return shim_install(ref, shim, mode, may_block, &files); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, files.size());
    for (uint32_t i = 0; i < files.size(); i++) arr.Set(i, CloneObject(env, files[i]));
    return arr;
  }
};

struct BootPublish : Job {
  BoxRef ref;
  BootSources src;
  std::string format;
  BootPublishResult r;
  bool Parse(Args& a) {
    return ref = a.Box(), src.kernel = a.Str(), src.initramfs = a.Str(), src.legacy = a.Bool(), format = a.Str(),
           a.ok();
  }
  Error Run(bool may_block) override { return boot_publish(ref, src, format, may_block, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("generation", r.generation);
    o.Set("manifest", r.manifest);
    o.Set("kernel", BootStagedObject(env, r.kernel));
    o.Set("initramfs", r.has_initramfs ? Napi::Value(BootStagedObject(env, r.initramfs)) : env.Null());
    o.Set("pruned", StrArray(env, r.pruned));
    o.Set("legacyRemoved", StrArray(env, r.legacy_removed));
    o.Set("leftoversRemoved", StrArray(env, r.leftovers_removed));
    o.Set("pruneError", ErrorOrNull(env, r.prune_error));
    return o;
  }
};

struct BootRead : Job {
  BoxRef ref;
  blx::BootRead r;
  bool Parse(Args& a) { return ref = a.Box(), a.ok(); }
  Error Run(bool) override { return boot_read(ref, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("manifest", TextOrNull(env, r.manifest, r.present));
    o.Set("generation", r.generation);
    o.Set("kernelSha256", r.kernel_sha256);
    o.Set("initramfsSha256", TextOrNull(env, r.initramfs_sha256, r.has_initramfs));
    o.Set("legacy", StrArray(env, r.legacy));
    return o;
  }
};

struct BoxInspect : Job {
  BoxRef ref;
  LinkSpec link;
  std::vector<std::string> socket_names;
  BoxInspection r;
  bool Parse(Args& a) { return ref = a.Box(), link = a.Link(), socket_names = a.Strs(), a.ok(); }
  Error Run(bool) override { return box_inspect(ref, link, socket_names, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("isolates", r.isolates);
    o.Set("shared", SharedObject(env, r.shared));
    Napi::Object link_info = Napi::Object::New(env);
    link_info.Set("state", link_info_state_name(r.link.state));
    link_info.Set("target", r.link.target);
    o.Set("link", link_info);
    Napi::Array bin = Napi::Array::New(env, r.bin.size());
    for (uint32_t i = 0; i < r.bin.size(); i++) {
      Napi::Object f = Napi::Object::New(env);
      f.Set("name", r.bin[i].name);
      f.Set("bytes", Num(env, static_cast<double>(r.bin[i].bytes)));
      f.Set("mode", r.bin[i].mode);
      f.Set("sharesExtents", r.bin[i].shares_extents < 0
                                 ? env.Null()
                                 : Napi::Value(Napi::Boolean::New(env, r.bin[i].shares_extents == 1)));
      bin.Set(i, f);
    }
    o.Set("bin", bin);
    o.Set("pid", PidObject(env, r.pid));
    o.Set("pidError", ErrorOrNull(env, r.pid_error));
    o.Set("exit", TextOrNull(env, r.exit_text, r.exit_present));
    o.Set("exitError", ErrorOrNull(env, r.exit_error));
    o.Set("exitPrevious", TextOrNull(env, r.exit_previous_text, r.exit_previous_present));
    o.Set("exitPreviousError", ErrorOrNull(env, r.exit_previous_error));
    Napi::Array sockets = Napi::Array::New(env, r.sockets.size());
    for (uint32_t i = 0; i < r.sockets.size(); i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", r.sockets[i].name);
      p.Set("state", socket_state_name(r.sockets[i].state));
      sockets.Set(i, p);
    }
    o.Set("sockets", sockets);
    return o;
  }
};

struct BoxPolicyFacts : Job {
  BoxRef ref;
  std::vector<std::string> hosts, roots;
  bool canonical = false;
  PolicyFacts r;
  bool Parse(Args& a) { return ref = a.Box(), hosts = a.Strs(), roots = a.Strs(), canonical = a.Bool(), a.ok(); }
  Error Run(bool) override { return box_policy_facts(ref, hosts, roots, canonical, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Object entries = Napi::Object::New(env);
    Napi::Object links = Napi::Object::New(env);
    for (const PolicyEntry& e : r.entries) {
      entries.Set(e.rel, path_kind_name(e.kind));
      if (e.kind == PathKind::kSymlink) links.Set(e.rel, e.link_target);
    }
    o.Set("entries", entries);
    o.Set("links", links);
    Napi::Array chains = Napi::Array::New(env, r.chains.size());
    for (uint32_t i = 0; i < r.chains.size(); i++) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("image", r.chains[i].image);
      c.Set("files", StrArray(env, r.chains[i].files));
      c.Set("real", StrArray(env, r.chains[i].real));
      Napi::Array block = Napi::Array::New(env, r.chains[i].block.size());
      for (uint32_t j = 0; j < r.chains[i].block.size(); j++)
        block.Set(j, Napi::Boolean::New(env, r.chains[i].block[j]));
      c.Set("block", block);
      c.Set("error", ErrorOrNull(env, r.chains[i].error));
      chains.Set(i, c);
    }
    o.Set("chains", chains);
    Napi::Array hosts_out = Napi::Array::New(env, r.hosts.size());
    for (uint32_t i = 0; i < r.hosts.size(); i++) {
      Napi::Object h = Napi::Object::New(env);
      h.Set("path", r.hosts[i].path);
      h.Set("kind", path_kind_name(r.hosts[i].kind));
      h.Set("exists", r.hosts[i].exists);
      h.Set("isDir", r.hosts[i].is_dir);
      h.Set("linkTarget", r.hosts[i].link_target);
      h.Set("real", r.hosts[i].real);
      hosts_out.Set(i, h);
    }
    o.Set("hosts", hosts_out);
    o.Set("roots", StrArray(env, r.roots));
    Napi::Array canonical = Napi::Array::New(env, r.canonical.size());
    for (uint32_t i = 0; i < r.canonical.size(); i++) {
      canonical.Set(i, StrArray(env, {r.canonical[i].first, r.canonical[i].second}));
    }
    o.Set("canonical", canonical);
    return o;
  }
};

struct ShimPrepare : Job {
  BoxRef ref;
  LinkSpec link;
  ShimPrepareResult r;
  ~ShimPrepare() override {
    if (r.stderr_fd >= 0) ::close(r.stderr_fd);
  }
  bool Parse(Args& a) { return ref = a.Box(), link = a.Link(), a.ok(); }
  Error Run(bool may_block) override { return shim_prepare(ref, link, may_block, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("link", LinkObject(env, r.link));
    o.Set("rotated", r.rotated);
    o.Set("stderrFd", r.stderr_fd);
    return o;
  }
  void Delivered() override { r.stderr_fd = -1; }
};

// ---------------------------------------------------------------------------
// Sockets

struct SocketLinkEnsure : Job {
  LinkSpec link;
  std::string name;
  LinkResult r;
  bool Parse(Args& a) { return link = a.Link(), name = a.Str(), a.ok(); }
  Error Run(bool) override { return socket_link_ensure(link, name, &r); }
  Napi::Value Result(Napi::Env env) override { return LinkObject(env, r); }
};

struct SocketLinkRemove : Job {
  LinkSpec link;
  std::string name;
  bool removed = false;
  bool Parse(Args& a) { return link = a.Link(), name = a.Str(), a.ok(); }
  Error Run(bool) override { return socket_link_remove(link, name, &removed); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, removed); }
};

struct SocketLinksSweep : Job {
  LinkSpec link;
  bool report_only = false;
  std::vector<std::string> names;
  bool Parse(Args& a) { return link = a.Link(), report_only = a.Bool(), a.ok(); }
  Error Run(bool) override { return socket_links_sweep(link, report_only, &names); }
  Napi::Value Result(Napi::Env env) override { return StrArray(env, names); }
};

// ---------------------------------------------------------------------------
// Locks

struct RuntimeLock : Job {
  std::string home;
  HeldFd fd;
  bool Parse(Args& a) { return home = a.Str(), a.ok(); }
  Error Run(bool) override { return runtime_lock(home, fd.out()); }
  Napi::Value Result(Napi::Env env) override { return Num(env, fd.get()); }
  void Delivered() override { fd.handed_over(); }
};

struct RuntimeLockAdopt : Job {
  std::string home;
  int fd = -1;
  bool adopted = false;
  bool Parse(Args& a) { return home = a.Str(), fd = static_cast<int>(a.U32()), a.ok(); }
  Error Run(bool) override { return runtime_lock_adopt(home, fd, &adopted); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, adopted); }
};

struct LockAllocate : Job {
  DirRef dir;
  uint32_t id = 0;
  bool Parse(Args& a) { return dir = a.Dir(), a.ok(); }
  Error Run(bool) override { return lock_allocate(dir, &id); }
  Napi::Value Result(Napi::Env env) override { return Num(env, id); }
};

struct LockAcquire : Job {
  DirRef dir;
  uint32_t id = 0;
  bool wait = false, acquired = false;
  HeldFd fd;
  bool Parse(Args& a) { return dir = a.Dir(), id = a.U32(), wait = a.Bool(), a.ok(); }
  Error Run(bool may_block) override { return lock_acquire(dir, id, wait, may_block, fd.out(), &acquired); }
  Napi::Value Result(Napi::Env env) override { return acquired ? Num(env, fd.get()) : env.Null(); }
  void Delivered() override { fd.handed_over(); }
};

struct LockFree : Job {
  DirRef dir;
  uint32_t id = 0;
  bool Parse(Args& a) { return dir = a.Dir(), id = a.U32(), a.ok(); }
  Error Run(bool) override { return lock_free(dir, id); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

// ---------------------------------------------------------------------------
// Records

struct FileRead : Job {
  DirRef dir;
  std::string name, text;
  double cap = 0;
  bool present = false;
  bool Parse(Args& a) { return dir = a.Dir(), name = a.Str(), cap = a.Num(), a.ok(); }
  Error Run(bool) override { return file_read(dir, name, static_cast<size_t>(cap), &text, &present); }
  Napi::Value Result(Napi::Env env) override { return TextOrNull(env, text, present); }
};

struct FileWrite : Job {
  DirRef dir;
  std::string name, data;
  uint32_t mode = 0644;
  bool Parse(Args& a) { return dir = a.Dir(), name = a.Str(), data = a.Bytes(), mode = a.U32(), a.ok(); }
  Error Run(bool) override { return file_write(dir, name, data, static_cast<mode_t>(mode)); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};

struct FileRename : Job {
  DirRef dir;
  std::string from, to;
  bool renamed = false;
  bool Parse(Args& a) { return dir = a.Dir(), from = a.Str(), to = a.Str(), a.ok(); }
  Error Run(bool) override { return file_rename(dir, from, to, &renamed); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, renamed); }
};

struct FileRemove : Job {
  DirRef dir;
  std::string name;
  bool removed = false;
  bool Parse(Args& a) { return dir = a.Dir(), name = a.Str(), a.ok(); }
  Error Run(bool) override { return file_remove(dir, name, &removed); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, removed); }
};

struct PidRead : Job {
  DirRef dir;
  std::string name;
  blx::PidRead r;
  bool Parse(Args& a) { return dir = a.Dir(), name = a.Str(), a.ok(); }
  Error Run(bool) override { return pid_read(dir, name, &r); }
  Napi::Value Result(Napi::Env env) override { return PidObject(env, r); }
};

struct PidWrite : Job {
  DirRef dir;
  std::string name, start_time;
  double pid = 0;
  std::vector<std::string> caps;
  bool Parse(Args& a) { return dir = a.Dir(), name = a.Str(), pid = a.Num(), caps = a.Strs(), a.ok(); }
  Error Run(bool) override { return pid_write(dir, name, static_cast<int64_t>(pid), caps, &start_time); }
  Napi::Value Result(Napi::Env env) override { return Str(env, start_time); }
};

// ---------------------------------------------------------------------------
// Disk usage

struct DiskUsage : Job {
  std::string home;
  Napi::ObjectReference keep;  // the progress counters' array
  UsageProgress progress;
  blx::DiskUsage r;
  bool Parse(Args& a) {
    home = a.Str();
    uint64_t* counters = a.Counters(2, &keep);
    progress.files = counters;
    progress.bytes = counters == nullptr ? nullptr : counters + 1;
    return a.ok();
  }
  Error Run(bool) override { return disk_usage(home, progress, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("extentsKnown", Napi::Boolean::New(env, r.extents_known));
    o.Set("total", UsageObject(env, r.total));
    o.Set("areas", UsageList(env, r.areas));
    o.Set("boxes", UsageList(env, r.boxes));
    o.Set("hardLinksSkipped", Num(env, static_cast<double>(r.hard_links_skipped)));
    o.Set("mountsSkipped", Num(env, static_cast<double>(r.mounts_skipped)));
    o.Set("specialSkipped", Num(env, static_cast<double>(r.special_skipped)));
    o.Set("fsSizeBytes", Num(env, static_cast<double>(r.fs_size_bytes)));
    o.Set("fsUsedBytes", Num(env, static_cast<double>(r.fs_used_bytes)));
    return o;
  }
};

// ---------------------------------------------------------------------------
// gc and stored images

struct GcScan : Job {
  std::string home;
  LinkSpec link;
  blx::GcScan r;
  bool Parse(Args& a) { return home = a.Str(), link = a.Link(), a.ok(); }
  Error Run(bool) override { return gc_scan(home, link, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array boxes = Napi::Array::New(env, r.boxes.size());
    for (uint32_t i = 0; i < r.boxes.size(); i++) {
      const GcBox& b = r.boxes[i];
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", b.name);
      e.Set("kind", entry_kind_name(b.kind));
      e.Set("pid", PidObject(env, b.pid));
      e.Set("pidError", ErrorOrNull(env, b.pid_error));
      e.Set("partialCopies", StrArray(env, b.partial_copies));
      e.Set("bootLeftovers", StrArray(env, b.boot_leftovers));
      e.Set("locked", Napi::Boolean::New(env, b.locked));
      e.Set("changedSec", Napi::Number::New(env, static_cast<double>(b.changed_sec)));
      boxes.Set(i, e);
    }
    o.Set("boxes", boxes);
    Napi::Array mounts = Napi::Array::New(env, r.mounts.size());
    for (uint32_t i = 0; i < r.mounts.size(); i++) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("owner", r.mounts[i].owner);
      m.Set("rel", r.mounts[i].rel);
      m.Set("mountId", std::to_string(r.mounts[i].mount_id));
      mounts.Set(i, m);
    }
    o.Set("mounts", mounts);
    o.Set("tmpEntries", StrArray(env, r.tmp_entries));
    o.Set("danglingLinks", StrArray(env, r.dangling_links));
    o.Set("linksError", ErrorOrNull(env, r.links_error));
    return o;
  }
};

struct StorageScan : Job {
  std::string home;
  blx::StorageScan r;
  bool Parse(Args& a) { return home = a.Str(), a.ok(); }
  Error Run(bool) override { return storage_scan(home, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array files = Napi::Array::New(env, r.files.size());
    for (uint32_t i = 0; i < r.files.size(); i++) {
      const StorageFile& f = r.files[i];
      Napi::Object e = Napi::Object::New(env);
      e.Set("dir", f.dir);
      e.Set("name", f.name);
      e.Set("regular", Napi::Boolean::New(env, f.regular));
      e.Set("bytes", Num(env, static_cast<double>(f.size)));
      e.Set("mtimeSec", Napi::Number::New(env, static_cast<double>(f.mtime_sec)));
      e.Set("inode", InodeText(f.inode));
      e.Set("referenced", Napi::Boolean::New(env, f.referenced));
      e.Set("error", ErrorOrNull(env, f.error));
      files.Set(i, e);
    }
    o.Set("files", files);
    Napi::Array problems = Napi::Array::New(env, r.problems.size());
    for (uint32_t i = 0; i < r.problems.size(); i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("image", r.problems[i].image);
      p.Set("error", ErrorOrNull(env, r.problems[i].error));
      problems.Set(i, p);
    }
    o.Set("problems", problems);
    o.Set("tmpLeftovers", StrArray(env, r.tmp_leftovers));
    o.Set("imagesRead", Napi::Number::New(env, static_cast<double>(r.images_read)));
    return o;
  }
};

struct StorageRemove : Job {
  std::string home, dir, name, inode;
  bool tmp_leftover = false;
  FileInode parsed;
  bool removed = false;
  bool Parse(Args& a) {
    home = a.Str();
    dir = a.Str();
    name = a.Str();
    inode = a.Str();
    tmp_leftover = a.Bool();
    unsigned long long major = 0, minor = 0, ino = 0;
    int used = 0;
    bool ok = std::sscanf(inode.c_str(), "%llu:%llu:%llu%n", &major, &minor, &ino, &used) == 3 &&
              static_cast<size_t>(used) == inode.size();
    a.Require(tmp_leftover || ok, "an inode must read major:minor:ino");
    parsed = FileInode{static_cast<uint32_t>(major), static_cast<uint32_t>(minor), static_cast<uint64_t>(ino)};
    return a.ok();
  }
  Error Run(bool) override { return storage_remove(home, dir, name, parsed, tmp_leftover, &removed); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, removed); }
};

struct GcUnmount : Job {
  std::string home, owner;
  std::vector<GcMount> mounts;
  std::vector<blx::GcUnmount> r;
  bool Parse(Args& a) {
    home = a.Str();
    owner = a.Str();
    std::vector<std::string> rels = a.Strs();
    std::vector<std::string> ids = a.Strs();  // decimal mount ids (exact beyond 2^53)
    a.Require(rels.size() == ids.size(), "mount paths and ids differ in length");
    for (size_t i = 0; i < rels.size() && a.ok(); i++) {
      mounts.push_back(GcMount{owner, rels[i], std::strtoull(ids[i].c_str(), nullptr, 10)});
    }
    return a.ok();
  }
  Error Run(bool) override { return gc_unmount(home, owner, mounts, &r); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array arr = Napi::Array::New(env, r.size());
    for (uint32_t i = 0; i < r.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("rel", r[i].rel);
      o.Set("detached", r[i].detached);
      o.Set("error", ErrorOrNull(env, r[i].error));
      arr.Set(i, o);
    }
    return arr;
  }
};

struct GcRemove : Job {
  std::string home, rel_dir, name;
  RemoveStats r;
  bool Parse(Args& a) { return home = a.Str(), rel_dir = a.Str(), name = a.Str(), a.ok(); }
  Error Run(bool) override { return gc_remove(home, rel_dir, name, &r); }
  Napi::Value Result(Napi::Env env) override { return RemoveObject(env, r); }
};

}  // namespace ops

// ---------------------------------------------------------------------------
// Runners

template <class Op>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  g_crossings.fetch_add(1);
  Napi::Env env = info.Env();
  Op op;
  Args args(info);
  if (!op.Parse(args)) return env.Undefined();
  if (Error e = op.Run(true)) {
    napi_throw(env, NativeError(env, e));
    return env.Undefined();
  }
  Napi::Value result = op.Result(env);
  if (!env.IsExceptionPending()) op.Delivered();
  return result;
}

class PoolWorker : public Napi::AsyncWorker {
 public:
  PoolWorker(Napi::Env env, Job* job, napi_deferred deferred)
      : Napi::AsyncWorker(env, "boxlite-layout"), job_(job), deferred_(deferred) {}

 protected:
  void Execute() override { error_ = job_->Run(false); }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (error_.reason == Reason::kWouldBlock) {
      // Someone holds the lock: wait for it where waiting harms nobody.
      RunOnDedicatedThread(Env(), deferred_, job_.release());
      return;
    }
    Settle(Env(), deferred_, *job_, error_);
  }

 private:
  std::unique_ptr<Job> job_;
  napi_deferred deferred_;
  Error error_;
};

template <class Op>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  g_crossings.fetch_add(1);
  Napi::Env env = info.Env();
  auto op = std::make_unique<Op>();
  Args args(info);
  if (!op->Parse(args)) return env.Undefined();
  napi_deferred deferred;
  napi_value promise;
  napi_create_promise(env, &deferred, &promise);
  (new PoolWorker(env, op.release(), deferred))->Queue();
  return Napi::Value(env, promise);
}

template <class Op>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, RunSync<Op>, name));
  std::string async_name = std::string(name) + "Async";
  exports.Set(async_name, Napi::Function::New(env, RunAsync<Op>, async_name));
}

Napi::Value NewMountApiAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), new_mount_api_available());
}

Napi::Value DarwinUserCacheDir(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), darwin_user_cache_dir());
}

Napi::Value Crossings(const Napi::CallbackInfo& info) {
  return Num(info.Env(), static_cast<double>(g_crossings.load()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sourceHash", BLX_SOURCE_HASH);
#if defined(__linux__)
  exports.Set("platform", "linux");
#elif defined(__APPLE__)
  exports.Set("platform", "darwin");
#endif
  Export<ops::Probe>(env, exports, "probe");
  Export<ops::SameFilesystem>(env, exports, "sameFilesystem");
  Export<ops::ExtentsShared>(env, exports, "extentsShared");
  Export<ops::CloneFile>(env, exports, "cloneFile");
  Export<ops::HomePrepare>(env, exports, "homePrepare");
  Export<ops::HomeDevices>(env, exports, "homeDevices");
  Export<ops::ImagesPrepare>(env, exports, "imagesPrepare");
  Export<ops::ListBoxes>(env, exports, "listBoxes");
  Export<ops::BoxPrepare>(env, exports, "boxPrepare");
  Export<ops::BoxCleanup>(env, exports, "boxCleanup");
  Export<ops::BoxWriteCa>(env, exports, "boxWriteCa");
  Export<ops::BoxStageVolumeFile>(env, exports, "boxStageVolumeFile");
  Export<ops::ContainerPrepare>(env, exports, "containerPrepare");
  Export<ops::ContainerExitWrite>(env, exports, "containerExitWrite");
  Export<ops::ContainerExitRead>(env, exports, "containerExitRead");
  Export<ops::SharedMount>(env, exports, "sharedMount");
  Export<ops::SharedUnmount>(env, exports, "sharedUnmount");
  Export<ops::SharedInspect>(env, exports, "sharedInspect");
  Export<ops::ShimInstall>(env, exports, "shimInstall");
  Export<ops::BoxInspect>(env, exports, "boxInspect");
  Export<ops::BootPublish>(env, exports, "bootPublish");
  Export<ops::BootRead>(env, exports, "bootRead");
  Export<ops::BoxPolicyFacts>(env, exports, "boxPolicyFacts");
  Export<ops::ShimPrepare>(env, exports, "shimPrepare");
  Export<ops::SocketLinkEnsure>(env, exports, "socketLinkEnsure");
  Export<ops::SocketLinkRemove>(env, exports, "socketLinkRemove");
  Export<ops::SocketLinksSweep>(env, exports, "socketLinksSweep");
  Export<ops::RuntimeLock>(env, exports, "runtimeLock");
  Export<ops::RuntimeLockAdopt>(env, exports, "runtimeLockAdopt");
  Export<ops::LockAllocate>(env, exports, "lockAllocate");
  Export<ops::LockAcquire>(env, exports, "lockAcquire");
  Export<ops::LockFree>(env, exports, "lockFree");
  Export<ops::FileRead>(env, exports, "fileRead");
  Export<ops::FileWrite>(env, exports, "fileWrite");
  Export<ops::FileRename>(env, exports, "fileRename");
  Export<ops::FileRemove>(env, exports, "fileRemove");
  Export<ops::PidRead>(env, exports, "pidRead");
  Export<ops::PidWrite>(env, exports, "pidWrite");
  Export<ops::GcScan>(env, exports, "gcScan");
  Export<ops::GcUnmount>(env, exports, "gcUnmount");
  Export<ops::GcRemove>(env, exports, "gcRemove");
  Export<ops::DiskUsage>(env, exports, "diskUsage");
  Export<ops::StorageScan>(env, exports, "storageScan");
  Export<ops::StorageRemove>(env, exports, "storageRemove");
  exports.Set("newMountApiAvailable", Napi::Function::New(env, NewMountApiAvailable, "newMountApiAvailable"));
  exports.Set("darwinUserCacheDir", Napi::Function::New(env, DarwinUserCacheDir, "darwinUserCacheDir"));
  exports.Set("crossings", Napi::Function::New(env, Crossings, "crossings"));
  return exports;
}

}  // namespace blx::binding

namespace {
Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return blx::binding::Init(env, exports); }
}  // namespace

NODE_API_MODULE(boxlite_layout, InitModule)
