// gc (SPEC §2, §10): repair what a crashed or killed runtime left behind.
// Runs under the runtime lock, so no other runtime is mid-operation; boxes
// whose shim is still alive (verified or legacy pid identity) are left alone.
// Reads /proc/self/mountinfo to find mounts: gc is not a hot path.
import fs from 'node:fs'
import path from 'node:path'
import { BoxFiles } from './box.ts'
import { LayoutError } from './errors.ts'
import { isValidId } from './ids.ts'
import { lockDirPlan, unlockDirPlan, type HeldDirLock } from './dir-lock.ts'
import { RuntimeLock } from './locks.ts'
import { immediate, nativeOp, perform, type Plan } from './native.ts'
import { identityPlan } from './pid-file.ts'
import { currentUid, socketLinkParent } from './sockets.ts'
import type { HomeLayout } from './home.ts'

export interface GcOptions {
  /** Report what would be done; change nothing (and take no lock). */
  dryRun?: boolean
  /**
   * The caller's runtime lock on this home; otherwise gc takes it itself.
   * Either way gc assumes no staging is in progress in {home}/tmp (it
   * empties it) and no box without a live shim is in use (it unmounts them).
   */
  runtimeLock?: RuntimeLock
  /** Whose /tmp/bl-{uid} to sweep. Default: this process's uid. */
  uid?: number
}

export type GcActionKind = 'unmount' | 'remove-trash' | 'remove-link' | 'remove-tmp' | 'remove-partial-copy'

export interface GcAction {
  kind: GcActionKind
  path: string
  reason: string
  /** false in a dry run, or when the action failed (see error). */
  done: boolean
  error?: string
}

export interface GcReport {
  home: string
  dryRun: boolean
  actions: GcAction[]
  /** Boxes left alone because their shim is alive. */
  liveBoxes: string[]
}

// bin/.{name}.blx-{16 hex}: a shim copy interrupted before its rename.
const PARTIAL_COPY = /^\..+\.blx-[0-9a-f]{16}$/

function * attempt (report: GcReport, action: Omit<GcAction, 'done'>, run: () => Plan<unknown>): Plan<void> {
  if (report.dryRun) {
    report.actions.push({ ...action, done: false })
    return
  }
  try {
    yield * run()
    report.actions.push({ ...action, done: true })
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    report.actions.push({ ...action, done: false, error: e.message })
  }
}

function * listDir (dir: string): Plan<string[]> {
  return yield * perform(immediate(() => {
    try {
      return fs.readdirSync(dir).sort()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return []
      throw e
    }
  }))
}

function * liveBoxesPlan (home: HomeLayout, ids: string[]): Plan<Set<string>> {
  const live = new Set<string>()
  for (const id of ids) {
    const who = yield * identityPlan(home.box(id).pidFilePath)
    if (who.identity !== 'absent') live.add(id)
  }
  return live
}

function danglingLinks (dir: string): string[] {
  const out: string[] = []
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return out
  }
  for (const name of names) {
    const p = path.join(dir, name)
    try {
      if (!fs.lstatSync(p).isSymbolicLink()) continue
      fs.statSync(p)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') out.push(name)
    }
  }
  return out.sort()
}

export function * gcPlan (home: HomeLayout, options: GcOptions = {}): Plan<GcReport> {
  const dryRun = options.dryRun ?? false
  let ownLock: RuntimeLock | undefined
  if (!dryRun && (options.runtimeLock === undefined || !options.runtimeLock.held || options.runtimeLock.home !== home.home)) {
    ownLock = yield * perform(immediate(() => RuntimeLock.acquire(home.home)))
  }
  try {
    const report: GcReport = { home: home.home, dryRun, actions: [], liveBoxes: [] }
    const entries = yield * listDir(home.boxesDir)
    const ids = entries.filter(isValidId)
    const live = yield * liveBoxesPlan(home, ids)
    report.liveBoxes = [...live].sort()

    // 1. Mounts inside boxes no live shim owns, and inside trash. Each box
    // is locked first (a jailer script may be mounting it right now), and
    // each mount is detached through fds, its id checked against the
    // listing, so a path swapped since then cannot redirect the unmount.
    const boxesReal = fs.existsSync(home.boxesDir) ? fs.realpathSync(home.boxesDir) : undefined
    const mounts = boxesReal === undefined
      ? []
      : yield * perform(nativeOp('mountsUnder', [boxesReal], { doing: 'cannot list mounts' }))
    const byOwner = new Map<string, typeof mounts>()
    for (const m of mounts) {
      const owner = path.relative(boxesReal!, m.mountPoint).split(path.sep)[0] ?? ''
      if (owner === '' || live.has(owner)) continue
      const list = byOwner.get(owner)
      if (list === undefined) byOwner.set(owner, [m])
      else list.push(m)
    }
    for (const [owner, owned] of byOwner) {
      const trash = owner.startsWith(BoxFiles.TRASH_PREFIX)
      const reason = trash ? 'inside a box whose removal was interrupted' : `no live shim owns box ${owner}`
      let lock: HeldDirLock | undefined
      if (!dryRun && !trash) {
        try {
          lock = yield * lockDirPlan(path.join(home.boxesDir, owner), `box ${owner}`)
        } catch (e) {
          if (!(e instanceof LayoutError)) throw e
        }
      }
      try {
        for (const m of owned) {
          const rel = path.relative(boxesReal!, m.mountPoint)
          yield * attempt(report, { kind: 'unmount', path: m.mountPoint, reason }, function * () {
            yield * perform(nativeOp('unmountBeneath', [boxesReal!, rel, m.mountId], { doing: `cannot unmount ${m.mountPoint}` }))
          })
        }
      } finally {
        if (lock !== undefined) yield * unlockDirPlan(lock)
      }
    }

    // 2. Boxes whose cleanup was interrupted after the rename to .trash-*.
    for (const name of entries.filter((n) => n.startsWith(BoxFiles.TRASH_PREFIX))) {
      yield * attempt(report, {
        kind: 'remove-trash',
        path: path.join(home.boxesDir, name),
        reason: 'box removal was interrupted',
      }, function * () {
        yield * perform(nativeOp('removeTree', [home.boxesDir, name, true], { doing: `cannot remove ${name}` }))
      })
    }

    // 3. Shim copies interrupted before their rename into bin/.
    for (const id of ids) {
      if (live.has(id)) continue
      const bin = home.box(id).binDir
      for (const name of (yield * listDir(bin)).filter((n) => PARTIAL_COPY.test(n))) {
        yield * attempt(report, {
          kind: 'remove-partial-copy',
          path: path.join(bin, name),
          reason: 'a shim install was interrupted',
        }, function * () {
          yield * perform(nativeOp('removeTree', [bin, name, false], { doing: `cannot remove ${name}` }))
        })
      }
    }

    // 4. Staging leftovers in tmp/: nobody stages while we hold the lock.
    for (const name of yield * listDir(home.tmpDir)) {
      yield * attempt(report, {
        kind: 'remove-tmp',
        path: path.join(home.tmpDir, name),
        reason: 'staging leftover (no runtime holds the home)',
      }, function * () {
        yield * perform(nativeOp('removeTree', [home.tmpDir, name, true], { doing: `cannot remove ${name}` }))
      })
    }

    // 5. Dangling socket links in /tmp/bl-{uid}.
    const uid = options.uid ?? currentUid()
    const linkDir = socketLinkParent(uid)
    if (dryRun) {
      for (const name of danglingLinks(linkDir)) {
        report.actions.push({ kind: 'remove-link', path: path.join(linkDir, name), reason: 'dangling socket link', done: false })
      }
    } else {
      try {
        const removed = yield * perform(nativeOp('sweepDanglingLinks', [linkDir, uid], { doing: 'cannot sweep socket links' }))
        for (const name of removed) {
          report.actions.push({ kind: 'remove-link', path: path.join(linkDir, name), reason: 'dangling socket link', done: true })
        }
      } catch (e) {
        if (!(e instanceof LayoutError)) throw e
        report.actions.push({ kind: 'remove-link', path: linkDir, reason: 'dangling socket links', done: false, error: e.message })
      }
    }
    return report
  } finally {
    ownLock?.release()
  }
}
