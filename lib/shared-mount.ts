// mounts/ shown read-only at shared/ (SPEC §2): a read-only bind mount
// where the kernel lets us, a reported symlink where it does not.
import type fs from 'node:fs'
import path from 'node:path'
import { invalidArg, LayoutError, layoutError } from './errors.ts'
import { lockDirPlan, unlockDirPlan } from './dir-lock.ts'
import { fsLstat, fsMkdir, fsRmdir, fsSymlink, fsUnlink } from './fs-effects.ts'
import { callNative, nativeOp, perform, type Plan } from './native.ts'
import { SharedDirs } from './shared-guest.ts'

export type MountMethod = 'bind-ro' | 'bind-ro-legacy' | 'symlink'

export interface MountSharedOptions {
  /**
   * 'read-only': fail (EPERM/ENOTSUP) rather than fall back to a symlink,
   * which would let the guest write the host's mounts/. Default 'any'.
   */
  require?: 'any' | 'read-only'
  /**
   * 'legacy' forces the classic mount(2) sequence even where the new mount
   * API exists. Default: $BOXLITE_LAYOUT_MOUNT_API, else 'auto'.
   */
  api?: 'auto' | 'legacy'
}

export interface MountSharedResult {
  method: MountMethod
  /** false only for the symlink fallback. */
  readOnly: boolean
  /** mounts/ (what the host writes). */
  source: string
  /** shared/ (what the guest sees). */
  target: string
  /** An existing correct mount or link was kept (and re-sealed read-only). */
  reused: boolean
  /** Why there is no read-only mount, for method 'symlink'. */
  fallback?: { code: string, reason: string }
}

export interface SharedState {
  kind: 'missing' | 'directory' | 'symlink' | 'mount' | 'other'
  /** mount: read-only; symlink/directory: false. */
  readOnly: boolean
  /** mount: its root is mounts/; symlink: it points at mounts/. */
  showsMounts: boolean
  /** directory: it has no entries. */
  empty?: boolean
  linkTarget?: string
  /**
   * mount, from sharedState() only: submounts that reached shared/ by
   * propagation after the last mountShared() and are writable (it re-seals
   * them). Read from mountinfo: a diagnostic, not for hot paths.
   */
  writableSubmounts?: string[]
}

export interface SharedMountTarget {
  readonly boxId: string
  readonly root: string
  readonly sharedDir: string
  readonly mountsDir: string
  readonly isolateMounts: boolean
}

export type UnmountResult = 'unmounted' | 'unlinked' | 'none'

function resolveApi (api: MountSharedOptions['api']): 'auto' | 'legacy' {
  const chosen = api ?? process.env.BOXLITE_LAYOUT_MOUNT_API ?? 'auto'
  if (chosen !== 'auto' && chosen !== 'legacy') {
    throw invalidArg(`mount api must be 'auto' or 'legacy'; got ${JSON.stringify(chosen)}` +
      (api === undefined ? ' (from BOXLITE_LAYOUT_MOUNT_API)' : ''))
  }
  return chosen
}

function linksToMounts (box: SharedMountTarget, target: string): boolean {
  return target === SharedDirs.MOUNTS || path.resolve(box.root, target) === box.mountsDir
}

function * statePlan (box: SharedMountTarget): Plan<SharedState> {
  const s = yield * perform(nativeOp('inspectShared', [box.mountsDir, box.sharedDir], {
    doing: `cannot inspect ${box.sharedDir}`,
  }))
  return {
    kind: s.kind,
    readOnly: s.kind === 'mount' && s.readOnly,
    showsMounts: s.kind === 'mount' ? s.showsSource : s.kind === 'symlink' && linksToMounts(box, s.linkTarget),
    ...(s.kind === 'symlink' ? { linkTarget: s.linkTarget } : {}),
    ...(s.kind === 'directory' ? { empty: s.empty } : {}),
  }
}

export function * sharedStatePlan (box: SharedMountTarget): Plan<SharedState> {
  const state = yield * statePlan(box)
  if (state.kind !== 'mount') return state
  const mounts = yield * perform(nativeOp('mountsUnder', [box.sharedDir], { doing: `cannot list the mounts under ${box.sharedDir}` }))
  const writable = mounts.filter((m) => !m.readOnly).map((m) => m.mountPoint).sort()
  return { ...state, readOnly: state.readOnly && writable.length === 0, writableSubmounts: writable }
}

const FALLBACK_CODES = new Set(['EPERM', 'EACCES', 'ENOTSUP'])

/**
 * Bind mounts/ onto the (empty) shared/ dir, or fall back to a symlink.
 * `prior` is what shared/ was before this call, restored on refusal.
 */
function * bindOrLinkPlan (
  box: SharedMountTarget, require: 'any' | 'read-only', api: 'auto' | 'legacy',
  prior: 'missing' | 'directory' | 'symlink',
): Plan<MountSharedResult> {
  const where = { source: box.mountsDir, target: box.sharedDir, reused: false }
  try {
    const method = yield * perform(nativeOp('bindReadOnly', [box.mountsDir, box.sharedDir, api === 'legacy'], {
      doing: `cannot bind ${box.mountsDir} read-only onto ${box.sharedDir}`,
    }))
    return { method, readOnly: true, ...where }
  } catch (e) {
    if (!(e instanceof LayoutError) || !FALLBACK_CODES.has(e.code)) throw e
    if (require === 'read-only') {
      if (prior !== 'directory') yield * perform(fsRmdir([box.sharedDir], { doing: 'cannot restore shared/' }))
      if (prior === 'symlink') yield * perform(fsSymlink([SharedDirs.MOUNTS, box.sharedDir], { doing: 'cannot restore shared/' }))
      throw layoutError(e.code,
        `a read-only shared mount is not possible here (${e.syscall ?? 'mount'}: ${e.code}) and require: 'read-only' ` +
        'refuses the symlink fallback, which would let the guest write mounts/. ' +
        (process.platform === 'linux'
          ? 'Run as root, or with CAP_SYS_ADMIN in a user+mount namespace (unshare -Urm)'
          : 'This platform has no bind mounts'),
        { path: box.mountsDir, dest: box.sharedDir, syscall: e.syscall ?? 'mount', cause: e })
    }
    yield * perform(fsRmdir([box.sharedDir], { doing: 'cannot replace shared/ with the symlink fallback' }))
    yield * perform(fsSymlink([SharedDirs.MOUNTS, box.sharedDir], { doing: 'cannot create the shared/ symlink' }))
    return { method: 'symlink', readOnly: false, ...where, fallback: { code: e.code, reason: e.message } }
  }
}

export function * mountSharedPlan (box: SharedMountTarget, options: MountSharedOptions = {}): Plan<MountSharedResult> {
  const require = options.require ?? 'any'
  if (require !== 'any' && require !== 'read-only') {
    throw invalidArg(`require must be 'any' or 'read-only'; got ${JSON.stringify(require)}`)
  }
  const api = resolveApi(options.api)
  if (!box.isolateMounts) {
    throw layoutError('EINVAL',
      `box ${box.boxId} does not isolate mounts: the host writes ${box.sharedDir} directly, so there is ` +
      'nothing to mount. Create the layout with { isolateMounts: true } to show mounts/ read-only at shared/',
      { path: box.sharedDir })
  }
  const lock = yield * lockDirPlan(box.root, `box ${box.boxId}`)
  try {
    let mounts: fs.Stats | undefined
    try {
      mounts = yield * perform(fsLstat([box.mountsDir], { doing: `cannot inspect ${box.mountsDir}` }))
    } catch (e) {
      if (!(e instanceof LayoutError) || (e.code !== 'ENOENT' && e.code !== 'ENOTDIR')) throw e
    }
    if (mounts === undefined || !mounts.isDirectory()) {
      throw layoutError('ENOENT', `${box.mountsDir} is missing (or not a directory); prepare() the box first`,
        { path: box.mountsDir })
    }
    const state = yield * statePlan(box)
    switch (state.kind) {
      case 'mount': {
        if (!state.showsMounts || !state.readOnly) {
          throw layoutError('EBUSY',
            `${box.sharedDir} is already a mount, but not of ${box.mountsDir} read-only ` +
            `(${state.showsMounts ? 'writable' : 'something else is mounted there'}). ` +
            'Run unmountShared() (or `boxlite-layout gc`) and mount again',
            { path: box.sharedDir })
        }
        // Submounts that reached shared/ later by slave propagation arrive
        // writable: re-seal the whole tree read-only on every call.
        yield * perform(nativeOp('resealReadOnly', [box.sharedDir, api === 'legacy'], {
          doing: `cannot re-seal ${box.sharedDir} read-only`,
        }))
        const fresh = api === 'auto' && callNative((b) => b.newMountApiAvailable())
        return {
          method: fresh ? 'bind-ro' : 'bind-ro-legacy',
          readOnly: true,
          source: box.mountsDir,
          target: box.sharedDir,
          reused: true,
        }
      }
      case 'symlink': {
        if (!state.showsMounts) {
          throw layoutError('EEXIST',
            `${box.sharedDir} is a symlink to ${state.linkTarget ?? '?'}, not to mounts/; remove it and retry`,
            { path: box.sharedDir })
        }
        // A symlink left by an earlier unprivileged run: try to upgrade it.
        yield * perform(fsUnlink([box.sharedDir], { doing: 'cannot replace the shared/ symlink' }))
        yield * perform(fsMkdir([box.sharedDir, 0o777], { doing: 'cannot create shared/' }))
        const r = yield * bindOrLinkPlan(box, require, api, 'symlink')
        return r.method === 'symlink' ? { ...r, reused: true } : r
      }
      case 'directory': {
        if (state.empty !== true) {
          throw layoutError('ENOTEMPTY',
            `${box.sharedDir} holds files, so mounting over it would hide them. It was probably written by a ` +
            'layout without isolateMounts (where the host writes shared/ directly); move its contents into ' +
            'mounts/ or clean the box up',
            { path: box.sharedDir })
        }
        return yield * bindOrLinkPlan(box, require, api, 'directory')
      }
      case 'missing':
        yield * perform(fsMkdir([box.sharedDir, 0o777], { doing: 'cannot create shared/' }))
        return yield * bindOrLinkPlan(box, require, api, 'missing')
      default:
        throw layoutError('EEXIST', `${box.sharedDir} exists and is not a directory, mount or symlink; remove it`,
          { path: box.sharedDir })
    }
  } finally {
    yield * unlockDirPlan(lock)
  }
}

export function * unmountSharedPlan (box: SharedMountTarget): Plan<UnmountResult> {
  const lock = yield * lockDirPlan(box.root, `box ${box.boxId}`)
  try {
    // Whatever is mounted at shared/ goes; only if nothing was do we look.
    if (yield * perform(nativeOp('unmount', [box.sharedDir], { doing: `cannot unmount ${box.sharedDir}` }))) {
      return 'unmounted'
    }
    const state = yield * statePlan(box)
    if (state.kind === 'symlink' && state.showsMounts) {
      yield * perform(fsUnlink([box.sharedDir], { doing: 'cannot remove the shared/ symlink' }))
      return 'unlinked'
    }
    return 'none'
  } finally {
    yield * unlockDirPlan(lock)
  }
}
