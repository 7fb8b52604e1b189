// An exclusive flock on a directory fd: serializes mutations of one box
// (mount, unmount, cleanup) across threads and processes, so concurrent
// preparers end with exactly one mount. The wait never holds a libuv pool
// thread: a contended lock is waited for on a thread of its own.
import fs from 'node:fs'
import { promisify } from 'node:util'
import { fromNodeError, layoutError } from './errors.ts'
import { callNative, callNativeAsync, effect, perform, type Plan } from './native.ts'

const openAsync = promisify(fs.open)
const closeAsync = promisify(fs.close)
const fstatAsync = promisify(fs.fstat)
const lstatAsync = promisify(fs.lstat)

export interface HeldDirLock {
  fd: number
  dir: string
}

/** Open dir and take an exclusive flock on it; fails ENOENT if dir is gone. */
export function * lockDirPlan (dir: string, what: string): Plan<HeldDirLock> {
  const ctx = { doing: `cannot lock ${what}` }
  // O_NOFOLLOW: a box dir replaced by a symlink is not locked (or entered)
  // through the link; the caller gets ENOTDIR/ELOOP and decides.
  const flags = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW
  const fd = yield * perform(effect(
    () => { try { return fs.openSync(dir, flags) } catch (e) { throw fromNodeError(e, ctx) } },
    async () => { try { return await openAsync(dir, flags) } catch (e) { throw fromNodeError(e, ctx) } },
  ))
  try {
    yield * perform(effect(
      () => { callNative((b) => b.lockFd(fd, true, true), ctx) },
      async () => {
        if (!callNative((b) => b.lockFd(fd, true, false), ctx)) {
          await callNativeAsync((b) => b.lockFdWait(fd, true), ctx)
        }
      },
    ))
    // Whoever held the lock before us may have removed the directory, or
    // moved it aside (.trash-*) and made a new one under the name.
    const held = yield * perform(effect(() => fs.fstatSync(fd), () => fstatAsync(fd)))
    const named = yield * perform(effect(
      () => { try { return fs.lstatSync(dir) } catch { return undefined } },
      async () => { try { return await lstatAsync(dir) } catch { return undefined } },
    ))
    if (held.nlink === 0 || named === undefined || named.ino !== held.ino || named.dev !== held.dev) {
      throw layoutError('ENOENT', `${what} was removed or replaced while we waited for its lock (${dir}); retry`, { path: dir })
    }
  } catch (e) {
    yield * perform(closeEffect(fd))
    throw e
  }
  return { fd, dir }
}

/** Closing the fd releases the flock. */
export function closeEffect (fd: number) {
  return effect(() => fs.closeSync(fd), () => closeAsync(fd))
}

export function * unlockDirPlan (held: HeldDirLock): Plan<void> {
  yield * perform(closeEffect(held.fd))
}
