// Cleanup, gc and reliability (RELIABILITY.md): cleanup never deletes through a
// mount or a planted symlink; a killed process leaves a state gc repairs;
// concurrent preparers end with exactly one mount.
import test from 'ava'
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { LayoutError, mintBoxId, PidFile, RuntimeLock } from '../lib/index.ts'
import { binding } from '../lib/native.ts'
import { freshBox, freshHome, privateLinkUid, runBoxOps, startHeldBoxOps } from './helpers/boxes.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { fdsUnder, mountTmpfs, repoRoot, scratch, tsNode, writeShimSet } from './helpers/fixtures.ts'
import { mountAt, mountsBelow } from './helpers/mounts.ts'

function sentinel (root: string): string {
  const dir = path.join(root, 'sentinel')
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'precious'), 'do not delete')
  return dir
}

privileged('cleanup detaches every mount in the box and never deletes host data behind one', async (t) => {
  const root = scratch(t)
  const host = sentinel(root)
  const home = freshHome(t, root)
  const box = freshBox(t, home)
  await box.prepare()
  fs.mkdirSync(path.join(box.mountsDir, 'volume'))
  execFileSync('mount', ['--bind', host, path.join(box.mountsDir, 'volume')])
  t.teardown(() => { for (const m of mountsBelow(home.home)) execFileSync('umount', ['-l', m]) })
  fs.writeFileSync(path.join(box.mountsDir, 'file'), 'f')
  await box.mountShared()
  t.true(mountsBelow(box.root).length >= 3, 'volume, shared, shared/volume')

  const r = await box.cleanup()
  t.true(r.removed)
  t.true(r.unmounted >= 2)
  t.deepEqual(mountsBelow(home.home), [])
  t.false(fs.existsSync(box.root))
  t.false(fs.existsSync(box.sockets.bindingDir))
  t.is(fs.readFileSync(path.join(host, 'precious'), 'utf8'), 'do not delete')
  t.deepEqual(fs.readdirSync(home.boxesDir), [], 'no trash left')
})

test('cleanup never follows a planted symlink out of the box', async (t) => {
  const root = scratch(t)
  const outside = sentinel(root)
  const home = freshHome(t, root)
  const box = freshBox(t, home)
  await box.prepare()
  fs.symlinkSync(outside, path.join(box.root, 'escape'))
  fs.symlinkSync(outside, path.join(box.mountsDir, 'escape'))
  fs.symlinkSync('/', path.join(box.logsDir, 'root'))
  fs.symlinkSync(path.join(outside, 'precious'), path.join(box.tmpDir, 'file-link'))
  const r = box.cleanupSync()
  t.true(r.removed)
  t.false(fs.existsSync(box.root))
  t.deepEqual(fs.readdirSync(outside), ['precious'])
  t.is(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'do not delete')
})

test('cleanup of a box dir that is itself a planted symlink removes only the link', async (t) => {
  const root = scratch(t)
  const outside = sentinel(root)
  const home = freshHome(t, root)
  const box = freshBox(t, home)
  fs.symlinkSync(outside, box.root)
  await box.cleanup()
  t.false(fs.existsSync(box.root))
  t.is(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'do not delete')
})

test('cleanup twice is fine; cleanup of a box never prepared is fine', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  t.true((await box.cleanup()).removed)
  const again = await box.cleanup()
  t.false(again.removed)
  t.false(again.socketLink.removed)
  t.false(freshBox(t, home).cleanupSync().removed)
})

test('cleanup leaves another home\'s link for the same box id alone', async (t) => {
  const a = freshHome(t)
  const b = freshHome(t)
  const id = mintBoxId()
  const boxA = a.box(id)
  const boxB = b.box(id)
  t.teardown(() => { boxA.sockets.removeSync(); boxB.sockets.removeSync() })
  await boxA.prepare()
  await boxB.prepare() // replaces the link: the newest preparer owns it
  t.is(fs.readlinkSync(boxA.sockets.bindingDir), boxB.socketsDir)
  const r = await boxA.cleanup()
  t.false(r.socketLink.removed, 'not ours any more')
  t.is(fs.readlinkSync(boxB.sockets.bindingDir), boxB.socketsDir)
})

testWith([needs.linux, needs.mount, needs.tool('unshare', 'util-linux')],
  'a mount that cannot be detached: cleanup fails EBUSY and deletes nothing below it; gc finishes later', async (t) => {
    const home = freshHome(t)
    const box = freshBox(t, home)
    await box.prepare()
    const vol = mountTmpfs(t, path.join(box.mountsDir, 'vol'), 'size=4m')
    fs.writeFileSync(path.join(vol, 'inside'), 'kept')
    // In a user namespace, a mount inherited from outside is locked to its
    // parent: umount2 refuses, like any mount we are not allowed to detach.
    const { steps, stderr } = await runBoxOps({ home: home.home, boxId: box.boxId, ops: ['cleanup'] }, 'userns')
    const step = steps[0]
    t.truthy(step, stderr)
    t.false(step!.ok)
    t.is(step!.code, 'EBUSY')
    t.regex(step!.message!, /could not be detached/)
    const trash = fs.readdirSync(home.boxesDir).find((n) => n.startsWith('.trash-'))
    t.truthy(trash, 'the box was moved out of sight first')
    const moved = path.join(home.boxesDir, trash!, 'mounts', 'vol')
    t.is(fs.readFileSync(path.join(moved, 'inside'), 'utf8'), 'kept', 'nothing below the mount was deleted')

    const report = await home.gc()
    t.true(report.actions.some((a) => a.kind === 'unmount' && a.done))
    t.true(report.actions.some((a) => a.kind === 'remove-trash' && a.done))
    t.deepEqual(mountsBelow(home.home), [])
    t.deepEqual(fs.readdirSync(home.boxesDir), [])
  })

privileged('gc repairs a box whose process was SIGKILLed right after mountShared', async (t) => {
  const home = freshHome(t)
  const boxId = mintBoxId()
  const box = home.box(boxId, { isolateMounts: true })
  t.teardown(() => box.sockets.removeSync())
  const held = await startHeldBoxOps(t, { home: home.home, boxId, ops: ['prepare', 'mountShared'] })
  t.true(held.steps.every((s) => s.ok), JSON.stringify(held.steps))
  await held.kill()
  t.deepEqual(mountsBelow(box.root), [fs.realpathSync(box.sharedDir)], 'the mount outlived its process')

  const report = await home.gc({ graceSeconds: 0 })
  t.deepEqual(report.liveBoxes, [])
  const unmount = report.actions.find((a) => a.kind === 'unmount')
  t.truthy(unmount)
  t.true(unmount!.done)
  t.regex(unmount!.why, /no live shim owns box/)
  t.deepEqual(mountsBelow(home.home), [], 'zero leaked mounts')
  // The box itself is intact and can be mounted again.
  t.is(box.mountSharedSync().method, 'bind-ro')
  box.cleanupSync()
})

privileged('gc leaves a box with a live shim alone', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  await box.mountShared()
  await new PidFile(box.pidFilePath).write(process.pid)
  const report = home.gcSync()
  t.deepEqual(report.liveBoxes, [box.boxId])
  t.false(report.actions.some((a) => a.kind === 'unmount'))
  t.is(box.sharedStateSync().kind, 'mount')
  box.cleanupSync({ force: true })
})

testWith([needs.root], 'gc: dry run reports and changes nothing; then repairs trash, tmp leftovers, partial copies, dangling links', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  fs.mkdirSync(box.binDir)
  fs.writeFileSync(path.join(box.binDir, '.boxlite-shim.blx-0123456789abcdef'), 'half')
  fs.writeFileSync(path.join(box.binDir, 'boxlite-shim'), 'whole')
  fs.mkdirSync(path.join(home.boxesDir, '.trash-abc-01234567', 'logs'), { recursive: true })
  fs.writeFileSync(path.join(home.tmpDir, 'staging.qcow2'), 'x')
  // A uid of its own: other tests sweep /tmp/bl-{our uid} concurrently.
  // Root: the link dir is created for (and owned by) that uid.
  const uid = privateLinkUid(t)
  const live = freshBox(t, home, { isolateMounts: true, uid })
  await live.prepare()
  const dead = freshBox(t, home, { isolateMounts: true, uid })
  await dead.prepare()
  fs.rmSync(dead.root, { recursive: true }) // its link now dangles

  const ours = (a: { kind: string, path: string }) => a.kind !== 'remove-link' || a.path === dead.sockets.bindingDir
  const dry = await home.gc({ dryRun: true, uid, graceSeconds: 0 })
  t.true(dry.dryRun)
  const kinds = dry.actions.filter(ours).map((a) => a.kind).sort()
  t.deepEqual(kinds, ['remove-link', 'remove-partial-copy', 'remove-tmp', 'remove-trash'])
  t.true(dry.actions.every((a) => !a.done))
  t.true(fs.existsSync(path.join(home.tmpDir, 'staging.qcow2')))
  t.true(fs.lstatSync(dead.sockets.bindingDir).isSymbolicLink())

  const real = await home.gc({ uid, graceSeconds: 0 })
  t.true(real.actions.every((a) => a.done), JSON.stringify(real.actions))
  t.deepEqual(real.actions.map((a) => a.kind).sort(), kinds)
  t.deepEqual(fs.readdirSync(home.tmpDir), [])
  t.deepEqual(fs.readdirSync(box.binDir), ['boxlite-shim'])
  t.deepEqual(fs.readdirSync(home.boxesDir).sort(), [box.boxId, live.boxId].sort())
  t.throws(() => fs.lstatSync(dead.sockets.bindingDir), { code: 'ENOENT' })
  t.true(fs.lstatSync(live.sockets.bindingDir).isSymbolicLink(), 'live links stay')
  t.deepEqual((await home.gc({ uid, graceSeconds: 0 })).actions, [], 'nothing left to do')
})

test('gc needs the runtime lock: EBUSY while another process holds it; accepts the caller\'s', async (t) => {
  const home = freshHome(t)
  const holder = `
    const { RuntimeLock } = await import(${JSON.stringify(path.join(repoRoot, 'lib/index.ts'))})
    RuntimeLock.acquireSync(process.argv[1]); console.log('HELD'); setInterval(() => {}, 1e9)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holder, home.home], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('HELD')) resolve() }))
  const e = await t.throwsAsync(home.gc(), { instanceOf: LayoutError })
  t.is(e.code, 'EBUSY')
  t.true(e.message.includes(home.home))
  t.regex(e.message, new RegExp(`pid ${child.pid!}`))
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  const lock = await RuntimeLock.acquire(home.home)
  t.teardown(() => lock.release())
  t.is((await home.gc({ runtimeLock: lock })).actions.filter((a) => a.kind !== 'remove-link').length, 0)
  t.true(lock.held, 'gc leaves the caller\'s lock held')
})

privileged('concurrent preparers of one box end with exactly one mount', async (t) => {
  const home = freshHome(t)
  const boxId = mintBoxId()
  const box = home.box(boxId, { isolateMounts: true })
  t.teardown(() => box.sockets.removeSync())
  const runs = await Promise.all(Array.from({ length: 6 }, () =>
    runBoxOps({ home: home.home, boxId, ops: ['prepare', 'mountShared'] })))
  for (const r of runs) t.true(r.steps.every((s) => s.ok), JSON.stringify(r.steps) + r.stderr)
  const fresh = runs.filter((r) => r.steps[1]!.result.reused === false).length
  t.is(fresh, 1, 'exactly one process mounted, the others reused it')
  const shared = fs.realpathSync(box.sharedDir)
  t.is(mountsBelow(box.root).filter((m) => m === shared).length, 1)
  box.cleanupSync()
  t.deepEqual(mountsBelow(home.home), [])
})

privileged('SIGKILL at any point of prepare, mount, shim install or cleanup: the next prepare/gc repairs it', async (t) => {
  const root = scratch(t)
  const home = freshHome(t, root)
  const shimPath = writeShimSet(path.join(root, 'shim'), { shimBytes: 2 << 20, libBytes: 1 << 20 })
  const ids: string[] = []
  t.teardown(() => { for (const id of ids) fs.rmSync(`/tmp/bl-0/${id}`, { force: true }) })
  let leftBehind = 0
  for (let i = 0; i < 8; i++) {
    const boxId = mintBoxId()
    ids.push(boxId)
    // A child looping over the whole lifecycle, killed at a random moment
    // once it is inside the loop (not while it is still loading).
    const spec = { home: home.home, boxId, shim: shimPath, quiet: true, repeat: -1, ops: ['prepare', 'mountShared', 'installShim', 'cleanup'] }
    const child = spawn(process.execPath, tsNode('test/fixtures/box-op.ts', JSON.stringify(spec)), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('STARTED')) resolve() }))
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 200)))
    child.kill('SIGKILL')
    await new Promise((resolve) => child.once('exit', resolve))
    if (fs.existsSync(path.join(home.boxesDir, boxId)) || mountsBelow(home.home).length > 0) leftBehind++
  }
  t.true(leftBehind > 0, 'the kills landed mid-lifecycle and left state for gc to repair')
  const report = await home.gc({ graceSeconds: 0 })
  t.true(report.actions.every((a) => a.done), JSON.stringify(report.actions))
  t.deepEqual(mountsBelow(home.home), [], 'zero leaked mounts after gc')
  for (const id of ids) {
    const box = home.box(id, { isolateMounts: true })
    await box.prepare()
    await box.mountShared()
    const shim = await box.installShim(shimPath)
    t.deepEqual(shim.files.map((f) => f.name), ['boxlite-shim', 'libkrunfw.so.5'])
    t.is(fs.readFileSync(path.join(box.binDir, 'libkrunfw.so.5')).length, 1 << 20, 'no half-written copy under its real name')
    await box.cleanup()
  }
  t.deepEqual(mountsBelow(home.home), [])
  t.deepEqual(fs.readdirSync(home.boxesDir), [])
  for (const id of ids) t.false(fs.existsSync(`/tmp/bl-0/${id}`), `no link left for ${id}`)
})

// Serial: it changes the process cwd and counts the process's fds.
test.serial('cleanup removes a 20 000-level tree (iterative, bounded fds, no stack overflow)', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  const cwd = process.cwd()
  t.teardown(() => process.chdir(cwd))
  process.chdir(box.tmpDir)
  for (let i = 0; i < 20000; i++) {
    fs.mkdirSync('d')
    process.chdir('d')
  }
  fs.writeFileSync('bottom', 'x')
  process.chdir(cwd)
  t.deepEqual(fdsUnder(home.home), [], 'no fd open in the home before')
  const r = await box.cleanup()
  t.true(r.removed)
  t.true(r.entries > 20000)
  t.false(fs.existsSync(box.root))
  t.deepEqual(fdsUnder(home.home), [], 'no fd left open in the removed tree')
})

for (const mode of ['handle', 'none'] as const) {
  privileged(`without statx mount ids (BOXLITE_LAYOUT_MOUNT_ID=${mode}): no stacked mounts, no deleting through a bind mount`, async (t) => {
    const root = scratch(t)
    const victim = sentinel(root)
    const home = freshHome(t, root)
    const boxId = mintBoxId()
    const box = home.box(boxId, { isolateMounts: true })
    t.teardown(() => box.sockets.removeSync())
    const env = { BOXLITE_LAYOUT_MOUNT_ID: mode }
    const first = await runBoxOps({ home: home.home, boxId, ops: ['prepare', 'mountShared', 'mountShared'] }, 'none', env)
    t.true(first.steps.every((s) => s.ok), JSON.stringify(first.steps) + first.stderr)
    t.true(first.steps[2]!.result.reused, 'the existing mount is recognised')
    const shared = fs.realpathSync(box.sharedDir)
    t.is(mountsBelow(box.root).filter((m) => m === shared).length, 1, 'exactly one mount')
    // A same-filesystem bind mount: only a mount id (or mountinfo) tells it from a directory.
    fs.mkdirSync(path.join(box.mountsDir, 'vol'))
    execFileSync('mount', ['--bind', victim, path.join(box.mountsDir, 'vol')])
    const cleaned = await runBoxOps({ home: home.home, boxId, ops: ['cleanup'] }, 'none', env)
    t.true(cleaned.steps[0]!.ok, JSON.stringify(cleaned.steps) + cleaned.stderr)
    t.deepEqual(fs.readdirSync(victim), ['precious'], 'nothing deleted through the mount')
    t.deepEqual(mountsBelow(home.home), [])
  })
}

privileged('gc never unmounts through a path swapped for a symlink since the listing', async (t) => {
  const root = scratch(t)
  const home = freshHome(t, root)
  const box = freshBox(t, home)
  await box.prepare()
  mountTmpfs(t, path.join(box.mountsDir, 'vol', 'data'), 'size=1m')
  const elsewhere = mountTmpfs(t, path.join(root, 'elsewhere', 'data'), 'size=1m')
  const mountId = mountAt(path.join(box.mountsDir, 'vol', 'data'))!.id
  // The swap: vol becomes a symlink to a directory holding another mount.
  fs.renameSync(path.join(box.mountsDir, 'vol'), path.join(box.mountsDir, 'vol.old'))
  fs.symlinkSync(path.join(root, 'elsewhere'), path.join(box.mountsDir, 'vol'))
  const unmount = (rel: string, id: string) => binding().gcUnmount(home.home, box.boxId, [`${box.boxId}/mounts/${rel}`], [id])[0]!
  const swapped = unmount('vol/data', mountId)
  t.false(swapped.detached)
  t.is(swapped.error?.reason, 'symlink', 'refused: ELOOP on the symlinked component')
  t.true(mountsBelow(elsewhere).length === 1, 'the unrelated mount is still there')
  // The listed mount, at its real place, is detached; a wrong id is left alone.
  t.false(unmount('vol.old/data', String(Number(mountId) + 100000)).detached, 'another id: not ours, left alone')
  t.true(unmount('vol.old/data', mountId).detached)
})
