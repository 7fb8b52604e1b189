// flock-based locks across real processes: the runtime lock and the lock manager.
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { LayoutError, LockManager, RuntimeLock } from '../lib/index.ts'
import { repoRoot, run, scratch, tsNode } from './helpers/fixtures.ts'
import { blockedOn } from './helpers/locks.ts'

function locker (t: ExecutionContext, ...args: string[]): Promise<{ pid: number, kill: () => Promise<void>, exited: Promise<void> }> {
  const child = spawn(process.execPath, tsNode('test/fixtures/locker.ts', ...args), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const kill = async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited }
  t.teardown(kill)
  return new Promise((resolve, reject) => {
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('HELD')) resolve({ pid: child.pid!, kill, exited })
      else reject(new Error(`locker said ${d.toString()}`))
    })
    child.once('exit', () => reject(new Error(`locker exited: ${err}`)))
  })
}

function lockFdOf (file: string): number | undefined {
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) return Number(fd)
    } catch { /* closed meanwhile */ }
  }
  return undefined
}

test('lock exclusion across processes; a SIGKILLed holder releases its lock', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const m = new LockManager(dir)
  const id = m.allocateSync()
  const holder = await locker(t, 'hold', dir, String(id))
  t.false(m.tryLockSync(id), 'another process holds it')
  let got = false
  const waiting = m.lock(id).then(() => { got = true })
  await blockedOn(m.pathFor(id))
  t.false(got, 'lock() waits while the holder lives')
  await holder.kill()
  await waiting
  t.true(got, 'the kernel dropped the dead holder\'s lock')
  t.true(m.isHeld(id))
  m.unlock(id)
  t.true(m.tryLockSync(id))
  m.unlock(id)
})

test('in one process, waiters queue like separate processes; lockSync on a held id is EDEADLK', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const a = new LockManager(dir)
  const id = a.allocateSync()
  await a.lock(id)
  const b = new LockManager(dir)
  t.false(b.tryLockSync(id))
  let bGot = false
  const bWait = b.lock(id).then(() => { bGot = true })
  await blockedOn(b.pathFor(id))
  t.false(bGot)
  t.throws(() => a.lockSync(id), { code: 'EDEADLK' })
  // b's own lock() is still waiting: a lockSync would block the one thread
  // that can deliver it, for good.
  const e = t.throws(() => b.lockSync(id), { code: 'EDEADLK' })
  t.regex(e.message, /already taking lock .*await that Promise/)
  a.unlock(id)
  await bWait
  t.true(bGot)
  t.true(b.isHeld(id))
  b.unlock(id)
  t.notThrows(() => b.lockSync(id), 'nothing is being taken any more')
  b.unlock(id)
})

test('lock() waiters never occupy the libuv pool (more waiters than UV_THREADPOOL_SIZE)', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const r = await run(process.execPath, tsNode('test/fixtures/locker.ts', 'waiters', dir, '12'), {
    cwd: repoRoot, env: { ...process.env, UV_THREADPOOL_SIZE: '2' },
  })
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { poolWork: string, pendingWhileHeld: number, acquired: number }
  t.is(out.pendingWhileHeld, 12, 'all 12 waiters were still waiting')
  t.is(out.poolWork, 'done', 'fs and crypto work ran on the pool meanwhile')
  t.is(out.acquired, 12, 'every waiter got its lock once released')
})

test('4 processes x 100 allocate() give 400 distinct ids, smallest first', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const runs = await Promise.all([0, 1, 2, 3].map(() =>
    run(process.execPath, tsNode('test/fixtures/locker.ts', 'allocate', dir, '100'), { cwd: repoRoot })))
  const ids = runs.flatMap((r) => JSON.parse(r.stdout) as number[])
  t.is(ids.length, 400)
  t.is(new Set(ids).size, 400)
  t.deepEqual([...ids].sort((x, y) => x - y), Array.from({ length: 400 }, (_, i) => i))
  t.is(fs.readdirSync(dir).length, 400)
  for (const r of runs) {
    const mine = JSON.parse(r.stdout) as number[]
    t.deepEqual(mine, [...mine].sort((x, y) => x - y), 'each process allocates in increasing order')
  }
})

test('allocate scans existing files; free() releases and deletes; ids are decimal file names', (t) => {
  const dir = path.join(scratch(t), 'locks')
  fs.mkdirSync(dir)
  for (const name of ['0', '1', '3', 'junk', '007']) fs.writeFileSync(path.join(dir, name), '')
  const m = new LockManager(dir)
  t.is(m.allocateSync(), 2)
  t.is(m.allocateSync(), 4)
  t.true(m.tryLockSync(4))
  m.freeSync(4)
  t.false(fs.existsSync(path.join(dir, '4')))
  t.false(m.isHeld(4))
  t.is(m.allocateSync(), 4)
  m.freeSync(99) // idempotent
  const e = t.throws(() => m.tryLockSync(42), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.reason, 'not-allocated')
  t.regex(e.message, /not allocated.*allocate\(\) it first/)
  t.throws(() => m.tryLockSync(-1), { code: 'ERR_INVALID_ARG' })
  t.throws(() => m.tryLockSync(2 ** 32), { code: 'ERR_INVALID_ARG' })
  t.throws(() => m.tryLockSync(1.5), { code: 'ERR_INVALID_ARG' })
})

test('runtime lock: a second holder gets EBUSY naming the home and the holder pid; exit releases it', async (t) => {
  const home = path.join(scratch(t), 'home')
  fs.mkdirSync(home)
  const holder = await locker(t, 'runtime', home)
  const e = t.throws(() => RuntimeLock.acquireSync(home), { instanceOf: LayoutError })
  t.is(e.code, 'EBUSY')
  t.is(e.reason, 'runtime-locked')
  t.is(e.path, path.join(home, '.lock'))
  t.true(e.message.includes(home))
  t.true(e.message.includes(`pid ${holder.pid}`))
  await holder.kill()
  const lock = RuntimeLock.acquireSync(home)
  t.true(lock.held)
  t.throws(() => RuntimeLock.acquireSync(home), { code: 'EBUSY' }, 'in-process second holder too')
  lock.release()
  lock.release()
  t.false(lock.held)
  RuntimeLock.acquireSync(home).release()
})

test('lock fds are O_CLOEXEC', (t) => {
  const home = path.join(scratch(t), 'home')
  fs.mkdirSync(home)
  const lock = RuntimeLock.acquireSync(home)
  t.teardown(() => lock.release())
  const dir = path.join(home, 'locks')
  const m = new LockManager(dir)
  const id = m.allocateSync()
  t.true(m.tryLockSync(id))
  t.teardown(() => m.unlock(id))
  for (const file of [path.join(home, '.lock'), path.join(dir, String(id))]) {
    const fd = lockFdOf(file)
    t.truthy(fd, `an fd holds ${file}`)
    const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd!}`, 'utf8'))![1]!
    t.true((Number.parseInt(flags, 8) & 0o2000000) !== 0, `${file} fd has O_CLOEXEC (flags ${flags})`)
  }
})

test('a waiter on a lock that is freed gets ENOENT; freed and allocated again, ESTALE', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const owner = new LockManager(dir)
  const waiter = new LockManager(dir)
  t.teardown(() => { owner.releaseAll(); waiter.releaseAll() })
  const id = owner.allocateSync()
  t.true(owner.tryLockSync(id))
  const gone = waiter.lock(id)
  await blockedOn(owner.pathFor(id))
  owner.freeSync(id)
  const e = await t.throwsAsync(gone, { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.reason, 'removed-while-waiting')
  t.regex(e.message, /was removed while we waited for its lock.*; retry/)
  t.false(waiter.isHeld(id))

  const again = owner.allocateSync()
  t.is(again, id, 'the smallest free id again')
  t.true(owner.tryLockSync(id))
  const stale = waiter.lock(id)
  await blockedOn(owner.pathFor(id))
  // Freed and allocated again before the waiter wakes: unlink, a new file
  // under the same name, then the old holder lets go.
  fs.unlinkSync(owner.pathFor(id))
  t.is(owner.allocateSync(), id)
  owner.unlock(id)
  const e2 = await t.throwsAsync(stale, { instanceOf: LayoutError })
  t.is(e2.code, 'ESTALE')
  t.is(e2.reason, 'replaced-while-waiting')
  t.regex(e2.message, /removed and made again while we waited for its lock/)
  // The new allocation is a working lock.
  t.true(waiter.tryLockSync(id))
})

test('runtime lock: a planted .lock symlink is refused (ELOOP) and its target untouched', (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  fs.mkdirSync(home)
  const victim = path.join(root, 'victim')
  fs.writeFileSync(victim, 'precious')
  fs.symlinkSync(victim, path.join(home, '.lock'))
  const e = t.throws(() => RuntimeLock.acquireSync(home), { instanceOf: LayoutError })
  t.is(e.code, 'ELOOP')
  t.is(e.reason, 'symlink')
  t.is(e.path, path.join(home, '.lock'))
  t.regex(e.message, /is a symlink.*remove it/)
  t.is(fs.readFileSync(victim, 'utf8'), 'precious')
})

test('a waiter whose worker thread is terminated neither crashes the process nor keeps the lock', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const r = await run(process.execPath, tsNode('test/fixtures/orphan-waiter.ts', dir, repoRoot), { cwd: repoRoot })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout.trim()), { survived: true, free: true })
})

test('a wait whose result is queued when its worker is terminated: dropped without use after free, the lock freed', async (t) => {
  const dir = path.join(scratch(t), 'locks')
  const r = await run(process.execPath, tsNode('test/fixtures/orphan-queued.ts', dir, repoRoot), { cwd: repoRoot })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout.trim()), { survived: true, free: true })
})
