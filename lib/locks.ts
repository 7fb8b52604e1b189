// Locks (SPEC §6): the runtime lock on {home}/.lock and per-entity locks in
// locks/. All flock on O_CLOEXEC fds (Node opens every fd O_CLOEXEC), so a
// spawned shim never inherits a lock, and the kernel drops them when the
// holder dies, however it dies.
import fs from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { fromNodeError, invalidArg, LayoutError, layoutError } from './errors.ts'
import { callNative, callNativeAsync } from './native.ts'

const openAsync = promisify(fs.open)
const closeAsync = promisify(fs.close)

const MAX_LOCK_ID = 0xffff_ffff

// ---------------------------------------------------------------------------

export class RuntimeLock {
  readonly home: string
  readonly path: string
  #fd: number | undefined

  private constructor (home: string, lockPath: string, fd: number) {
    this.home = home
    this.path = lockPath
    this.#fd = fd
  }

  /**
   * Take {home}/.lock without waiting. A second holder, in this process or
   * another, gets EBUSY naming the home (and the holder's pid when known).
   */
  static acquire (home: string): RuntimeLock {
    if (typeof home !== 'string' || !path.isAbsolute(home)) throw invalidArg('RuntimeLock.acquire() needs an absolute home path')
    const lockPath = path.join(home, '.lock')
    const ctx = { doing: `cannot open the runtime lock of ${home}` }
    try {
      fs.mkdirSync(home, { recursive: true })
    } catch (e) {
      throw fromNodeError(e, ctx)
    }
    let fd: number
    try {
      // O_NOFOLLOW: a planted .lock symlink must not make us truncate its target.
      fd = fs.openSync(lockPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOOP') {
        throw layoutError('ELOOP', `${lockPath} is a symlink; refusing to use it as the runtime lock (remove it)`, { path: lockPath, syscall: 'open' })
      }
      throw fromNodeError(e, ctx)
    }
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.uid !== process.getuid?.()) {
      fs.closeSync(fd)
      throw layoutError('EPERM', `${lockPath} is ${st.isFile() ? `owned by uid ${st.uid}` : 'not a regular file'}; ` +
        'refusing to use it as the runtime lock (remove it, or run as its owner)', { path: lockPath, syscall: 'open' })
    }
    let acquired: boolean
    try {
      acquired = callNative((b) => b.lockFd(fd, true, false), ctx)
    } catch (e) {
      fs.closeSync(fd)
      throw e
    }
    if (!acquired) {
      fs.closeSync(fd)
      const holder = readHolder(lockPath)
      throw layoutError('EBUSY',
        `another BoxLite runtime holds ${home}${holder === undefined ? '' : ` (pid ${holder})`}; ` +
        'stop it, or use a different BOXLITE_HOME',
        { path: lockPath, syscall: 'flock' })
    }
    // The holder's pid, for the EBUSY message of whoever comes next.
    try {
      fs.ftruncateSync(fd, 0)
      fs.writeSync(fd, `${process.pid}\n`, 0)
    } catch {
      // Diagnostics only: the flock, not the content, is the lock.
    }
    return new RuntimeLock(home, lockPath, fd)
  }

  get held (): boolean {
    return this.#fd !== undefined
  }

  /** Release (also happens when the process exits). Idempotent. */
  release (): void {
    if (this.#fd === undefined) return
    const fd = this.#fd
    this.#fd = undefined
    fs.closeSync(fd)
  }
}

function readHolder (lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------

function checkId (id: unknown): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_LOCK_ID) {
    throw invalidArg(`lock id must be an integer in 0..${MAX_LOCK_ID}; got ${String(id)}`)
  }
  return id
}

/**
 * Per-entity locks in one directory, one file per id (decimal u32). Ids are
 * allocated smallest-free with O_EXCL, so processes sharing the directory
 * never hand out the same id.
 */
export class LockManager {
  readonly dir: string
  /** Ids known to be taken: scanned from the directory once, then kept. */
  #used: Set<number> | undefined
  /** Ids this manager holds, with the fd that holds each. */
  readonly #held = new Map<number, number>()

  constructor (locksDir: string) {
    if (typeof locksDir !== 'string' || !path.isAbsolute(locksDir)) throw invalidArg('LockManager needs an absolute locks dir')
    this.dir = locksDir
  }

  pathFor (id: number): string {
    return path.join(this.dir, String(checkId(id)))
  }

  #scan (): Set<number> {
    if (this.#used !== undefined) return this.#used
    const used = new Set<number>()
    try {
      fs.mkdirSync(this.dir, { recursive: true })
      for (const name of fs.readdirSync(this.dir)) {
        if (/^(0|[1-9][0-9]{0,9})$/.test(name) && Number(name) <= MAX_LOCK_ID) used.add(Number(name))
      }
    } catch (e) {
      throw fromNodeError(e, { doing: `cannot read the locks dir ${this.dir}` })
    }
    this.#used = used
    return used
  }

  /** Ids whose lock files exist (as of the first scan plus our own changes). */
  allocated (): number[] {
    return [...this.#scan()].sort((a, b) => a - b)
  }

  /** The smallest free id, its file created O_EXCL (safe across processes). */
  allocate (): number {
    const used = this.#scan()
    for (let id = 0; id <= MAX_LOCK_ID; id++) {
      if (used.has(id)) continue
      try {
        fs.closeSync(fs.openSync(path.join(this.dir, String(id)), 'wx', 0o644))
        used.add(id)
        return id
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw fromNodeError(e, { doing: `cannot allocate a lock in ${this.dir}` })
        }
        used.add(id) // another process took it meanwhile
      }
    }
    throw layoutError('EAGAIN', `all ${MAX_LOCK_ID + 1} lock ids in ${this.dir} are taken`, { path: this.dir })
  }

  /**
   * After acquiring: is the file we locked still lock id's file? free() and
   * a new allocate() can put a new inode under the name while we waited.
   */
  #checkIdentity (id: number, fd: number): void {
    try {
      callNative((b) => b.checkLockIdentity(fd, this.pathFor(id)), { doing: `cannot lock ${id}` })
    } catch (e) {
      fs.closeSync(fd)
      if (!(e instanceof LayoutError) || e.code !== 'ENOENT' || e.detail === undefined) throw e
      const again = e.detail === 'replaced'
      throw layoutError(again ? 'ESTALE' : 'ENOENT',
        `lock ${id} was freed${again ? ' and allocated again' : ''} while we waited for it`,
        { path: this.pathFor(id), syscall: 'flock' })
    }
  }

  #open (id: number): number {
    try {
      return fs.openSync(this.pathFor(id), fs.constants.O_RDWR)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw layoutError('ENOENT', `lock ${id} is not allocated (no file ${this.pathFor(id)}); allocate() it first`,
          { path: this.pathFor(id), syscall: 'open' })
      }
      throw fromNodeError(e, { doing: `cannot open lock ${id}` })
    }
  }

  /**
   * Wait for lock id. The wait runs on a thread of its own, never on the
   * libuv pool, so any number of waiters leave fs and crypto work running.
   * Waiters in one process queue behind each other like separate processes.
   */
  async lock (id: number): Promise<void> {
    checkId(id)
    const ctx = { doing: `cannot lock ${id}` }
    let fd: number
    try {
      fd = await openAsync(this.pathFor(id), fs.constants.O_RDWR)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') fd = this.#open(id) // throws the clear error
      else throw fromNodeError(e, ctx)
    }
    try {
      if (!callNative((b) => b.lockFd(fd, true, false), ctx)) {
        await callNativeAsync((b) => b.lockFdWait(fd, true), ctx)
      }
    } catch (e) {
      await closeAsync(fd)
      throw e
    }
    this.#checkIdentity(id, fd)
    this.#held.set(id, fd)
  }

  /** Blocking lock: waits on the calling thread. EDEADLK if this manager holds it. */
  lockSync (id: number): void {
    checkId(id)
    if (this.#held.has(id)) {
      throw layoutError('EDEADLK', `this LockManager already holds lock ${id}; waiting for it would never end`, { path: this.pathFor(id) })
    }
    const fd = this.#open(id)
    try {
      callNative((b) => b.lockFd(fd, true, true), { doing: `cannot lock ${id}` })
    } catch (e) {
      fs.closeSync(fd)
      throw e
    }
    this.#checkIdentity(id, fd)
    this.#held.set(id, fd)
  }

  /** Take lock id if free right now; false if someone (even us) holds it. */
  tryLock (id: number): boolean {
    checkId(id)
    if (this.#held.has(id)) return false
    const fd = this.#open(id)
    let acquired = false
    try {
      acquired = callNative((b) => b.lockFd(fd, true, false), { doing: `cannot lock ${id}` })
    } finally {
      if (!acquired) fs.closeSync(fd)
    }
    if (acquired) {
      this.#checkIdentity(id, fd)
      this.#held.set(id, fd)
    }
    return acquired
  }

  isHeld (id: number): boolean {
    return this.#held.has(checkId(id))
  }

  /** Release lock id (closing its fd). Idempotent. */
  unlock (id: number): void {
    const fd = this.#held.get(checkId(id))
    if (fd === undefined) return
    this.#held.delete(id)
    fs.closeSync(fd)
  }

  /**
   * Delete lock id's file, then release it if held. Idempotent. Unlinking
   * first means a waiter that wins the lock finds the file gone (ENOENT)
   * instead of holding a file we are about to delete.
   */
  free (id: number): void {
    try {
      fs.unlinkSync(this.pathFor(checkId(id)))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(e, { doing: `cannot free lock ${id}` })
    }
    this.unlock(id)
    this.#used?.delete(id)
  }

  /** Release every lock this manager holds. */
  releaseAll (): void {
    for (const id of [...this.#held.keys()]) this.unlock(id)
  }
}

