// The raw addon: how it is loaded, what it exports (typed), and the effects
// the rest of the package composes. Internal: the public API is index.ts.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { LayoutError, toLayoutError, type ErrorContext } from './errors.ts'

export interface NativeFsFacts {
  devMajor: number
  devMinor: number
  ino: bigint
  mountId: bigint | null
  fsMagic: number
  fsName: string
  readOnly: boolean
  nosuid: boolean
  nodev: boolean
  noexec: boolean
  isMountRoot: boolean
}

export interface NativeSameFilesystem {
  same: boolean
  oddIndex: number
  /** "major:minor" per path */
  devices: string[]
}

export type NativeSharedKind = 'missing' | 'directory' | 'symlink' | 'mount' | 'other'

export interface NativeSharedState {
  kind: NativeSharedKind
  empty: boolean
  linkTarget: string
  readOnly: boolean
  showsSource: boolean
}

export interface NativeMountEntry {
  mountId: number
  mountPoint: string
  fsType: string
  readOnly: boolean
}

export interface NativeRemoveStats {
  entries: number
  unmounted: number
}

export type NativeCloneMode = 'auto' | 'force' | 'never'
export type NativeCloneMethod = 'reflink' | 'clonefile' | 'copy_file_range' | 'copy' | 'skipped'

export interface NativeCloneJob {
  src: string
  dst: string
  mode: NativeCloneMode
  skipUnchanged: boolean
}

export interface NativeCloneResult {
  method: NativeCloneMethod
  bytes: number
}

export interface NativeLinkResult {
  state: 'created' | 'kept' | 'replaced'
  modeRepaired: boolean
  previousTarget: string
}

/** Operations exported in a sync form `name` and a Promise form `nameAsync`. */
export interface NativeOps {
  probe(path: string): NativeFsFacts
  sameFilesystem(paths: string[]): NativeSameFilesystem
  /** true: shares extents (reflinked); false: does not; null: cannot tell. */
  extentsShared(path: string): boolean | null
  makeDirs(paths: string[], mode: number): undefined
  bindReadOnly(source: string, target: string, forceLegacy: boolean): 'bind-ro' | 'bind-ro-legacy'
  resealReadOnly(target: string, forceLegacy: boolean): undefined
  unmount(target: string): boolean
  /** Detach mount `mountId` at root/rel, walking without symlinks; false if it moved. */
  unmountBeneath(root: string, rel: string, mountId: number): boolean
  inspectShared(source: string, target: string): NativeSharedState
  mountsUnder(prefix: string): NativeMountEntry[]
  removeTree(parent: string, name: string, detachMounts: boolean): NativeRemoveStats
  cloneFiles(jobs: NativeCloneJob[]): NativeCloneResult[]
  socketLinkEnsure(dir: string, uid: number, name: string, target: string): NativeLinkResult
  socketLinkRemove(dir: string, name: string, target: string): boolean
  sweepDanglingLinks(dir: string, uid: number): string[]
  /** open(O_NOFOLLOW|O_DIRECTORY) + flock + identity check; the fd is the caller's. */
  lockDir(dir: string, wait: boolean): { fd: number, acquired: boolean }
  /** ENOENT, detail "removed" or "replaced", if path no longer names what fd holds. */
  checkLockIdentity(fd: number, path: string): undefined
}

type AsyncOps = {
  [K in keyof NativeOps as `${K}Async`]: (...args: Parameters<NativeOps[K]>) => Promise<ReturnType<NativeOps[K]>>
}

export interface NativeBinding extends NativeOps, AsyncOps {
  readonly sourceHash: string
  readonly platform: 'linux' | 'darwin'
  lockFd(fd: number, exclusive: boolean, wait: boolean): boolean
  unlockFd(fd: number): undefined
  /** Blocking flock on a dedicated thread (never the libuv pool). */
  lockFdWait(fd: number, exclusive: boolean): Promise<undefined>
  newMountApiAvailable(): boolean
}

export const packageRoot = fileURLToPath(new URL('..', import.meta.url))

let loaded: NativeBinding | undefined

/** The addon, loaded on first use so pure path code works anywhere. */
export function binding (): NativeBinding {
  if (loaded !== undefined) return loaded
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    throw new LayoutError({
      code: 'ERR_UNSUPPORTED_PLATFORM',
      message: `ERR_UNSUPPORTED_PLATFORM: boxlite-layout's native addon supports Linux and macOS, not ${process.platform}. ` +
        'Path computation (HomeLayout, BoxLayout, BoxSockets paths) works here; anything that touches the disk does not.',
    })
  }
  const require = createRequire(import.meta.url)
  const load = require('node-gyp-build') as (dir: string) => NativeBinding
  try {
    loaded = load(packageRoot)
  } catch (e) {
    const hasGyp = fs.existsSync(new URL('../binding.gyp', import.meta.url))
    throw new LayoutError({
      code: 'ERR_ADDON_NOT_FOUND',
      message: `ERR_ADDON_NOT_FOUND: no boxlite-layout addon for ${process.platform}-${process.arch} (Node ${process.version}). ` +
        (hasGyp
          ? `Build it from source with \`npm run build\` in ${packageRoot} (needs python3, make and a C++17 compiler).`
          : 'Reinstall the package so its prebuilt binary is present.') +
        ` Loader said: ${(e as Error).message.split('\n')[0]}`,
      cause: e,
    })
  }
  return loaded
}

// ---------------------------------------------------------------------------
// Effects and plans: an operation is written once, as a generator that
// yields effects; runSync performs them with the sync binding, runAsync
// with the Promise binding (work on the libuv pool, off the JS thread).

export interface Effect<T> {
  sync(): T
  async(): Promise<T>
}

export type Plan<T> = Generator<Effect<unknown>, T, unknown>

export function * perform<T> (effect: Effect<T>): Plan<T> {
  return (yield effect as Effect<unknown>) as T
}

type Outcome = { ok: true, value: unknown } | { ok: false, error: unknown }

function resume<T> (plan: Plan<T>, o: Outcome): IteratorResult<Effect<unknown>, T> {
  return o.ok ? plan.next(o.value) : plan.throw(o.error)
}

export function runSync<T> (plan: Plan<T>): T {
  let step = plan.next()
  while (step.done !== true) {
    let o: Outcome
    try { o = { ok: true, value: step.value.sync() } } catch (error) { o = { ok: false, error } }
    step = resume(plan, o)
  }
  return step.value
}

export async function runAsync<T> (plan: Plan<T>): Promise<T> {
  let step = plan.next()
  while (step.done !== true) {
    let o: Outcome
    try { o = { ok: true, value: await step.value.async() } } catch (error) { o = { ok: false, error } }
    step = resume(plan, o)
  }
  return step.value
}

/** An effect calling one native operation, errors turned into LayoutError. */
export function nativeOp<K extends keyof NativeOps> (
  name: K, args: Parameters<NativeOps[K]>, ctx: ErrorContext = {},
): Effect<ReturnType<NativeOps[K]>> {
  type R = ReturnType<NativeOps[K]>
  return {
    sync: () => {
      const b = binding()
      try {
        return (b[name] as (...a: unknown[]) => R)(...args)
      } catch (e) {
        throw toLayoutError(e, ctx)
      }
    },
    async: async () => {
      const b = binding()
      const fn = b[`${name}Async` as keyof AsyncOps] as unknown as (...a: unknown[]) => Promise<R>
      try {
        return await fn(...args)
      } catch (e) {
        throw toLayoutError(e, ctx)
      }
    },
  }
}

/** An effect from a plain sync/async pair (Node's fs, mostly). */
export function effect<T> (sync: () => T, async: () => Promise<T>): Effect<T> {
  return { sync, async }
}

/** A plan step that is the same either way (pure or trivially fast). */
export function immediate<T> (fn: () => T): Effect<T> {
  return { sync: fn, async: async () => fn() }
}

/** Call the binding directly (ops outside NativeOps), errors translated. */
export function callNative<T> (fn: (b: NativeBinding) => T, ctx: ErrorContext = {}): T {
  try {
    return fn(binding())
  } catch (e) {
    throw toLayoutError(e, ctx)
  }
}

/** The Promise counterpart of callNative. */
export async function callNativeAsync<T> (fn: (b: NativeBinding) => Promise<T>, ctx: ErrorContext = {}): Promise<T> {
  try {
    return await fn(binding())
  } catch (e) {
    throw toLayoutError(e, ctx)
  }
}
