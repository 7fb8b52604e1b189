// HomeLayout: the top of BoxLite's on-disk layout, its paths (joined as
// BoxLite joins them) and the operations on the home as a whole.
import fs from 'node:fs'
import os from 'node:os'
import * as args from './args.ts'
import { BoxLayout, homeAnchor, type BoxLayoutOptions } from './box.ts'
import { boxStatus, boxStatusSync, type BoxEntry, type BoxStatus } from './box-state.ts'
import { diskUsage, diskUsageSync, type DiskUsageOptions, type DiskUsageReport } from './disk-usage.ts'
import { fromNodeError, invalidArg, layoutError } from './errors.ts'
import { sameFilesystemOf, type SameFilesystemResult } from './fs-facts.ts'
import { gc, gcSync, type GcOptions, type GcReport } from './gc.ts'
import { checkId } from './ids.ts'
import { gcStorage, gcStorageSync, type StorageGcOptions, type StorageGcReport } from './storage-gc.ts'
import { ImageLayout } from './image.ts'
import { LockManager, RuntimeLock } from './locks.ts'
import { nativeCall, type NativeCall, type NativeHomeResult } from './native.ts'
import { homeMetrics, type HomeMetricsOptions } from './metrics.ts'
import { joinPath } from './paths.ts'

export const HomeDirs = {
  BOXLITE_DIR: '.boxlite',
  DB: 'db',
  DB_FILE: 'boxlite.db',
  IMAGES: 'images',
  BOXES: 'boxes',
  BASES: 'bases',
  LOCKS: 'locks',
  LOGS: 'logs',
  TMP: 'tmp',
  RUNTIME_LOCK: '.lock',
} as const

export interface HomeLayoutOptions {
  /** The home directory, kept as given; default: $BOXLITE_HOME, else $HOME/.boxlite. */
  home?: string
  /** Environment to resolve the default home from (default process.env). */
  env?: NodeJS.ProcessEnv
  /**
   * Whether boxes that isolate mounts write into mounts/ and show it at
   * shared/ (read-only bind mount, or a symlink where mounting is not
   * possible). false reproduces BoxLite's `without_bind_mount`: the host
   * writes shared/ directly. Default true.
   */
  bindMounts?: boolean
}

const HOME_WHY = 'A relative home would move with the working directory'

/**
 * BOXLITE_HOME when set (an empty one is a relative path, refused), else
 * $HOME/.boxlite. Kept exactly as given: never normalized.
 */
export function resolveHome (env: NodeJS.ProcessEnv = process.env): string {
  // The process's own environment: its variables are named as such.
  return homeFromEnv(env, env === process.env ? '' : 'env.')
}

/** resolveHome() of an environment whose variables are named `${prefix}NAME`. */
function homeFromEnv (env: unknown, prefix: string): string {
  const vars = args.options(env, prefix === '' ? 'process.env' : prefix.slice(0, -1), ['BOXLITE_HOME', 'HOME'])
  if (vars.BOXLITE_HOME !== undefined) return args.path(vars.BOXLITE_HOME, `${prefix}BOXLITE_HOME`, { why: HOME_WHY })
  const home = vars.HOME === undefined || vars.HOME === '' ? os.homedir() : args.path(vars.HOME, `${prefix}HOME`, { why: HOME_WHY })
  if (home === '') throw invalidArg('neither BOXLITE_HOME nor HOME is set; set BOXLITE_HOME to an absolute path')
  return args.path(joinPath(home, HomeDirs.BOXLITE_DIR), `${prefix}HOME`, { why: HOME_WHY })
}

export interface HomePrepareResult {
  home: string
  /** Directories whose mode was loosened (group/other writable) and is now tightened. */
  repaired: string[]
  sameFilesystem: SameFilesystemResult
}

export class HomeLayout {
  readonly home: string
  readonly bindMounts: boolean
  readonly dbDir: string
  readonly dbPath: string
  readonly imagesDir: string
  readonly boxesDir: string
  readonly basesDir: string
  readonly locksDir: string
  readonly logsDir: string
  /** Same filesystem as bases/ and images/disk-images/ (atomic rename). */
  readonly tmpDir: string
  readonly runtimeLockPath: string
  readonly images: ImageLayout

  constructor (options: HomeLayoutOptions | string = {}) {
    const opts = typeof options === 'string' ? { home: options } : args.options(options, 'options', ['home', 'env', 'bindMounts'])
    const name = typeof options === 'string' ? 'home' : 'options.home'
    this.home = opts.home === undefined
      ? opts.env === undefined ? resolveHome() : homeFromEnv(opts.env, 'options.env.')
      : args.path(opts.home, name, { why: HOME_WHY })
    this.bindMounts = opts.bindMounts === undefined ? true : args.boolean(opts.bindMounts, 'options.bindMounts')
    const at = (...parts: string[]) => joinPath(this.home, ...parts)
    this.dbDir = at(HomeDirs.DB)
    this.dbPath = at(HomeDirs.DB, HomeDirs.DB_FILE)
    this.imagesDir = at(HomeDirs.IMAGES)
    this.boxesDir = at(HomeDirs.BOXES)
    this.basesDir = at(HomeDirs.BASES)
    this.locksDir = at(HomeDirs.LOCKS)
    this.logsDir = at(HomeDirs.LOGS)
    this.tmpDir = at(HomeDirs.TMP)
    this.runtimeLockPath = at(HomeDirs.RUNTIME_LOCK)
    this.images = new ImageLayout(this.imagesDir, { root: this.home, rel: HomeDirs.IMAGES })
  }

  /** The layout of one box. Validates the id; touches nothing on disk. */
  box (boxId: string, options: Omit<BoxLayoutOptions, 'bindMounts'> = {}): BoxLayout {
    const id = checkId(boxId, 'boxId')
    const o = args.options(options, 'options', ['isolateMounts', 'uid'])
    // A literal, not a spread: the box's options are made on every box().
    const opts: BoxLayoutOptions = {
      isolateMounts: o.isolateMounts as boolean | undefined,
      uid: o.uid as number | undefined,
      bindMounts: this.bindMounts,
      [homeAnchor]: this.home,
    }
    return new BoxLayout(joinPath(this.boxesDir, id), opts)
  }

  #entries (): NativeCall<BoxEntry[]> {
    return nativeCall('listBoxes', [this.home, HomeDirs.BOXES], { doing: `cannot list the boxes of ${this.home}` })
  }

  /** The entries of boxes/, sorted; none when the home has no boxes dir. */
  async boxEntries (): Promise<BoxEntry[]> { return await this.#entries().async() }
  boxEntriesSync (): BoxEntry[] { return this.#entries().sync() }

  /** The home must exist: a status list of a home that is not there would read as "no boxes". */
  #requireHome (): void {
    let found: fs.Stats | undefined
    try {
      found = fs.statSync(this.home)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw fromNodeError(e)
    }
    if (found?.isDirectory() !== true) {
      throw layoutError('ENOENT', 'not-prepared',
        `there is no BoxLite home at ${this.home}: check --home / BOXLITE_HOME, or prepare it first`,
        { path: this.home, syscall: 'open' })
    }
  }

  /**
   * Every entry of boxes/ with its state, as `boxlite-layout box list`
   * shows it: live, mounted, prepared, trash or stray (see BoxState).
   * ENOENT (not-prepared) when the home does not exist.
   */
  async boxes (): Promise<BoxStatus[]> {
    this.#requireHome()
    const out: BoxStatus[] = []
    for (const entry of await this.boxEntries()) out.push(await boxStatus(this, entry))
    return out
  }

  boxesSync (): BoxStatus[] {
    this.#requireHome()
    return this.boxEntriesSync().map((entry) => boxStatusSync(this, entry))
  }

  /** Ids of the box directories present, sorted. */
  async boxIds (): Promise<string[]> { return boxIdsOf(await this.boxEntries()) }
  boxIdsSync (): string[] { return boxIdsOf(this.boxEntriesSync()) }

  #sameFilesystem (r: NativeHomeResult): SameFilesystemResult {
    const result = sameFilesystemOf([this.tmpDir, this.basesDir, this.images.diskImagesDir], r.devices)
    if (result.odd !== null) {
      const found = result.paths.map((p, i) => `${p} (device ${result.devices[i]!})`).join(', ')
      throw layoutError('EXDEV', 'different-filesystems',
        'tmp, bases and images/disk-images must be on one filesystem, because staged installs rename(2) ' +
        `from tmp into the others and rename cannot cross filesystems. Found: ${found}. ` +
        'Move the odd one back onto the home\'s filesystem (e.g. do not mount a tmpfs on tmp/) ' +
        'or point BOXLITE_HOME at a directory on a single filesystem',
        { path: result.odd.path, syscall: 'rename' })
    }
    return result
  }

  #prepare (): NativeCall<HomePrepareResult> {
    return nativeCall('homePrepare', [this.home], {
      doing: 'cannot prepare the BoxLite home',
      hints: { EACCES: `the user running this cannot write under ${this.home}; fix its ownership or set BOXLITE_HOME` },
    }, (r) => ({ home: this.home, repaired: r.repaired, sameFilesystem: this.#sameFilesystem(r) }))
  }

  /**
   * Creates home, boxes, bases, tmp, images/layers, images/manifests,
   * images/disk-images (in that order, modes 0755, tmp 0700, whatever the
   * umask); refuses a symlink or a directory owned by another user, and
   * tightens a group/other-writable one we own (reported in `repaired`);
   * then checks that tmp, bases and images/disk-images share one
   * filesystem (EXDEV otherwise).
   */
  async prepare (): Promise<HomePrepareResult> { return await this.#prepare().async() }
  prepareSync (): HomePrepareResult { return this.#prepare().sync() }

  #validate (): NativeCall<SameFilesystemResult> {
    return nativeCall('homeDevices', [this.home], { doing: 'cannot check the home\'s filesystems' },
      (r) => this.#sameFilesystem(r))
  }

  async validateSameFilesystem (): Promise<SameFilesystemResult> { return await this.#validate().async() }
  validateSameFilesystemSync (): SameFilesystemResult { return this.#validate().sync() }

  /** The per-entity lock manager on locks/. */
  lockManager (): LockManager {
    return new LockManager(this.locksDir, { root: this.home, rel: HomeDirs.LOCKS })
  }

  /** Take {home}/.lock without waiting (EBUSY, reason runtime-locked, when another process holds it). */
  async acquireRuntimeLock (): Promise<RuntimeLock> { return await RuntimeLock.acquire(this.home) }
  acquireRuntimeLockSync (): RuntimeLock { return RuntimeLock.acquireSync(this.home) }

  /**
   * Repair what crashed or killed runtimes left behind: mounts of boxes no
   * live shim owns, half-removed boxes, interrupted shim copies, dangling
   * socket links, tmp/ leftovers. Takes the runtime lock (or uses yours).
   */
  async gc (options: GcOptions = {}): Promise<GcReport> { return await gc(this, gcOptions(options)) }
  gcSync (options: GcOptions = {}): GcReport { return gcSync(this, gcOptions(options)) }

  /**
   * Where the home's disk goes: per box, per area and in total, with
   * reflinked extents counted once (see DiskUsageReport). One walk beneath
   * the home that never follows a symlink, enters a mount or opens anything
   * but a regular file.
   */
  async diskUsage (options: DiskUsageOptions = {}): Promise<DiskUsageReport> { return await diskUsage(this.home, options) }
  diskUsageSync (): DiskUsageReport { return diskUsageSync(this.home) }

  /**
   * Orphaned storage: the bases and disk images no backing chain names,
   * older than the grace period. Reports them; removes them with apply
   * (then under the runtime lock, or yours). Fails closed: see
   * StorageGcReport.chainsComplete and warnings.
   */
  async gcStorage (options: StorageGcOptions = {}): Promise<StorageGcReport> { return await gcStorage(this, storageGcOptions(options)) }
  gcStorageSync (options: StorageGcOptions = {}): StorageGcReport { return gcStorageSync(this, storageGcOptions(options)) }

  /**
   * The home's state in the Prometheus text format (what `boxlite-layout
   * metrics` prints). Reads only: the dry runs of gc and gcStorage.
   */
  async metrics (options: HomeMetricsOptions = {}): Promise<string> { return await homeMetrics(this, metricsOptions(options)) }
}

function gcOptions (options: unknown): GcOptions {
  const o = args.options(options, 'options', ['dryRun', 'runtimeLock', 'uid', 'exclude', 'graceSeconds'])
  return {
    ...(o.exclude === undefined
      ? {}
      : { exclude: args.array(o.exclude, 'options.exclude').map((id, i) => checkId(id, `options.exclude[${i}]`)) }),
    ...(o.graceSeconds === undefined ? {} : { graceSeconds: args.integer(o.graceSeconds, 'options.graceSeconds', 0, 2 ** 31 - 1) }),
    ...(o.dryRun === undefined ? {} : { dryRun: args.boolean(o.dryRun, 'options.dryRun') }),
    ...(o.runtimeLock === undefined
      ? {}
      : { runtimeLock: args.instance(o.runtimeLock, 'options.runtimeLock', RuntimeLock, 'a RuntimeLock (from acquireRuntimeLock())') }),
    ...(o.uid === undefined ? {} : { uid: args.uid(o.uid, 'options.uid') }),
  }
}

function storageGcOptions (options: unknown): StorageGcOptions {
  const o = args.options(options, 'options', ['apply', 'graceSeconds', 'runtimeLock'])
  return {
    ...(o.apply === undefined ? {} : { apply: args.boolean(o.apply, 'options.apply') }),
    ...(o.graceSeconds === undefined ? {} : { graceSeconds: args.integer(o.graceSeconds, 'options.graceSeconds', 0, 2 ** 31 - 1) }),
    ...(o.runtimeLock === undefined
      ? {}
      : { runtimeLock: args.instance(o.runtimeLock, 'options.runtimeLock', RuntimeLock, 'a RuntimeLock (from acquireRuntimeLock())') }),
  }
}

function metricsOptions (options: unknown): HomeMetricsOptions {
  const o = args.options(options, 'options', ['usage'])
  if (o.usage === undefined) return {}
  const u = args.options(o.usage, 'options.usage', ['areas'])
  const bytes = (v: unknown, name: string): number | null => v === null ? null : args.integer(v, name, 0, Number.MAX_SAFE_INTEGER)
  const areas = args.array(u.areas, 'options.usage.areas').map((area, i) => {
    const a = args.options(area, `options.usage.areas[${i}]`, ['name', 'physicalBytes', 'sharedBytes'])
    return {
      name: args.string(a.name, `options.usage.areas[${i}].name`, { maxBytes: 256 }),
      physicalBytes: bytes(a.physicalBytes, `options.usage.areas[${i}].physicalBytes`),
      sharedBytes: bytes(a.sharedBytes, `options.usage.areas[${i}].sharedBytes`),
    }
  })
  return { usage: { areas } }
}

function boxIdsOf (entries: BoxEntry[]): string[] {
  return entries.filter((e) => e.kind === 'box').map((e) => e.name)
}
