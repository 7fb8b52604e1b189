// An exclusive flock on a directory fd: serializes mutations of one box
// (mount, unmount, cleanup) across threads and processes, so concurrent
// preparers end with exactly one mount. The wait never holds a libuv pool
// thread: a contended lock is waited for on a thread of its own.
import fs from 'node:fs'
import { promisify } from 'node:util'
import { LayoutError, layoutError } from './errors.ts'
import { callNativeAsync, effect, nativeOp, perform, type Plan } from './native.ts'

const closeAsync = promisify(fs.close)

export interface HeldDirLock {
  fd: number
  dir: string
}

/**
 * Open dir and take an exclusive flock on it; fails ENOENT if dir is gone,
 * or was removed or replaced while we waited. One native call when the lock
 * is free (sync: also when it is not).
 */
export function * lockDirPlan (dir: string, what: string): Plan<HeldDirLock> {
  const ctx = { doing: `cannot lock ${what}` }
  try {
    const { fd, acquired } = yield * perform(effect(
      () => nativeOp('lockDir', [dir, true], ctx).sync(),
      // Async: never block a pool thread; a held lock is waited for on a
      // thread of its own, then re-checked.
      () => nativeOp('lockDir', [dir, false], ctx).async(),
    ))
    if (!acquired) {
      try {
        yield * perform(effect(
          () => { throw new Error('unreachable: a sync lockDir waits') },
          async () => {
            await callNativeAsync((b) => b.lockFdWait(fd, true), ctx)
            await nativeOp('checkLockIdentity', [fd, dir], ctx).async()
          },
        ))
      } catch (e) {
        yield * perform(closeEffect(fd))
        throw e
      }
    }
    return { fd, dir }
  } catch (e) {
    if (e instanceof LayoutError && e.code === 'ENOENT' && (e.detail === 'removed' || e.detail === 'replaced')) {
      throw layoutError('ENOENT', `${what} was removed or replaced while we waited for its lock (${dir}); retry`, { path: dir })
    }
    throw e
  }
}

/** Closing the fd releases the flock. */
export function closeEffect (fd: number) {
  return effect(() => fs.closeSync(fd), () => closeAsync(fd))
}

export function * unlockDirPlan (held: HeldDirLock): Plan<void> {
  yield * perform(closeEffect(held.fd))
}
