// Storage gc: the bases and disk images no box uses any more. One native
// scan reads every backing chain (each box's disks/*.qcow2, and each stored
// file's own, for base-to-base ancestry) from the qcow2 headers, as the
// sandbox policy reads them, and says which stored files a chain names (by
// inode). The decisions are here. It fails closed: a file is an orphan only
// when every chain was read to its end, no chain names it, no BoxLite
// database row claims it, and it is older than the grace period.
//
// Removal renames the file into the home's tmp/ (storage-gc-*), then
// unlinks it there: a crash in between leaves nothing under the real name,
// and the next run (or gc) removes the leftover.
import fs from 'node:fs'
import { layoutError, LayoutError } from './errors.ts'
import { noteGcRun, noteGcRunSync, type GcRunRecord } from './gc-record.ts'
import { RuntimeLock } from './locks.ts'
import { nativeCall, nativeErrorValue, type NativeCall, type NativeStorageScan, type NativeStoredFile } from './native.ts'
import { joinPath } from './paths.ts'

/** What storage gc needs of a home: its paths (HomeLayout has them). */
export interface StorageHome {
  readonly home: string
  readonly dbPath: string
  readonly tmpDir: string
}

export interface StorageGcOptions {
  /** Remove the orphans; default false: only report them (and take no lock). */
  apply?: boolean
  /** A file modified less than this many seconds ago is kept. Default DEFAULT_STORAGE_GRACE_SECONDS (600). */
  graceSeconds?: number
  /** The caller's runtime lock on this home; otherwise an applying run takes it. */
  runtimeLock?: RuntimeLock
}

/**
 * Default StorageGcOptions.graceSeconds: a base or disk image being made
 * now (written, then referenced by a new box's overlay) is never judged
 * before its box exists.
 */
export const DEFAULT_STORAGE_GRACE_SECONDS = 600

/** base: bases/*.qcow2 or *.ext4; disk-image: images/disk-images/*; tmp-leftover: an interrupted removal. */
export type StorageGcKind = 'base' | 'disk-image' | 'tmp-leftover'

export interface StorageGcAction {
  kind: StorageGcKind
  path: string
  /** Its size (st_size) when scanned. */
  bytes: number
  /** false in a dry run, when it failed (see error) or when the file changed since the scan. */
  done: boolean
  /** Why it failed. */
  error?: LayoutError
}

export interface StorageGcWarning {
  /**
   * unreadable: a stored file that could not be read (kept); chain: a
   * backing chain read only in part (nothing is removed: what it names is
   * unknown); database: BoxLite's database could not be read (no base is
   * removed); changed: replaced since the scan (kept); record: the last-gc
   * record could not be written.
   */
  kind: 'unreadable' | 'chain' | 'database' | 'changed' | 'record'
  path: string
  /** What was left alone and why, in a few words. */
  why: string
  /** unreadable, chain, database and record: the error met. */
  error?: LayoutError
}

/**
 * consulted: its base_disk rows were read; unavailable: this Node has no
 * node:sqlite (or it could not be loaded), so only the backing chains
 * decide; absent: the home has no db/boxlite.db; unreadable: it exists but
 * could not be read, so no base is removed.
 */
export type StorageGcDatabase = 'consulted' | 'unavailable' | 'absent' | 'unreadable'

export interface StorageGcTotal {
  count: number
  bytes: number
}

export interface StorageGcReport {
  home: string
  dryRun: boolean
  graceSeconds: number
  database: StorageGcDatabase
  /** Every chain was read to its end: only then is anything called an orphan. */
  chainsComplete: boolean
  /** Box images whose chains were read. */
  imagesRead: number
  actions: StorageGcAction[]
  /** Per kind: the orphans found (dry run) or removed. */
  totals: Record<StorageGcKind, StorageGcTotal>
  /** Stored files kept, by why: a chain names it, it is recent, a database row claims it, it could not be read. */
  kept: { referenced: number, recent: number, database: number, unreadable: number }
  warnings: StorageGcWarning[]
}

interface Rules {
  apply: boolean
  graceSeconds: number
  now: number
}

// options were checked by HomeLayout.gcStorage() (one argument check for every entry point).
function rulesOf (options: StorageGcOptions): Rules {
  return { apply: options.apply === true, graceSeconds: options.graceSeconds ?? DEFAULT_STORAGE_GRACE_SECONDS, now: Date.now() / 1000 }
}

interface DatabaseView {
  state: StorageGcDatabase
  /** Every text value of every base_disk row. */
  names: Set<string>
  error?: LayoutError
}

interface SqliteModule {
  DatabaseSync: new (path: string, options?: { readOnly?: boolean }) => {
    prepare: (sql: string) => { all: () => Array<Record<string, unknown>> }
    close: () => void
  }
}

/**
 * BoxLite's base_disk rows, read with node:sqlite where this Node has it
 * (22.5 and later; no native dependency of ours). A row claims a base when
 * any of its text values is the base's path or ends with "/" and its name:
 * the column's exact name is BoxLite's, not ours to rely on.
 */
function readDatabase (home: StorageHome): DatabaseView {
  if (!fs.existsSync(home.dbPath)) return { state: 'absent', names: new Set() }
  let sqlite: SqliteModule | undefined
  try {
    sqlite = process.getBuiltinModule?.('node:sqlite') as SqliteModule | undefined
  } catch {
    // Present but behind a flag (Node 22.5 to 22.12): the same as absent.
  }
  if (sqlite?.DatabaseSync === undefined) return { state: 'unavailable', names: new Set() }
  try {
    const db = new sqlite.DatabaseSync(home.dbPath, { readOnly: true })
    try {
      const names = new Set<string>()
      for (const row of db.prepare('SELECT * FROM base_disk').all()) {
        for (const v of Object.values(row)) if (typeof v === 'string') names.add(v)
      }
      return { state: 'consulted', names }
    } finally {
      db.close()
    }
  } catch (e) {
    // node:sqlite's errors carry SQLite's code, not an errno: EIO names the
    // failure to read, the message and cause keep SQLite's own words.
    const error = layoutError('EIO', 'syscall-failed', `cannot read BoxLite's database ${home.dbPath}: ${(e as Error).message}`,
      { path: home.dbPath, cause: e })
    return { state: 'unreadable', names: new Set(), error }
  }
}

function claimedByDatabase (db: DatabaseView, path: string, name: string): boolean {
  for (const v of db.names) if (v === path || v.endsWith(`/${name}`)) return true
  return false
}

interface Candidate {
  action: StorageGcAction
  file?: NativeStoredFile
}

function emptyTotals (): Record<StorageGcKind, StorageGcTotal> {
  return { base: { count: 0, bytes: 0 }, 'disk-image': { count: 0, bytes: 0 }, 'tmp-leftover': { count: 0, bytes: 0 } }
}

function plan (home: StorageHome, scan: NativeStorageScan, db: DatabaseView, rules: Rules): { report: StorageGcReport, candidates: Candidate[] } {
  const report: StorageGcReport = {
    home: home.home,
    dryRun: !rules.apply,
    graceSeconds: rules.graceSeconds,
    database: db.state,
    chainsComplete: true,
    imagesRead: scan.imagesRead,
    actions: [],
    totals: emptyTotals(),
    kept: { referenced: 0, recent: 0, database: 0, unreadable: 0 },
    warnings: [],
  }
  for (const p of scan.problems) {
    report.chainsComplete = false
    const error = nativeErrorValue(p.error)
    report.warnings.push({
      kind: 'chain',
      path: p.image,
      why: 'its backing chain could not be read to the end, so no stored file is removed',
      ...(error === undefined ? {} : { error }),
    })
  }
  if (db.state === 'unreadable') {
    report.warnings.push({
      kind: 'database',
      path: home.dbPath,
      why: "BoxLite's database could not be read, so no base is removed",
      ...(db.error === undefined ? {} : { error: db.error }),
    })
  }
  for (const f of scan.files) {
    const path = joinPath(home.home, f.dir, f.name)
    const unreadable = nativeErrorValue(f.error)
    if (unreadable !== undefined) {
      report.kept.unreadable++
      // A regular file or a symlink that could not be read may name other
      // stored files: what it names is unknown, so nothing is removed. A
      // FIFO, socket, device or directory names nothing.
      const blocks = f.regular || unreadable.reason === 'symlink'
      if (blocks) report.chainsComplete = false
      report.warnings.push({
        kind: 'unreadable',
        path,
        why: `could not be read, so kept${blocks ? '; what it names is unknown, so no stored file is removed' : ''}`,
        error: unreadable,
      })
    }
  }
  const candidates: Candidate[] = []
  for (const f of scan.files) {
    if (nativeErrorValue(f.error) !== undefined) continue
    const path = joinPath(home.home, f.dir, f.name)
    const kind: StorageGcKind = f.dir === 'bases' ? 'base' : 'disk-image'
    if (f.referenced) { report.kept.referenced++; continue }
    if (rules.now - f.mtimeSec < rules.graceSeconds) { report.kept.recent++; continue }
    if (kind === 'base' && (db.state === 'unreadable' || claimedByDatabase(db, path, f.name))) { report.kept.database++; continue }
    if (!report.chainsComplete) continue
    candidates.push({ action: { kind, path, bytes: f.bytes, done: false }, file: f })
  }
  for (const name of scan.tmpLeftovers) {
    candidates.push({ action: { kind: 'tmp-leftover', path: joinPath(home.tmpDir, name), bytes: 0, done: false } })
  }
  return { report, candidates }
}

function removeCall (home: StorageHome, c: Candidate): NativeCall<boolean> {
  const f = c.file
  const name = f?.name ?? c.action.path.slice(home.tmpDir.length + 1)
  return nativeCall('storageRemove', [home.home, f?.dir ?? 'tmp', name, f?.inode ?? '', f === undefined],
    { doing: `cannot remove ${c.action.path}` })
}

function settle (report: StorageGcReport, c: Candidate, outcome: boolean | LayoutError): void {
  if (outcome instanceof LayoutError) {
    report.actions.push({ ...c.action, done: false, error: outcome })
  } else if (!outcome) {
    report.warnings.push({ kind: 'changed', path: c.action.path, why: 'gone or replaced since the scan: left alone' })
  } else {
    report.actions.push({ ...c.action, done: true })
  }
}

function finish (report: StorageGcReport, candidates: Candidate[]): void {
  if (report.dryRun) report.actions = candidates.map((c) => c.action)
  for (const a of report.actions) {
    if (report.dryRun || a.done) {
      report.totals[a.kind].count++
      report.totals[a.kind].bytes += a.bytes
    }
  }
}

function runRecord (report: StorageGcReport): GcRunRecord {
  const kinds = Object.values(report.totals)
  return {
    finishedSec: Math.floor(Date.now() / 1000),
    actions: report.actions.length,
    failed: report.actions.filter((a) => !a.done).length,
    bytes: kinds.reduce((n, t) => n + t.bytes, 0),
  }
}

function ownLockNeeded (home: StorageHome, options: StorageGcOptions, rules: Rules): boolean {
  const lock = options.runtimeLock
  return rules.apply && (lock === undefined || !lock.held || lock.home !== home.home)
}

function scanCall (home: StorageHome): NativeCall<NativeStorageScan> {
  return nativeCall('storageScan', [home.home], {
    doing: `cannot scan the stored disks of ${home.home}`,
    hints: { 'not-prepared': 'there is no BoxLite home there: check --home / BOXLITE_HOME (gc never creates one)' },
  })
}

export async function gcStorage (home: StorageHome, options: StorageGcOptions = {}): Promise<StorageGcReport> {
  const rules = rulesOf(options)
  const lock = ownLockNeeded(home, options, rules) ? await RuntimeLock.acquire(home.home) : undefined
  try {
    const { report, candidates } = plan(home, await scanCall(home).async(), readDatabase(home), rules)
    if (rules.apply) {
      for (const c of candidates) {
        let outcome: boolean | LayoutError
        try {
          outcome = await removeCall(home, c).async()
        } catch (e) {
          if (!(e instanceof LayoutError)) throw e
          outcome = e
        }
        settle(report, c, outcome)
      }
    }
    finish(report, candidates)
    if (rules.apply) {
      const failed = await noteGcRun(home, 'storage', runRecord(report))
      if (failed !== undefined) report.warnings.push({ kind: 'record', path: home.home, why: 'the last-gc record could not be written; the removals were made', error: failed })
    }
    return report
  } finally {
    lock?.release()
  }
}

export function gcStorageSync (home: StorageHome, options: StorageGcOptions = {}): StorageGcReport {
  const rules = rulesOf(options)
  const lock = ownLockNeeded(home, options, rules) ? RuntimeLock.acquireSync(home.home) : undefined
  try {
    const { report, candidates } = plan(home, scanCall(home).sync(), readDatabase(home), rules)
    if (rules.apply) {
      for (const c of candidates) {
        let outcome: boolean | LayoutError
        try {
          outcome = removeCall(home, c).sync()
        } catch (e) {
          if (!(e instanceof LayoutError)) throw e
          outcome = e
        }
        settle(report, c, outcome)
      }
    }
    finish(report, candidates)
    if (rules.apply) {
      const failed = noteGcRunSync(home, 'storage', runRecord(report))
      if (failed !== undefined) report.warnings.push({ kind: 'record', path: home.home, why: 'the last-gc record could not be written; the removals were made', error: failed })
    }
    return report
  } finally {
    lock?.release()
  }
}
