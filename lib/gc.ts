// gc: repair what a crashed or killed runtime left behind. It runs under the
// runtime lock (no other runtime is mid-operation), never creates or
// repairs the home, and leaves alone every box whose shim may be alive:
// verified or legacy identity, or a pid file it cannot read (fail safe).
//
// One native scan gathers every fact (gcScan); the decisions below are
// plain TypeScript; each repair is one native call beneath the home's fds.
// The sync and Promise forms run the same plan, step by step.
import { LayoutError } from './errors.ts'
import { noteGcRun, noteGcRunSync, type GcRunRecord } from './gc-record.ts'
import { RuntimeLock } from './locks.ts'
import { nativeCall, nativeErrorValue, type NativeCall, type NativeGcScan } from './native.ts'
import { joinPath } from './paths.ts'
import { identityOfRead } from './pid-file.ts'
import { currentUid, socketLinkParent, sweepLinksCall } from './sockets.ts'

/** What gc needs of a home: its paths (HomeLayout has them). */
export interface GcHome {
  readonly home: string
  readonly boxesDir: string
  readonly tmpDir: string
}

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
  /**
   * Box ids gc must not touch at all (boxes a runtime is working on outside
   * the box lock, say). Each must be a valid id.
   */
  exclude?: string[]
  /**
   * A box whose directory changed (an entry made or removed: prepare,
   * mountShared, a shim install, shim.pid) less than this many seconds ago
   * is being set up: gc leaves it alone. Default DEFAULT_GC_GRACE_SECONDS
   * (120); 0 turns the grace off. A box whose lock is held is always left
   * alone.
   */
  graceSeconds?: number
}

/**
 * Default GcOptions.graceSeconds: long enough for a jailer script to get
 * from `box prepare` to a running shim, short enough that a runtime
 * restarting after a crash repairs a box whose setup died a while ago.
 */
export const DEFAULT_GC_GRACE_SECONDS = 120

export type GcActionKind = 'unmount' | 'remove-trash' | 'remove-link' | 'remove-tmp' | 'remove-partial-copy'

export interface GcAction {
  kind: GcActionKind
  path: string
  /** Why gc does it, in a few words. */
  why: string
  /** false in a dry run, or when the action failed (see error). */
  done: boolean
  error?: LayoutError
}

/** Something gc saw and deliberately left alone, or could not look at. */
export interface GcWarning {
  /**
   * stray: not a box; unreadable-pid: counted as live; box-busy: its box
   * lock is held (being set up); recent: changed within the grace period;
   * excluded: in options.exclude; links: /tmp/bl-{uid} could not be read;
   * record: the last-gc record (for `metrics`) could not be written.
   */
  kind: 'stray' | 'unreadable-pid' | 'box-busy' | 'recent' | 'excluded' | 'links' | 'record'
  path: string
  /** Why it was left alone, in a few words. */
  why: string
  /** unreadable-pid, links, record, and box-busy found by a repair: the error met. */
  error?: LayoutError
}

export interface GcReport {
  home: string
  dryRun: boolean
  actions: GcAction[]
  /** Boxes left alone because their shim is (or may be) alive. */
  liveBoxes: string[]
  /** Boxes left alone because they are being set up (locked, recent) or excluded; see warnings. */
  skippedBoxes: string[]
  warnings: GcWarning[]
}

interface Rules {
  exclude: ReadonlySet<string>
  graceSeconds: number
  /** Seconds since the epoch, read once per run. */
  now: number
}

// options were checked by HomeLayout.gc() (one argument check for every entry point).
function rulesOf (options: GcOptions): Rules {
  return {
    exclude: new Set(options.exclude ?? []),
    graceSeconds: options.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS,
    now: Date.now() / 1000,
  }
}

type Pending = Omit<GcAction, 'done' | 'error'>

/** One repair: the actions it stands for and the native call that does them. */
interface Step {
  pending: Pending[]
  call: NativeCall<GcAction[]>
}

function remove (home: GcHome, relDir: string, name: string, action: Pending): Step {
  return {
    pending: [action],
    call: nativeCall('gcRemove', [home.home, relDir, name], { doing: `cannot remove ${action.path}` },
      () => [{ ...action, done: true }]),
  }
}

interface Plan {
  report: GcReport
  steps: Step[]
}

/** Why gc must leave a box alone although no shim runs in it, or undefined. */
function setupWarning (b: NativeGcScan['boxes'][number], path: string, rules: Rules): GcWarning | undefined {
  if (rules.exclude.has(b.name)) return { kind: 'excluded', path, why: 'excluded by the caller: left alone' }
  if (b.locked) return { kind: 'box-busy', path, why: 'its box lock is held (a runtime or jailer script is setting it up): left alone' }
  const age = rules.now - b.changedSec
  if (age < rules.graceSeconds) {
    return {
      kind: 'recent',
      path,
      why: `changed ${Math.max(0, Math.floor(age))} s ago, within the ${rules.graceSeconds} s grace period (it may be being set up): left alone`,
    }
  }
  return undefined
}

function plan (home: GcHome, scan: NativeGcScan, dryRun: boolean, rules: Rules): Plan {
  const report: GcReport = { home: home.home, dryRun, actions: [], liveBoxes: [], skippedBoxes: [], warnings: [] }
  const live = new Set<string>()
  const skipped = new Set<string>()
  const busyTrash = new Set<string>()
  for (const b of scan.boxes) {
    const path = joinPath(home.boxesDir, b.name)
    if (b.kind === 'stray') {
      report.warnings.push({ kind: 'stray', path, why: 'not a box (a file, a link or a name that is not an id): left alone' })
      continue
    }
    if (b.kind === 'trash') {
      if (b.locked) {
        // A cleanup is removing it right now (the rename kept the box's inode, and its lock).
        busyTrash.add(b.name)
        report.warnings.push({ kind: 'box-busy', path, why: 'its lock is held (a cleanup is removing it): left alone' })
      }
      continue
    }
    if (b.kind !== 'box') continue
    const unreadable = nativeErrorValue(b.pidError)
    if (unreadable !== undefined) {
      live.add(b.name)
      report.warnings.push({ kind: 'unreadable-pid', path, why: 'its pid file cannot be read: counted as live', error: unreadable })
      continue
    }
    if (identityOfRead(b.pid, joinPath(path, 'shim.pid')).identity !== 'absent') {
      live.add(b.name)
      continue
    }
    const setup = setupWarning(b, path, rules)
    if (setup !== undefined) {
      // Left alone like a live box: no unmount, no partial-copy removal.
      skipped.add(b.name)
      report.warnings.push(setup)
    }
  }
  report.liveBoxes = [...live].sort()
  report.skippedBoxes = [...skipped].sort()
  for (const name of skipped) live.add(name)
  const steps: Step[] = []

  // 1. Mounts inside boxes no live shim owns, and inside trash no cleanup
  // holds. Each box or trash dir is try-locked again when its step runs (a
  // jailer script may have started mounting it since the scan); each mount
  // is reached without symlinks and checked against its id.
  const byOwner = new Map<string, NativeGcScan['mounts']>()
  for (const m of scan.mounts) {
    if (live.has(m.owner) || busyTrash.has(m.owner)) continue
    const group = byOwner.get(m.owner)
    if (group === undefined) byOwner.set(m.owner, [m])
    else group.push(m)
  }
  for (const [owner, mounts] of byOwner) {
    const trash = owner.startsWith('.trash-')
    const why = trash ? 'inside a box whose removal was interrupted' : `no live shim owns box ${owner}`
    const pending = mounts.map((m) => ({ kind: 'unmount' as const, path: joinPath(home.boxesDir, m.rel), why }))
    steps.push({
      pending,
      call: nativeCall('gcUnmount', [home.home, owner, mounts.map((m) => m.rel), mounts.map((m) => m.mountId)],
        { doing: `cannot unmount inside ${joinPath(home.boxesDir, owner)}` },
        (results) => results.map((r, i) => {
          const error = nativeErrorValue(r.error)
          return { ...pending[i]!, done: r.detached, ...(error === undefined ? {} : { error }) }
        })),
    })
  }
  // 2. Boxes whose cleanup was interrupted after the rename to .trash-*.
  for (const b of scan.boxes.filter((e) => e.kind === 'trash' && !busyTrash.has(e.name))) {
    steps.push(remove(home, 'boxes', b.name,
      { kind: 'remove-trash', path: joinPath(home.boxesDir, b.name), why: 'box removal was interrupted' }))
  }
  // 3. Shim copies interrupted before their rename into bin/.
  for (const b of scan.boxes.filter((e) => e.kind === 'box' && !live.has(e.name))) {
    for (const name of b.partialCopies) {
      steps.push(remove(home, `boxes/${b.name}/bin`, name,
        { kind: 'remove-partial-copy', path: joinPath(home.boxesDir, b.name, 'bin', name), why: 'a shim install was interrupted' }))
    }
    for (const name of b.bootLeftovers) {
      steps.push(remove(home, `boxes/${b.name}/boot`, name,
        { kind: 'remove-partial-copy', path: joinPath(home.boxesDir, b.name, 'boot', name), why: 'a boot publish was interrupted' }))
    }
  }
  // 4. Staging leftovers in tmp/: nobody stages while we hold the lock.
  for (const name of scan.tmpEntries) {
    steps.push(remove(home, 'tmp', name,
      { kind: 'remove-tmp', path: joinPath(home.tmpDir, name), why: 'staging leftover (no runtime holds the home)' }))
  }
  return { report, steps }
}

function linkActions (parent: string, names: string[], done: boolean): GcAction[] {
  return names.map((name) => ({ kind: 'remove-link', path: `${parent}/${name}`, why: 'dangling socket link', done }))
}

function failed (step: Step, e: unknown, report: GcReport): void {
  if (!(e instanceof LayoutError)) throw e
  if (e.reason === 'box-busy') {
    // Locked since the scan: someone started setting it up. Not a failure.
    report.warnings.push({ kind: 'box-busy', path: e.path ?? '', why: 'its lock was taken after the scan (it is being set up, or a cleanup is removing it): left alone', error: e })
    return
  }
  report.actions.push(...step.pending.map((a) => ({ ...a, done: false, error: e })))
}

function runRecord (report: GcReport): GcRunRecord {
  return { finishedSec: Math.floor(Date.now() / 1000), actions: report.actions.length, failed: report.actions.filter((a) => !a.done).length }
}

function ownLockNeeded (home: GcHome, options: GcOptions): boolean {
  const lock = options.runtimeLock
  return options.dryRun !== true && (lock === undefined || !lock.held || lock.home !== home.home)
}

function scanCall (home: GcHome, uid: number): NativeCall<NativeGcScan> {
  return nativeCall('gcScan', [home.home, socketLinkParent(uid), uid, ''], {
    doing: `cannot collect garbage in ${home.home}`,
    hints: { 'not-prepared': 'there is no BoxLite home there: check --home / BOXLITE_HOME (gc never creates one)' },
  })
}

/**
 * The plan for one scan, with the dry run already answered: a dry run's
 * report is complete here, a real run's lacks what its steps will add.
 */
function begin (home: GcHome, scan: NativeGcScan, uid: number, dryRun: boolean, rules: Rules): Plan {
  const parent = socketLinkParent(uid)
  const p = plan(home, scan, dryRun, rules)
  const linksError = nativeErrorValue(scan.linksError)
  if (linksError !== undefined) p.report.warnings.push({ kind: 'links', path: parent, why: 'the socket links could not be read: none swept', error: linksError })
  if (dryRun) {
    p.report.actions.push(...p.steps.flatMap((s) => s.pending.map((a) => ({ ...a, done: false }))))
    p.report.actions.push(...linkActions(parent, scan.danglingLinks, false))
    p.steps = []
  } else if (linksError === undefined) {
    p.steps.push({ pending: [], call: sweepLinksCall(uid, false).map((names) => linkActions(parent, names, true)) })
  }
  return p
}

export async function gc (home: GcHome, options: GcOptions = {}): Promise<GcReport> {
  const rules = rulesOf(options)
  const uid = options.uid ?? currentUid()
  const lock = ownLockNeeded(home, options) ? await RuntimeLock.acquire(home.home) : undefined
  try {
    const { report, steps } = begin(home, await scanCall(home, uid).async(), uid, options.dryRun === true, rules)
    for (const step of steps) {
      try {
        report.actions.push(...await step.call.async())
      } catch (e) {
        failed(step, e, report)
      }
    }
    if (!report.dryRun) {
      const unrecorded = await noteGcRun(home, 'repair', runRecord(report))
      if (unrecorded !== undefined) report.warnings.push({ kind: 'record', path: home.home, why: 'the last-gc record could not be written; the repairs were made', error: unrecorded })
    }
    return report
  } finally {
    lock?.release()
  }
}

export function gcSync (home: GcHome, options: GcOptions = {}): GcReport {
  const rules = rulesOf(options)
  const uid = options.uid ?? currentUid()
  const lock = ownLockNeeded(home, options) ? RuntimeLock.acquireSync(home.home) : undefined
  try {
    const { report, steps } = begin(home, scanCall(home, uid).sync(), uid, options.dryRun === true, rules)
    for (const step of steps) {
      try {
        report.actions.push(...step.call.sync())
      } catch (e) {
        failed(step, e, report)
      }
    }
    if (!report.dryRun) {
      const unrecorded = noteGcRunSync(home, 'repair', runRecord(report))
      if (unrecorded !== undefined) report.warnings.push({ kind: 'record', path: home.home, why: 'the last-gc record could not be written; the repairs were made', error: unrecorded })
    }
    return report
  } finally {
    lock?.release()
  }
}
