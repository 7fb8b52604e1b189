// Locks: the runtime lock on {home}/.lock and per-entity locks in locks/.
// All are flock on O_CLOEXEC fds opened O_NOFOLLOW (a spawned shim never
// inherits a lock; a planted symlink or FIFO is refused), and the kernel
// drops them when the holder dies, however it dies. Waiting never holds a
// libuv pool thread: a contended lock() waits on a thread of its own.
import fs from 'node:fs'
import * as args from './args.ts'
import { layoutError } from './errors.ts'
import { nativeCall, type DirArgs, type NativeCall } from './native.ts'
import { joinPath, splitLast } from './paths.ts'

const MAX_LOCK_ID = 0xffff_ffff

/**
 * The fds live RuntimeLocks of this process hold, with their homes. Adopting
 * one of them again would give the fd a second owner, whose release() would
 * close it under the first (or, once the number is reused, close someone
 * else's fd).
 */
const heldFds = new Map<number, string>()

function runtimeLockCall (home: string): NativeCall<RuntimeLock> {
  args.path(home, 'home')
  return nativeCall('runtimeLock', [home], {
    doing: `cannot take the runtime lock of ${home}`,
    hints: { 'not-prepared': 'the home does not exist: check --home / BOXLITE_HOME, or prepare it first' },
  }, (fd) => new RuntimeLock(home, fd))
}

/**
 * The environment variable naming a runtime lock fd a parent holds for its
 * children (`boxlite-layout lock` sets it): a decimal fd number. A command
 * that needs the lock adopts it (RuntimeLock.adopt) instead of taking it.
 */
export const LOCK_FD_ENV = 'BOXLITE_LAYOUT_LOCK_FD'

/** null: known without a look not to be this home's lock (another home's RuntimeLock holds the fd). */
function adoptCall (home: string, lockFd: unknown): NativeCall<RuntimeLock | null> | null {
  args.path(home, 'home')
  const fd = args.integer(lockFd, 'fd', 0, 0x7fffffff)
  // Never a second owner: this home's lock held through it is EBUSY, as
  // acquire() says; another home's is not this home's lock.
  const holder = heldFds.get(fd)
  if (holder === home) {
    throw layoutError('EBUSY', 'runtime-locked',
      `fd ${fd} already holds the runtime lock of ${home} for a RuntimeLock of this process; use that RuntimeLock: ` +
      'a second one would close the fd under the first', { path: joinPath(home, '.lock') })
  }
  if (holder !== undefined) return null
  return nativeCall('runtimeLockAdopt', [home, fd], {
    doing: `cannot adopt the runtime lock of ${home} from fd ${fd}`,
    hints: { 'not-prepared': 'the home does not exist: check --home / BOXLITE_HOME' },
  }, (adopted) => adopted ? new RuntimeLock(home, fd) : null)
}

/** The fd $BOXLITE_LAYOUT_LOCK_FD names, or undefined when unset; ERR_INVALID_ARG when not a number. */
export function inheritedLockFd (env: NodeJS.ProcessEnv = process.env): number | undefined {
  const name = `env.${LOCK_FD_ENV}`
  const text = args.options(env, 'env', [LOCK_FD_ENV])[LOCK_FD_ENV]
  if (text === undefined || text === '') return undefined
  if (typeof text !== 'string' || !/^[0-9]{1,9}$/.test(text)) throw args.refuse(name, 'a file descriptor number', text)
  return Number(text)
}

export class RuntimeLock {
  readonly home: string
  readonly path: string
  #fd: number | undefined

  /** @internal Use RuntimeLock.acquire() or HomeLayout.acquireRuntimeLock(). */
  constructor (home: string, fd: number) {
    this.home = args.path(home, 'home')
    // release() closes it: only a descriptor the addon opened belongs here.
    args.integer(fd, 'fd', 0, 0x7fffffff)
    this.path = joinPath(home, '.lock')
    this.#fd = fd
    heldFds.set(fd, this.home)
  }

  /**
   * Take {home}/.lock without waiting. A second holder, in this process or
   * another, gets EBUSY (reason runtime-locked) naming the home and the
   * holder's pid. The home must exist; .lock must be a regular file with one
   * link, owned by us; our pid is written through the locked fd.
   */
  static async acquire (home: string): Promise<RuntimeLock> { return await runtimeLockCall(home).async() }
  static acquireSync (home: string): RuntimeLock { return runtimeLockCall(home).sync() }

  /**
   * Take over the runtime lock a parent process holds, passed down as an
   * open fd (as `boxlite-layout lock` does, naming it in
   * $BOXLITE_LAYOUT_LOCK_FD). The fd must be an open file description of
   * this home's .lock (same inode) holding its flock: then the lock is
   * returned (the fd made close-on-exec; release() closes only this
   * process's fd, the parent keeps the lock). null when the fd is not open
   * or not this home's .lock (take the lock yourself); EBUSY
   * (runtime-locked) when it is, but another process holds the lock, or
   * when the fd already belongs to a RuntimeLock of this process.
   */
  static async adopt (home: string, fd: number): Promise<RuntimeLock | null> { return await adoptCall(home, fd)?.async() ?? null }
  static adoptSync (home: string, fd: number): RuntimeLock | null { return adoptCall(home, fd)?.sync() ?? null }

  /** The fd holding the flock (to hand to a child process); undefined once released. */
  get fd (): number | undefined {
    return this.#fd
  }

  get held (): boolean {
    return this.#fd !== undefined
  }

  /** Release (also happens when the process exits). Idempotent. */
  release (): void {
    if (this.#fd === undefined) return
    const fd = this.#fd
    this.#fd = undefined
    heldFds.delete(fd)
    fs.closeSync(fd)
  }
}

function checkId (id: unknown): number {
  return args.integer(id, 'id', 0, MAX_LOCK_ID)
}

/**
 * Per-entity locks in one directory, one file per id (decimal u32). Ids are
 * allocated smallest-free with O_EXCL, so processes sharing the directory
 * never hand out the same id.
 */
export class LockManager {
  readonly dir: string
  readonly #dir: DirArgs
  /** Ids this manager holds, with the fd that holds each. */
  readonly #held = new Map<number, number>()
  /** Ids a lock() or tryLock() of this manager is still taking, with how many. */
  readonly #taking = new Map<number, number>()

  constructor (locksDir: string, anchor?: { root: string, rel: string }) {
    this.dir = args.path(locksDir, 'locksDir')
    const [parent, name] = splitLast(locksDir)
    this.#dir = anchor === undefined ? [parent, name] : args.anchor(anchor)
  }

  pathFor (id: number): string {
    return joinPath(this.dir, String(checkId(id)))
  }

  #allocate (): NativeCall<number> {
    return nativeCall('lockAllocate', this.#dir, { doing: `cannot allocate a lock in ${this.dir}` })
  }

  /** The smallest free id, its file created O_EXCL (safe across processes). */
  async allocate (): Promise<number> { return await this.#allocate().async() }
  allocateSync (): number { return this.#allocate().sync() }

  #acquire (id: number, wait: boolean): NativeCall<boolean> {
    checkId(id)
    return nativeCall('lockAcquire', [...this.#dir, id, wait], {
      doing: `cannot lock ${id}`,
      hints: { 'not-allocated': 'allocate() it first' },
    }, (fd) => {
      if (fd === null) return false
      this.#held.set(id, fd)
      return true
    })
  }

  /**
   * Wait for lock id. The wait runs on a thread of its own, never on the
   * libuv pool. ENOENT (removed-while-waiting) or ESTALE
   * (replaced-while-waiting) when the id was freed meanwhile.
   */
  async lock (id: number): Promise<void> { await this.#take(id, true) }

  /**
   * Blocking lock: waits on the calling thread. EDEADLK if this manager
   * holds it, or is taking it in a lock() or tryLock() not yet settled
   * (that Promise can only settle on this thread).
   */
  lockSync (id: number): void {
    if (this.#held.has(checkId(id))) {
      throw layoutError('EDEADLK', 'deadlock', `this LockManager already holds lock ${id}; waiting for it would never end`, { path: this.pathFor(id) })
    }
    if (this.#taking.has(id)) {
      throw layoutError('EDEADLK', 'deadlock', `this LockManager is already taking lock ${id} (a lock() or tryLock() not yet settled, ` +
        'whose result only this thread can receive); waiting for it here would never end: await that Promise', { path: this.pathFor(id) })
    }
    this.#acquire(id, true).sync()
  }

  async #take (id: number, wait: boolean): Promise<boolean> {
    const call = this.#acquire(id, wait)
    this.#taking.set(id, (this.#taking.get(id) ?? 0) + 1)
    try {
      return await call.async()
    } finally {
      const left = this.#taking.get(id)! - 1
      if (left === 0) this.#taking.delete(id)
      else this.#taking.set(id, left)
    }
  }

  /** Take lock id if it is free right now; false if someone (even us) holds it. */
  async tryLock (id: number): Promise<boolean> {
    if (this.#held.has(checkId(id))) return false
    return await this.#take(id, false)
  }

  tryLockSync (id: number): boolean {
    if (this.#held.has(checkId(id))) return false
    return this.#acquire(id, false).sync()
  }

  isHeld (id: number): boolean {
    return this.#held.has(checkId(id))
  }

  /** Release lock id (closing its fd: one syscall, no I/O). Idempotent. */
  unlock (id: number): void {
    const fd = this.#held.get(checkId(id))
    if (fd === undefined) return
    this.#held.delete(id)
    fs.closeSync(fd)
  }

  #free (id: number): NativeCall<void> {
    checkId(id)
    return nativeCall('lockFree', [...this.#dir, id], { doing: `cannot free lock ${id}` }, () => { this.unlock(id) })
  }

  /**
   * Delete lock id's file, then release it if held. Idempotent. Unlinking
   * first means a waiter that wins the lock finds the file gone (ENOENT)
   * instead of holding a file about to be deleted.
   */
  async free (id: number): Promise<void> { await this.#free(id).async() }
  freeSync (id: number): void { this.#free(id).sync() }

  /** Release every lock this manager holds. */
  releaseAll (): void {
    for (const id of [...this.#held.keys()]) this.unlock(id)
  }
}
