// The rails between the parts a runtime composes: cleanup refuses a box
// whose shim runs, gc leaves a box being set up alone, a restart after a
// failure recovers, and errors name their cause (not-prepared, a lock this
// process holds). Real processes, real flocks, real mounts.
import test, { type ExecutionContext } from 'ava'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { toLayoutError } from '../lib/errors.ts'
import { connectUnix, ERRNO_CODES, HomeLayout, LayoutError, listenUnix, PidFile, RuntimeLock } from '../lib/index.ts'
import { binding } from '../lib/native.ts'
import { freshBox, freshHome, privateLinkUid, testLinkUid } from './helpers/boxes.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'
import { mountsBelow } from './helpers/mounts.ts'

/** A stand-in shim: a real process, killed at teardown. */
function startShim (t: ExecutionContext): ChildProcess {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  return child
}

async function stop (child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

test('cleanup refuses a box whose shim is alive (EBUSY shim-alive), sync and async; force removes it', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home, {})
  await box.prepare()
  const shim = startShim(t)
  await box.pidFile.write(shim.pid!)
  const e = await t.throwsAsync(box.cleanup(), { instanceOf: LayoutError })
  t.is(e.code, 'EBUSY')
  t.is(e.reason, 'shim-alive')
  t.is(e.path, box.pidFilePath)
  t.regex(e.message, new RegExp(`pid ${shim.pid!}.*force`))
  t.throws(() => box.cleanupSync(), { instanceOf: LayoutError, message: /its shim is alive/ })
  t.true(fs.existsSync(box.root), 'nothing was removed')
  t.true(fs.lstatSync(box.sockets.bindingDir).isSymbolicLink(), 'the socket link stays')
  t.throws(() => box.cleanupSync({ force: 'yes' as unknown as boolean }), { code: 'ERR_INVALID_ARG' })

  // A legacy record (a live pid, no fingerprint) counts as alive too, as gc counts it.
  fs.writeFileSync(box.pidFilePath, `${process.pid}\n`)
  await t.throwsAsync(box.cleanup(), { message: /its shim is alive/ })

  const r = await box.cleanup({ force: true })
  t.true(r.removed)
  t.false(fs.existsSync(box.root))
})

test('cleanup goes ahead once the shim is gone, or when its pid was reused', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home, {})
  await box.prepare()
  const shim = startShim(t)
  const record = await box.pidFile.write(shim.pid!)
  // Same pid, another start time: a recycled pid, not our shim.
  fs.writeFileSync(box.pidFilePath, `${shim.pid!}\n${BigInt(record.startTime!) + 1n}\n`)
  t.true(box.cleanupSync().removed)
  await box.prepare()
  await box.pidFile.write(shim.pid!)
  await stop(shim)
  t.true((await box.cleanup()).removed)
  t.true((await box.cleanup()).removed === false, 'still idempotent')
})

/** Hold a box's lock from another process (flock(1) on the box dir, as the library locks it). */
async function holdBoxLock (t: ExecutionContext, boxDir: string): Promise<() => Promise<void>> {
  // -o: the lock is flock's own fd, not inherited by the command, so killing
  // flock at teardown releases it even when the test failed midway.
  const child = spawn('flock', ['-o', boxDir, 'sh', '-c', 'echo held; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('held')) resolve() }))
  return async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.stdin!.end()
    await exited
  }
}

privileged('gc during setup: a prepared, mounted box with no shim yet is left alone (grace, box lock, exclude)', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  await box.mountShared()
  const shared = fs.realpathSync(box.sharedDir)
  t.teardown(() => { if (fs.existsSync(box.root)) box.cleanupSync({ force: true }) })

  const recent = await home.gc()
  t.deepEqual(recent.skippedBoxes, [box.boxId])
  t.deepEqual(recent.liveBoxes, [])
  t.true(recent.warnings.some((w) => w.kind === 'recent' && w.path === box.root))
  t.deepEqual(mountsBelow(box.root), [shared], 'within the default grace period: mounted still')

  const excluded = home.gcSync({ graceSeconds: 0, exclude: [box.boxId] })
  t.deepEqual(excluded.skippedBoxes, [box.boxId])
  t.true(excluded.warnings.some((w) => w.kind === 'excluded'))
  t.deepEqual(mountsBelow(box.root), [shared])

  const release = await holdBoxLock(t, box.root)
  const busy = await home.gc({ graceSeconds: 0 })
  t.deepEqual(busy.skippedBoxes, [box.boxId])
  t.true(busy.warnings.some((w) => w.kind === 'box-busy' && w.path === box.root))
  t.true(busy.actions.every((a) => a.done), 'a box being set up is no failure')
  t.deepEqual(mountsBelow(box.root), [shared], 'its lock is held: mounted still')
  await release()

  const after = await home.gc({ graceSeconds: 0 })
  t.true(after.actions.some((a) => a.kind === 'unmount' && a.done))
  t.deepEqual(mountsBelow(box.root), [])
  t.throws(() => home.gcSync({ exclude: ['../x'] }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => home.gcSync({ graceSeconds: -1 }), { code: 'ERR_INVALID_ARG' })
})

privileged('gc during a cleanup: a trash whose removal holds its lock is left alone, mounts and files; removed once released', async (t) => {
  const home = freshHome(t)
  const host = path.join(scratch(t), 'host')
  fs.mkdirSync(host)
  fs.writeFileSync(path.join(host, 'precious'), 'keep')
  // What a cleanup leaves while it works: the box renamed out of sight, its
  // lock held on the same inode, a volume still mounted inside.
  const trash = path.join(home.boxesDir, '.trash-b1-3a2f')
  const volume = path.join(trash, 'mounts', 'volume')
  fs.mkdirSync(volume, { recursive: true })
  fs.writeFileSync(path.join(trash, 'console.log'), 'still being removed')
  execFileSync('mount', ['--bind', host, volume])
  const mounted = fs.realpathSync(volume)
  t.teardown(() => { if (mountsBelow(home.home).includes(mounted)) execFileSync('umount', ['-l', mounted]) })
  const release = await holdBoxLock(t, trash)

  const busy = await home.gc({ graceSeconds: 0 })
  t.true(busy.warnings.some((w) => w.kind === 'box-busy' && w.path === trash), JSON.stringify(busy.warnings))
  t.deepEqual(busy.actions.filter((a) => a.path.startsWith(trash)), [], 'no step planned inside it')
  t.true(busy.actions.every((a) => a.done))
  t.is(fs.readFileSync(path.join(trash, 'console.log'), 'utf8'), 'still being removed')
  t.deepEqual(mountsBelow(home.home), [mounted], 'nothing detached')
  // Locked after the scan: each repair tries the lock itself.
  const name = path.basename(trash)
  const mountId = String(fs.statSync(volume, { bigint: true }).dev) // any id: the lock is tried first
  for (const repair of [
    () => binding().gcRemove(home.home, 'boxes', name),
    () => binding().gcUnmount(home.home, name, [`${name}/mounts/volume`], [mountId]),
  ]) {
    const e = toLayoutError(t.throws(repair)) as LayoutError
    t.is(e.code, 'EBUSY')
    t.is(e.reason, 'box-busy')
  }
  t.deepEqual(mountsBelow(home.home), [mounted])
  t.true(fs.existsSync(path.join(trash, 'console.log')))

  await release()
  const after = await home.gc({ graceSeconds: 0 })
  t.true(after.actions.some((a) => a.kind === 'unmount' && a.done), JSON.stringify(after.actions))
  t.true(after.actions.some((a) => a.kind === 'remove-trash' && a.done && a.path === trash))
  t.false(fs.existsSync(trash))
  t.deepEqual(mountsBelow(home.home), [])
  t.is(fs.readFileSync(path.join(host, 'precious'), 'utf8'), 'keep', 'the host data behind the mount is intact')
})

/** Every entry below dir, as relative paths, sorted. */
function treeOf (dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort()
}

testWith([needs.linux, needs.tool('strace', 'strace')], 'gc during a real cleanup, stopped halfway through its removal: the trash is left alone; the cleanup then finishes', async (t) => {
  const home = freshHome(t)
  // A uid of its own: gc sweeps dangling links in /tmp/bl-{uid}, and other tests make some on purpose.
  const uid = privateLinkUid(t)
  const cli = path.join(repoRoot, 'dist', 'cli.cjs')
  const made = (box: ReturnType<HomeLayout['box']>) => {
    box.prepareSync()
    for (const d of [box.logsDir, box.disksDir, box.tmpDir]) fs.writeFileSync(path.join(d, 'data'), d)
  }
  // Where the removal starts: the first unlinkat after the rename to trash,
  // counted on a box made the same way (the CLI's own calls before it are
  // the same in every run).
  const probe = freshBox(t, home, { uid })
  made(probe)
  const trace = path.join(scratch(t), 'trace')
  // -f: the CLI's calls run on a pool thread.
  const counted = await run('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=unlinkat,renameat,renameat2', process.execPath, cli, 'box', 'cleanup', probe.boxId, '--home', home.home])
  t.is(counted.code, 0, counted.stderr)
  const calls = fs.readFileSync(trace, 'utf8').split('\n').map((l) => l.replace(/^\d+\s+/, ''))
  const rename = calls.findIndex((l) => l.startsWith('renameat') && l.includes('.trash-'))
  t.true(rename >= 0, 'the cleanup renamed the box to trash')
  const stopAt = calls.slice(0, rename).filter((l) => l.startsWith('unlinkat(')).length + 1

  const box = freshBox(t, home, { uid })
  made(box)
  const stops = path.join(scratch(t), 'stops')
  const cleanup = spawn('strace', ['-f', '-qq', '-o', stops, '-e', 'trace=unlinkat', '-e', `inject=unlinkat:signal=SIGSTOP:when=${stopAt}`,
    process.execPath, cli, 'box', 'cleanup', box.boxId, '--home', home.home], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  cleanup.stdout.on('data', (d: Buffer) => { out += d.toString() })
  let ended = false
  const exited = new Promise<number | null>((resolve) => cleanup.once('exit', (code) => { ended = true; resolve(code) }))
  t.teardown(() => { cleanup.kill('SIGKILL') })
  // strace reports the group stop the injected SIGSTOP causes: the CLI is
  // then held at the start of its removal (a tracee is stopped briefly at
  // every traced call too, so the process state alone would not say which).
  let stopped: RegExpMatchArray | null = null
  while (stopped === null) {
    if (ended) throw new Error(`strace ended before the injected stop: ${out}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
    stopped = (fs.existsSync(stops) ? fs.readFileSync(stops, 'utf8') : '').match(/^(\d+)\s+--- stopped by SIGSTOP ---$/m)
  }
  const pid = Number(stopped[1])
  // Only while strace (which reaps it) runs is the number still this CLI's.
  t.teardown(() => { if (!ended) try { process.kill(pid, 'SIGKILL') } catch {} })
  const [trash] = fs.readdirSync(home.boxesDir).filter((n) => n.startsWith(`.trash-${box.boxId}-`))
  t.truthy(trash, 'the box is out of sight, its removal under way')
  const trashDir = path.join(home.boxesDir, trash!)
  const before = treeOf(trashDir)

  const report = await home.gc({ graceSeconds: 0, uid })
  t.true(report.warnings.some((w) => w.kind === 'box-busy' && w.path === trashDir), JSON.stringify(report.warnings))
  t.deepEqual(report.actions.filter((a) => a.path.startsWith(trashDir)), [])
  t.deepEqual(treeOf(trashDir), before, 'gc removed nothing of it')

  process.kill(pid, 'SIGCONT')
  t.is(await exited, 0, out)
  t.regex(out, new RegExp(`${box.boxId}\\s+yes`), 'the cleanup finished and removed the box')
  t.deepEqual(fs.readdirSync(home.boxesDir), [], 'no trash left')
  t.deepEqual((await home.gc({ graceSeconds: 0, uid })).actions.filter((a) => a.kind !== 'remove-link'), [])
})

privileged('gc during a shim install: a partial copy in a box whose lock is taken after the scan is left alone', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  t.teardown(() => { if (fs.existsSync(box.root)) box.cleanupSync({ force: true }) })
  await box.prepare()
  fs.mkdirSync(box.binDir)
  const partial = '.boxlite-shim.blx-0123456789abcdef'
  fs.writeFileSync(path.join(box.binDir, partial), 'being copied')
  const release = await holdBoxLock(t, box.root)
  const e = toLayoutError(t.throws(() => binding().gcRemove(home.home, `boxes/${box.boxId}/bin`, partial))) as LayoutError
  t.is(e.code, 'EBUSY')
  t.is(e.reason, 'box-busy')
  t.is(fs.readFileSync(path.join(box.binDir, partial), 'utf8'), 'being copied')
  await release()
  binding().gcRemove(home.home, `boxes/${box.boxId}/bin`, partial)
  t.deepEqual(fs.readdirSync(box.binDir), [])
})

privileged('a restart after a failure: shim dead, gc repairs, the same box is prepared, mounted and cleaned up again', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  t.teardown(() => { if (fs.existsSync(box.root)) box.cleanupSync({ force: true }) })
  await box.prepare()
  await box.mountShared()
  const shim = startShim(t)
  await box.pidFile.write(shim.pid!)
  await t.throwsAsync(box.cleanup(), { message: /its shim is alive/ })
  t.deepEqual((await home.gc({ graceSeconds: 0 })).liveBoxes, [box.boxId], 'gc leaves the live one alone too')
  await stop(shim) // the shim fails
  const repaired = await home.gc({ graceSeconds: 0 })
  t.deepEqual(repaired.liveBoxes, [])
  t.true(repaired.actions.some((a) => a.kind === 'unmount' && a.done && a.path === box.sharedDir))
  // The runtime restarts the box.
  await box.prepare()
  t.is((await box.mountShared()).method, 'bind-ro')
  const second = startShim(t)
  await box.pidFile.write(second.pid!)
  t.is((await box.inspect()).shim.identity, 'verified')
  await stop(second)
  t.true((await box.cleanup()).removed)
  t.deepEqual(mountsBelow(home.home), [])
})

test('socket operations before prepare(): ENOENT, reason not-prepared, naming the missing directory', async (t) => {
  const home = freshHome(t)
  // Its link dangles on purpose below: in a /tmp/bl-{uid} of its own, where
  // no other test's gc sweeps it away before the message is made.
  const box = freshBox(t, home, { uid: testLinkUid(t) })
  const listen = await t.throwsAsync(listenUnix(box.socketPath), { instanceOf: LayoutError })
  t.is(listen.code, 'ENOENT')
  t.is(listen.reason, 'not-prepared')
  t.is(listen.path, box.sockets.bindingDir)
  t.regex(listen.message, /prepare\(\) the box first/)
  const connect = await t.throwsAsync(connectUnix(box.readySocketPath), { instanceOf: LayoutError })
  t.is(connect.reason, 'not-prepared')
  t.is(connect.path, box.sockets.bindingDir)
  // A link whose box was removed behind its back: the same cause, named.
  await box.prepare()
  fs.rmSync(box.root, { recursive: true })
  const dangling = await t.throwsAsync(listenUnix(box.socketPath), { instanceOf: LayoutError })
  t.is(dangling.reason, 'not-prepared')
  t.regex(dangling.message, /a symlink to .*sockets, which does not exist/)
})

test('pidFile.write() before prepare(): not-prepared with the path', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home, {})
  const e = await t.throwsAsync(box.pidFile.write(process.pid), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.reason, 'not-prepared')
  t.truthy(e.path)
  t.regex(e.message, /prepare\(\) the box first/)
  t.throws(() => new PidFile(path.join(scratch(t), 'no', 'shim.pid')).writeSync(), { instanceOf: LayoutError, message: /not-prepared|prepare\(\)/ })
})

test('a runtime lock this process already holds: the error says to pass { runtimeLock }', async (t) => {
  const home = freshHome(t)
  const lock = await home.acquireRuntimeLock()
  t.teardown(() => lock.release())
  const e = await t.throwsAsync(home.gc(), { instanceOf: LayoutError })
  t.is(e.code, 'EBUSY')
  t.is(e.reason, 'runtime-locked')
  t.regex(e.message, /this process already holds the runtime lock/)
  t.regex(e.message, /runtimeLock/)
  t.notRegex(e.message, /another BoxLite runtime/)
  t.throws(() => home.acquireRuntimeLockSync(), { message: /pass the RuntimeLock you hold/ })
  t.true(Array.isArray((await home.gc({ runtimeLock: lock })).actions))
})

test('RuntimeLock.adopt: a fd number that is not open is not the lock, even where the adopt\'s own descriptors land', async (t) => {
  const home = freshHome(t)
  ;(await home.acquireRuntimeLock()).release()
  // Free the k lowest numbers and name the highest: whichever of them the
  // adopt opens the home and its .lock on, the closed number is not adopted.
  for (let k = 1; k <= 8; k++) {
    const freed = Array.from({ length: k }, () => fs.openSync('/dev/null', 'r'))
    for (const fd of freed) fs.closeSync(fd)
    t.is(RuntimeLock.adoptSync(home.home, freed.at(-1)!), null, `k = ${k}`)
  }
  const again = await home.acquireRuntimeLock()
  t.true(again.held, 'nothing was left holding the lock')
  again.release()
})

test('RuntimeLock.adopt: a child adopts the fd its parent holds, once; not this home\'s lock is null; another holder is EBUSY', async (t) => {
  const home = freshHome(t)
  const other = freshHome(t)
  const lock = await home.acquireRuntimeLock()
  t.teardown(() => lock.release())
  // Another open file description of the same .lock, inherited as fd 4.
  const second = fs.openSync(home.runtimeLockPath, 'r')
  t.teardown(() => fs.closeSync(second))
  const child = `
    const { RuntimeLock } = await import(${JSON.stringify(path.join(repoRoot, 'lib/index.ts'))})
    const [home, other] = process.argv.slice(1)
    const reasonOf = (f) => { try { return f() } catch (e) { return e.reason } }
    const adopted = RuntimeLock.adoptSync(home, 3)
    const again = reasonOf(() => RuntimeLock.adoptSync(home, 3))
    const elsewhere = RuntimeLock.adoptSync(other, 3)
    const notTheLock = RuntimeLock.adoptSync(home, 0)
    const fresh = reasonOf(() => { RuntimeLock.acquireSync(home); return 'acquired' })
    const fs = await import('node:fs')
    const own = reasonOf(() => RuntimeLock.adoptSync(home, fs.openSync(home + '/.lock', 'r')))
    const stranger = reasonOf(() => RuntimeLock.adoptSync(home, 4))
    adopted.release()
    console.log(JSON.stringify({ adopted: adopted?.held === false, again, elsewhere, notTheLock, fresh, own, stranger }))`
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child, home.home, other.home],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe', lock.fd!, second] })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    adopted: true,
    again: 'runtime-locked', // this process's RuntimeLock owns fd 3 already
    elsewhere: null,
    notTheLock: null,
    fresh: 'runtime-locked',
    own: 'runtime-locked', // another description of the .lock the parent holds
    stranger: 'runtime-locked',
  })
  t.true(lock.held, 'the child closing its copy leaves the parent\'s lock held')
})

test('home.boxes(): the states box list shows; a missing home is ENOENT not-prepared, like gc', async (t) => {
  const home = freshHome(t)
  const prepared = freshBox(t, home, {})
  await prepared.prepare()
  const live = freshBox(t, home, {})
  await live.prepare()
  await live.pidFile.write(process.pid)
  fs.mkdirSync(path.join(home.boxesDir, '.trash-abc-01234567'))
  fs.writeFileSync(path.join(home.boxesDir, 'not a box'), '')
  const states = Object.fromEntries((await home.boxes()).map((b) => [b.name, b.state]))
  t.deepEqual(states, { [prepared.boxId]: 'prepared', [live.boxId]: 'live', '.trash-abc-01234567': 'trash', 'not a box': 'stray' })
  t.deepEqual(home.boxesSync(), await home.boxes())
  const liveRow = home.boxesSync().find((b) => b.name === live.boxId)!
  t.deepEqual(liveRow.shim, { pid: process.pid, alive: true, identity: 'verified' })
  const missing = new HomeLayout({ home: path.join(scratch(t), 'typo') })
  const e = await t.throwsAsync(missing.boxes(), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.reason, 'not-prepared')
  t.is(e.path, missing.home)
  await t.throwsAsync(missing.gc(), { instanceOf: LayoutError, code: 'ENOENT' })
  live.cleanupSync({ force: true })
})

testWith([needs.linux], 'LayoutErrorCode: every listed errno is a real one; an errno outside the list is ERR_UNKNOWN_ERRNO with its number kept', (t) => {
  for (const code of ERRNO_CODES) t.is(typeof (os.constants.errno as Record<string, number>)[code], 'number', code)
  const ehostdown = 112 // EHOSTDOWN on Linux: a real errno, not one the package surfaces
  const e = toLayoutError({ nativeError: true, errno: ehostdown, syscall: 'connect', path: '/x' }) as LayoutError
  t.is(e.code, 'ERR_UNKNOWN_ERRNO')
  t.is(e.errno, -ehostdown)
  t.is(e.syscall, 'connect')
  t.regex(e.message, new RegExp(`errno ${ehostdown}`))
  const wouldBlock = toLayoutError({ nativeError: true, errno: os.constants.errno.EWOULDBLOCK }) as LayoutError
  t.is(wouldBlock.code, 'EAGAIN')
})

testWith([needs.linux], 'a typo in a code comparison does not compile (tsc on a fixture)', async (t) => {
  const dir = scratch(t)
  const fixture = path.join(dir, 'typo.ts')
  fs.writeFileSync(fixture, [
    `import { LayoutError } from ${JSON.stringify(path.join(repoRoot, 'lib', 'index.ts'))}`,
    'export function busy (e: LayoutError): boolean { return e.code === \'EBUSY\' }',
    'export function typo (e: LayoutError): boolean { return e.code === \'EBSY\' }',
    'export function reason (e: LayoutError): boolean { return e.reason === \'shim-alive\' }',
    '',
  ].join('\n'))
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = await run(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--target', 'ES2022', '--module', 'NodeNext',
    '--moduleResolution', 'NodeNext', '--allowImportingTsExtensions', '--types', 'node', '--typeRoots', path.join(repoRoot, 'node_modules', '@types'), fixture],
  { cwd: repoRoot })
  const errors = r.stdout.split('\n').filter((l) => /error TS/.test(l))
  t.is(errors.length, 1, r.stdout + r.stderr)
  t.regex(errors[0]!, /typo\.ts\(3,.*TS2367.*"EBSY"/)
})
