// The raw addon: how it is loaded, what it exports (typed), and `nativeCall`,
// the one way the facade crosses into it. Internal: the public API is
// index.ts. Every operation exists as `name` (runs inline) and `nameAsync`
// (same work on the libuv pool, or on a thread of its own if it must wait
// for a lock): the sync and Promise forms of a public method are the same
// native work. See docs/design.md#layers.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isNativeError, LayoutError, toLayoutError, type ErrorContext, type NativeErrorFields } from './errors.ts'

/** A box as the core addresses it: root opened as given, boxes and id beneath it. */
export type BoxArgs = [root: string, boxes: string, id: string]
/** A directory as the core addresses it: rel resolved beneath root. */
export type DirArgs = [root: string, rel: string]
/** The socket link: /tmp/bl-{uid}, its owner, and the box's real sockets dir. */
export type LinkArgs = [parent: string, uid: number, target: string]

export interface NativeFsFacts {
  device: string
  devMajor: number
  devMinor: number
  mountId: bigint | null
  fsMagic: number
  fsName: string
  readOnly: boolean
  nosuid: boolean
  nodev: boolean
  noexec: boolean
  isMountRoot: boolean
}

export type NativeCloneMode = 'auto' | 'force' | 'never'
export type NativeCloneMethod = 'reflink' | 'clonefile' | 'copy_file_range' | 'copy' | 'skipped'

export interface NativeClone {
  name: string
  method: NativeCloneMethod
  bytes: number
}

export interface NativeHomeResult {
  repaired: string[]
  /** "major:minor" of tmp, bases and images/disk-images. */
  devices: [string, string, string]
}

export interface NativeLink {
  state: 'created' | 'kept' | 'replaced'
  modeRepaired: boolean
  previousTarget: string
}

export interface NativeRemoved {
  entries: number
  unmounted: number
}

export interface NativeShared {
  kind: 'missing' | 'directory' | 'symlink' | 'mount' | 'other'
  empty: boolean
  linkTarget: string
  readOnly: boolean
  showsMounts: boolean
  writableSubmounts: string[]
}

export interface NativePid {
  /** The file's text (capped), or null when there is none. */
  text: string | null
  /** Line 1, when it is a decimal pid. */
  pid: number | null
  alive: boolean
  /** The live process's start time ("" when unknown or gone). */
  startTime: string
}

export interface NativeInspection {
  isolates: boolean
  shared: NativeShared
  link: { state: 'ok' | 'missing' | 'foreign' | 'not-a-link', target: string }
  bin: Array<{ name: string, bytes: number, mode: number, sharesExtents: boolean | null }>
  pid: NativePid
  pidError: NativeErrorFields | null
  exit: string | null
  exitError: NativeErrorFields | null
  exitPrevious: string | null
  exitPreviousError: NativeErrorFields | null
  sockets: Array<{ name: string, state: NativeSocketState }>
}

export type NativeSocketState = 'missing' | 'listening' | 'refused' | 'not-a-socket'

/** A stored file (bases/, images/disk-images/) as storageScan reads it. */
export interface NativeStoredFile {
  dir: 'bases' | 'images/disk-images'
  name: string
  regular: boolean
  bytes: number
  mtimeSec: number
  /** "major:minor:ino": which file it was, checked again before removal. */
  inode: string
  /** Some backing chain names this file. */
  referenced: boolean
  /** It could not be read (its own chain is unknown). */
  error: NativeErrorFields | null
}

export interface NativeStorageScan {
  files: NativeStoredFile[]
  /** Chains read only in part: what they name beyond is unknown. */
  problems: Array<{ image: string, error: NativeErrorFields | null }>
  /** tmp/storage-gc-* entries: removals a crash interrupted. */
  tmpLeftovers: string[]
  imagesRead: number
}

export interface NativeGcScan {
  boxes: Array<{
    name: string
    kind: 'box' | 'trash' | 'stray'
    pid: NativePid
    pidError: NativeErrorFields | null
    partialCopies: string[]
    /** boot/.staging-* and boot/.current.json-*.staging: publishes that were interrupted. */
    bootLeftovers: string[]
    /** Its box lock was held when the scan tried it. */
    locked: boolean
    /** mtime of the box dir, seconds since the epoch. */
    changedSec: number
  }>
  /** Deepest first; rel is relative to the boxes dir, owner its first component. */
  mounts: Array<{ owner: string, rel: string, mountId: string }>
  tmpEntries: string[]
  danglingLinks: string[]
  linksError: NativeErrorFields | null
}

export interface NativeUsageBytes {
  files: number
  apparentBytes: number
  allocatedBytes: number
  sharedBytes: number
  exclusiveBytes: number
  physicalBytes: number
}

export interface NativeDiskUsage {
  extentsKnown: boolean
  total: NativeUsageBytes
  areas: Array<NativeUsageBytes & { name: string }>
  boxes: Array<NativeUsageBytes & { name: string }>
  hardLinksSkipped: number
  mountsSkipped: number
  specialSkipped: number
  fsSizeBytes: number
  fsUsedBytes: number
}

export type NativePathKind = 'missing' | 'directory' | 'file' | 'symlink' | 'other'

export interface NativePolicyFacts {
  /** By path relative to the box dir; never followed. */
  entries: Record<string, NativePathKind>
  /** The target of each entry that is a symlink. */
  links: Record<string, string>
  /** real: each backing file's kernel path; block: it is a block device. */
  chains: Array<{ image: string, files: string[], real: string[], block: boolean[], error: NativeErrorFields | null }>
  /** real: a directory's canonical path ('' otherwise). */
  hosts: Array<{ path: string, kind: NativePathKind, exists: boolean, isDir: boolean, linkTarget: string, real: string }>
  /** The backing roots asked about, as the kernel names them. */
  roots: string[]
  /** When asked: [path, its macOS canonical form] for every path above. */
  canonical: Array<[string, string]>
}

export interface NativeBootStaged {
  method: Exclude<NativeCloneMethod, 'skipped'>
  bytes: number
  sha256: string
}

export interface NativeBootPublish {
  generation: string
  manifest: string
  kernel: NativeBootStaged
  initramfs: NativeBootStaged | null
  pruned: string[]
  legacyRemoved: string[]
  leftoversRemoved: string[]
  pruneError: NativeErrorFields | null
}

/**
 * The operations on one box, by their sync signature after the box's
 * address: each takes BoxArgs first (see NativeOps), then these.
 */
export interface NativeBoxOps {
  boxPrepare(isolate: boolean, ...link: LinkArgs): { link: NativeLink, repaired: string[] }
  boxCleanup(...args: [...LinkArgs, refuseLiveShim: boolean]): NativeRemoved & { removed: boolean, linkRemoved: boolean, linkError: NativeErrorFields | null }
  boxWriteCa(cert: string | Uint8Array, key: string | Uint8Array): undefined
  /** rel: user-volumes/uservol{index}/{name} in the guest share. */
  boxStageVolumeFile(isolate: boolean, src: string, index: number, readOnly: boolean): {
    rel: string
    method: 'hardlink' | Exclude<NativeCloneMethod, 'skipped'>
    bytes: number
  }
  containerPrepare(cid: string): undefined
  containerExitWrite(isolate: boolean, cid: string, json: string): undefined
  containerExitRead(cid: string): string | null
  sharedMount(requireReadOnly: boolean, forceLegacy: boolean): {
    method: 'bind-ro' | 'bind-ro-legacy' | 'symlink'
    reused: boolean
    fallback: NativeErrorFields | null
  }
  sharedUnmount(): 'unmounted' | 'unlinked' | 'none'
  sharedInspect(submounts: boolean): NativeShared
  shimInstall(shim: string, mode: NativeCloneMode): NativeClone[]
  /** socketNames: the sockets/ entries to probe with a non-blocking connect. */
  boxInspect(...args: [...LinkArgs, socketNames: string[]]): NativeInspection
  /** Stage, switch current.json, prune: one boot generation published (legacy: from boot/kernel). */
  bootPublish(kernel: string, initramfs: string, legacy: boolean, format: string): NativeBootPublish
  /** current.json (null when absent) and the checksums of the files it names, as they are now. */
  bootRead(): { manifest: string | null, generation: string, kernelSha256: string, initramfsSha256: string | null, legacy: string[] }
  /** The box's grantable paths by relative name, and its disks' backing chains. */
  boxPolicyFacts(hosts: string[], backingRoots: string[], canonical: boolean): NativePolicyFacts
  /** sockets/ and the link, exit rotated and re-created empty, logs/console.log, and shim.stderr's append fd. */
  shimPrepare(...link: LinkArgs): { link: NativeLink, rotated: boolean, stderrFd: number }
}

export type BoxOpName = keyof NativeBoxOps
/** A box operation's arguments after the box's address. */
export type BoxOpArgs<K extends BoxOpName> = Parameters<NativeBoxOps[K]>

/** Every other operation, by its sync signature. */
export interface NativeHomeOps {
  probe(path: string): NativeFsFacts
  sameFilesystem(paths: string[]): string[]
  /** true: shares extents (reflinked); false: does not; null: cannot tell. */
  extentsShared(path: string): boolean | null
  cloneFile(src: string, dst: string, mode: NativeCloneMode): NativeClone
  homePrepare(home: string): NativeHomeResult
  homeDevices(home: string): NativeHomeResult
  imagesPrepare(...dir: DirArgs): string[]
  listBoxes(...dir: DirArgs): Array<{ name: string, kind: 'box' | 'trash' | 'stray' }>
  socketLinkEnsure(...args: [...LinkArgs, name: string]): NativeLink
  socketLinkRemove(...args: [...LinkArgs, name: string]): boolean
  socketLinksSweep(...args: [...LinkArgs, reportOnly: boolean]): string[]
  /** The fd holding {home}/.lock. */
  runtimeLock(home: string): number
  runtimeLockAdopt(home: string, fd: number): boolean
  lockAllocate(...dir: DirArgs): number
  /** The fd holding the lock, or null when !wait and it is taken. */
  lockAcquire(...args: [...DirArgs, id: number, wait: boolean]): number | null
  lockFree(...args: [...DirArgs, id: number]): undefined
  fileRead(...args: [...DirArgs, name: string, cap: number]): string | null
  fileWrite(...args: [...DirArgs, name: string, data: string | Uint8Array, mode: number]): undefined
  fileRename(...args: [...DirArgs, from: string, to: string]): boolean
  fileRemove(...args: [...DirArgs, name: string]): boolean
  pidRead(...args: [...DirArgs, name: string]): NativePid
  /** Returns the start time recorded ("" when unknown). */
  pidWrite(...args: [...DirArgs, name: string, pid: number, capabilities: string[]]): string
  gcScan(...args: [home: string, ...LinkArgs]): NativeGcScan
  gcUnmount(home: string, owner: string, rels: string[], mountIds: string[]): Array<{
    rel: string
    detached: boolean
    error: NativeErrorFields | null
  }>
  gcRemove(home: string, relDir: string, name: string): NativeRemoved
  /** progress, when given, gets [files, allocated bytes] so far, written from the scanning thread. */
  diskUsage(home: string, progress: BigUint64Array | null): NativeDiskUsage
  storageScan(home: string): NativeStorageScan
  /** false: no longer the scanned file (gone or replaced), left alone. */
  storageRemove(home: string, dir: string, name: string, inode: string, tmpLeftover: boolean): boolean
}

/**
 * Every operation, by its sync signature: a box operation takes the box's
 * address first. test/ops.test.ts holds the binding's exports and results
 * to these declarations.
 */
export type NativeOps = NativeHomeOps & {
  [K in BoxOpName]: (...args: [...BoxArgs, ...BoxOpArgs<K>]) => ReturnType<NativeBoxOps[K]>
}

export type OpName = keyof NativeOps
type Args<K extends OpName> = Parameters<NativeOps[K]>
type Raw<K extends OpName> = ReturnType<NativeOps[K]>

type AsyncOps = {
  [K in OpName as `${K}Async`]: (...args: Args<K>) => Promise<Raw<K>>
}

export interface NativeBinding extends NativeOps, AsyncOps {
  readonly sourceHash: string
  readonly platform: 'linux' | 'darwin'
  newMountApiAvailable(): boolean
  /** confstr(_CS_DARWIN_USER_CACHE_DIR), canonical; "" off macOS. */
  darwinUserCacheDir(): string
  /** How many operations crossed into the addon so far (a debug counter). */
  crossings(): number
}

export const packageRoot = fileURLToPath(new URL('..', import.meta.url))

let loaded: NativeBinding | undefined

/**
 * The command that builds the addon in an installed package (which ships
 * CMakeLists.txt and native/ for this): cmake-js, pinned to the version the
 * repository builds with, takes the Node-API headers from npm, not from
 * nodejs.org.
 */
function buildFromSourceCommand (dir: string): string {
  return `cd ${JSON.stringify(path.resolve(dir))} && npx --yes cmake-js@8.0.0 compile`
}

/** The addon, loaded on first use so pure path code works anywhere. */
export function binding (): NativeBinding {
  if (loaded !== undefined) return loaded
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    throw new LayoutError({
      code: 'ERR_UNSUPPORTED_PLATFORM',
      reason: 'unsupported-platform',
      message: `ERR_UNSUPPORTED_PLATFORM: boxlite-layout's native addon supports Linux and macOS, not ${process.platform}. ` +
        'Path computation (HomeLayout, BoxLayout, BoxSockets paths) works here; anything that touches the disk does not.',
    })
  }
  const require = createRequire(import.meta.url)
  const load = require('node-gyp-build') as (dir: string) => NativeBinding
  try {
    loaded = load(packageRoot)
  } catch (e) {
    const hasSources = fs.existsSync(new URL('../CMakeLists.txt', import.meta.url))
    throw new LayoutError({
      code: 'ERR_ADDON_NOT_FOUND',
      reason: 'addon-missing',
      message: `ERR_ADDON_NOT_FOUND: no boxlite-layout addon for ${process.platform}-${process.arch} (Node ${process.version}): ` +
        'no prebuild fits and none was built. ' +
        (hasSources
          ? `Build it from source: ${buildFromSourceCommand(packageRoot)} (needs cmake >= 3.19, make and a C++17 compiler, ` +
            'g++ >= 8 or clang >= 7; the Node-API headers come from npm); it writes build/Release/, which loads ahead of prebuilds/. ' +
            'In a clone of the repository, `npm run build` (node-gyp, also needs python3) does the same.'
          : 'Reinstall the package so its prebuilt binaries are present.') +
        ` Loader said: ${(e as Error).message.split('\n')[0]}`,
      cause: e,
    })
  }
  return loaded
}

/**
 * One native operation with its arguments, run inline (`sync`) or off the
 * JS thread (`async`); native errors come back as LayoutError, the raw
 * result is shaped by `shape`. A public method pair is `x()` =
 * `nativeCall(...).async()` and `xSync()` = `nativeCall(...).sync()`.
 */
export interface NativeCall<R> {
  sync(): R
  async(): Promise<R>
  /** The same call with its result shaped further. */
  map<S>(shape: (r: R) => S): NativeCall<S>
}

export function nativeCall<K extends OpName, R = Raw<K>> (
  name: K, args: Args<K>, ctx: ErrorContext, shape?: (raw: Raw<K>) => R
): NativeCall<R> {
  return new Call(name, args, ctx, shape)
}

/** The Promise form of each op, looked up once: `${name}Async` is not a name V8 has interned. */
const asyncFns = new Map<OpName, (...a: never[]) => Promise<unknown>>()

// One object per call, its methods on the prototype: no closures are made
// unless the call fails. The Promise form adds one `.then` (the shaping and
// the error conversion) to the binding's Promise, and nothing else.
class Call<K extends OpName, R> implements NativeCall<R> {
  readonly #name: K
  readonly #args: Args<K>
  readonly #ctx: ErrorContext
  readonly #shape: ((raw: Raw<K>) => R) | undefined

  constructor (name: K, args: Args<K>, ctx: ErrorContext, shape: ((raw: Raw<K>) => R) | undefined) {
    this.#name = name
    this.#args = args
    this.#ctx = ctx
    this.#shape = shape
  }

  map<S> (more: (r: R) => S): NativeCall<S> {
    const finish = this.#shape
    return new Call(this.#name, this.#args, this.#ctx, finish === undefined ? more as unknown as (raw: Raw<K>) => S : (raw) => more(finish(raw)))
  }

  sync (): R {
    const fn = binding()[this.#name] as (...a: Args<K>) => Raw<K>
    let raw: Raw<K>
    try {
      raw = fn(...this.#args)
    } catch (e) {
      throw fromBinding(this.#name, e, this.#ctx)
    }
    return this.#shape === undefined ? raw as unknown as R : this.#shape(raw)
  }

  async (): Promise<R> {
    const name = this.#name
    let fn = asyncFns.get(name) as ((...a: Args<K>) => Promise<Raw<K>>) | undefined
    if (fn === undefined) {
      // The addon missing is its own error, a rejection as it is.
      try {
        fn = binding()[`${name}Async`] as unknown as (...a: Args<K>) => Promise<Raw<K>>
      } catch (e) {
        return Promise.reject(e)
      }
      asyncFns.set(name, fn as unknown as (...a: never[]) => Promise<unknown>)
    }
    let promise: Promise<Raw<K>>
    try {
      promise = fn(...this.#args)
    } catch (e) {
      return Promise.reject(fromBinding(name, e, this.#ctx))
    }
    const ctx = this.#ctx
    return promise.then(this.#shape, (e: unknown) => { throw fromBinding(name, e, ctx) }) as Promise<R>
  }
}

/**
 * The Promise form of the call `make` builds: its argument checks throw
 * synchronously, and come out as a rejection, as they would from an async
 * function, without a Promise of its own around the binding's.
 */
export function promiseOf<R> (make: () => NativeCall<R>): Promise<R> {
  let call: NativeCall<R>
  try {
    call = make()
  } catch (e) {
    return Promise.reject(e)
  }
  return call.async()
}

/**
 * The public error for what the addon threw. Anything but a native error
 * value is its own argument check (a TypeError, or a getter's error) firing:
 * the facade's checks (args.ts) should have refused the argument first, so
 * it is reported as bad input, never with the addon's internal message.
 */
function fromBinding (name: OpName, e: unknown, ctx: ErrorContext): unknown {
  if (isNativeError(e)) return toLayoutError(e, ctx)
  return new LayoutError({
    code: 'ERR_INVALID_ARG',
    reason: 'invalid-argument',
    message: `ERR_INVALID_ARG: ${ctx.doing === undefined ? '' : `${ctx.doing}: `}the addon refused an argument of ${name} ` +
      'that the library did not check first; this is a bug in boxlite-layout (the cause has the details)',
    cause: e,
  })
}

/** A native error value inside a result (not thrown) as a LayoutError. */
export function nativeErrorValue (e: NativeErrorFields | null, ctx: ErrorContext = {}): LayoutError | undefined {
  return e === null ? undefined : toLayoutError(e, ctx) as LayoutError
}
