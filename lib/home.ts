// HomeLayout (SPEC §1): the top of BoxLite's on-disk layout.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BoxLayout, type BoxLayoutOptions } from './box.ts'
import { invalidArg, layoutError } from './errors.ts'
import { sameFilesystemPlan, type SameFilesystemResult } from './fs-facts.ts'
import { gcPlan, type GcOptions, type GcReport } from './gc.ts'
import { isValidId, validateBoxId } from './ids.ts'
import { ImageLayout } from './image.ts'
import { LockManager, RuntimeLock } from './locks.ts'
import { nativeOp, perform, runAsync, runSync, type Plan } from './native.ts'

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
  /** The home directory; default: $BOXLITE_HOME, else $HOME/.boxlite. */
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

function requireAbsolute (p: string, source: string): string {
  if (!path.isAbsolute(p)) {
    throw invalidArg(`${source} must be an absolute path; got ${JSON.stringify(p)}. ` +
      'A relative home would move with the working directory')
  }
  if (p.includes('\0')) throw invalidArg(`${source} contains a NUL byte`)
  return path.normalize(p).replace(/(.)\/+$/, '$1')
}

/** BOXLITE_HOME if set and non-empty, else $HOME/.boxlite. Relative: error. */
export function resolveHome (env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.BOXLITE_HOME
  if (fromEnv !== undefined && fromEnv !== '') return requireAbsolute(fromEnv, 'BOXLITE_HOME')
  const userHome = env.HOME !== undefined && env.HOME !== '' ? env.HOME : os.homedir()
  if (userHome === '') throw invalidArg('neither BOXLITE_HOME nor HOME is set; set BOXLITE_HOME to an absolute path')
  return requireAbsolute(path.join(userHome, HomeDirs.BOXLITE_DIR), 'HOME')
}

export interface HomePrepareResult {
  home: string
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
    const opts = typeof options === 'string' ? { home: options } : options
    this.home = opts.home === undefined ? resolveHome(opts.env) : requireAbsolute(opts.home, 'home')
    this.bindMounts = opts.bindMounts ?? true
    this.dbDir = path.join(this.home, HomeDirs.DB)
    this.dbPath = path.join(this.dbDir, HomeDirs.DB_FILE)
    this.imagesDir = path.join(this.home, HomeDirs.IMAGES)
    this.boxesDir = path.join(this.home, HomeDirs.BOXES)
    this.basesDir = path.join(this.home, HomeDirs.BASES)
    this.locksDir = path.join(this.home, HomeDirs.LOCKS)
    this.logsDir = path.join(this.home, HomeDirs.LOGS)
    this.tmpDir = path.join(this.home, HomeDirs.TMP)
    this.runtimeLockPath = path.join(this.home, HomeDirs.RUNTIME_LOCK)
    this.images = new ImageLayout(this.imagesDir)
  }

  /** The layout of one box. Validates the id; touches nothing on disk. */
  box (boxId: string, options: Omit<BoxLayoutOptions, 'bindMounts'> = {}): BoxLayout {
    return new BoxLayout(path.join(this.boxesDir, validateBoxId(boxId)), { ...options, bindMounts: this.bindMounts })
  }

  /** Ids of the box directories present (names that are not ids are ignored). */
  boxIds (): string[] {
    try {
      return fs.readdirSync(this.boxesDir).filter(isValidId).sort()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
  }

  * #validatePlan (): Plan<SameFilesystemResult> {
    const paths = [this.tmpDir, this.basesDir, this.images.diskImagesDir]
    const r = yield * sameFilesystemPlan(paths)
    if (!r.same) {
      const found = r.paths.map((p, i) => `${p} (device ${r.devices[i]})`).join(', ')
      throw layoutError('EXDEV',
        `tmp, bases and images/disk-images must be on one filesystem, because staged installs rename(2) ` +
        `from tmp into the others and rename cannot cross filesystems. Found: ${found}. ` +
        'Move the odd one back onto the home\'s filesystem (e.g. do not mount a tmpfs on tmp/) ' +
        'or point BOXLITE_HOME at a directory on a single filesystem',
        { path: r.odd!.path, syscall: 'rename' })
    }
    return r
  }

  * #preparePlan (): Plan<HomePrepareResult> {
    const dirs = [
      this.home, this.boxesDir, this.basesDir, this.tmpDir,
      this.images.layersDir, this.images.manifestsDir, this.images.diskImagesDir,
    ]
    yield * perform(nativeOp('makeDirs', [dirs, 0o777], {
      doing: 'cannot prepare the BoxLite home',
      hints: { EACCES: `the user running this cannot write under ${this.home}; fix its ownership or set BOXLITE_HOME` },
    }))
    return { home: this.home, sameFilesystem: yield * this.#validatePlan() }
  }

  /**
   * Creates home, boxes, bases, tmp, images/layers, images/manifests,
   * images/disk-images (in that order), then checks that tmp, bases and
   * images/disk-images share one filesystem (EXDEV otherwise).
   */
  prepare (): Promise<HomePrepareResult> {
    return runAsync(this.#preparePlan())
  }

  prepareSync (): HomePrepareResult {
    return runSync(this.#preparePlan())
  }

  validateSameFilesystem (): Promise<SameFilesystemResult> {
    return runAsync(this.#validatePlan())
  }

  validateSameFilesystemSync (): SameFilesystemResult {
    return runSync(this.#validatePlan())
  }

  /** The per-entity lock manager on locks/ (SPEC §6). */
  lockManager (): LockManager {
    return new LockManager(this.locksDir)
  }

  /** Take {home}/.lock (non-blocking; EBUSY when another process holds it). */
  acquireRuntimeLock (): RuntimeLock {
    return RuntimeLock.acquire(this.home)
  }

  /**
   * Repair what crashed or killed runtimes left behind (SPEC §2, §10):
   * mounts of boxes no live shim owns, half-removed boxes, dangling socket
   * links, tmp/ leftovers. Needs the runtime lock (pass yours, or gc takes it).
   */
  gc (options: GcOptions = {}): Promise<GcReport> {
    return runAsync(gcPlan(this, options))
  }

  gcSync (options: GcOptions = {}): GcReport {
    return runSync(gcPlan(this, options))
  }
}
