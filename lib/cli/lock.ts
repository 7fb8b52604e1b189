// `boxlite-layout lock -- CMD`: the runtime lock held across a jailer
// script's calls, as flock(1) holds a lock across a command. The locked fd
// is inherited by CMD as fd 3 and named in $BOXLITE_LAYOUT_LOCK_FD; each
// boxlite-layout command under it that needs the lock adopts that fd
// (RuntimeLock.adopt checks it is this home's .lock and holds its flock).
import { spawn } from 'node:child_process'
import os from 'node:os'
import { fromNodeError, LayoutError } from '../errors.ts'
import { inheritedLockFd, LOCK_FD_ENV, RuntimeLock } from '../locks.ts'
import type { Context } from './context.ts'
import { secondsOption } from './spec.ts'

/** The fd number CMD finds the lock at (the first after stdin, stdout, stderr). */
const CHILD_LOCK_FD = 3

/** How often a waiting `lock` tries again: flock has no timed wait. */
const RETRY_MS = 100

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Take the lock, trying again until `waitSeconds` have passed; a lock inherited from a parent `lock` is reused. */
async function acquire (ctx: Context, waitSeconds: number): Promise<RuntimeLock> {
  const home = ctx.home().home
  const fd = inheritedLockFd()
  const inherited = fd === undefined ? null : await RuntimeLock.adopt(home, fd)
  if (inherited !== null) return inherited
  const deadline = Date.now() + waitSeconds * 1000
  for (;;) {
    try {
      return await RuntimeLock.acquire(home)
    } catch (e) {
      if (!(e instanceof LayoutError) || e.reason !== 'runtime-locked' || Date.now() >= deadline) throw e
    }
    await sleep(Math.min(RETRY_MS, Math.max(0, deadline - Date.now())))
  }
}

export async function lock (ctx: Context): Promise<number> {
  const lockHeld = await acquire(ctx, secondsOption(ctx.parsed, 'wait') ?? 0)
  try {
    const [file, ...args] = ctx.parsed.trailing
    const child = spawn(file!, args, {
      stdio: ['inherit', 'inherit', 'inherit', lockHeld.fd!],
      env: { ...process.env, [LOCK_FD_ENV]: String(CHILD_LOCK_FD) },
    })
    // Signals meant for the script reach it; the lock outlives it by nothing.
    const forward = (signal: NodeJS.Signals) => { child.kill(signal) }
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
    for (const s of signals) process.on(s, forward)
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', (e) => { reject(fromNodeError(e, { doing: `cannot run ${file!}` })) })
        child.once('exit', (code, signal) => {
          resolve(code ?? 128 + (signal === null ? 0 : os.constants.signals[signal]))
        })
      })
    } finally {
      for (const s of signals) process.off(s, forward)
    }
  } finally {
    lockHeld.release()
  }
}
