// The shared mount (docs/design.md, "The shared mount"): mounts/ shown read-only at shared/, by the new mount
// API, by the classic one, in a user namespace, or (unprivileged) as a
// reported symlink. Real mounts, removed by exact path at teardown.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { BoxLayout, HomeLayout, LayoutError, mintBoxId } from '../lib/index.ts'
import { freshBox, freshHome, runBoxOps } from './helpers/boxes.ts'
import { needs, privileged, privilegedSerial, testWith } from './helpers/env.ts'
import { mountTmpfs, repoRoot, run, scratch } from './helpers/fixtures.ts'
import { mountAt, mountsBelow } from './helpers/mounts.ts'
import { asNobody, NOBODY, packageForNobody } from './helpers/other-user.ts'

function expectEROFS (t: import('ava').ExecutionContext, what: string, fn: () => void): void {
  const e = t.throws(fn, undefined, `${what} must fail`) as NodeJS.ErrnoException | undefined
  t.is(e?.code, 'EROFS', `${what}: ${e?.message ?? 'no error'}`)
}

/**
 * A prepared isolating box with a host file and a tmpfs submount in mounts/.
 * With sharedPropagation, the home sits on a shared mount, as on systemd
 * hosts (where / is shared), so mounts propagate between peers.
 */
function populatedBox (t: import('ava').ExecutionContext, sharedPropagation = false): BoxLayout {
  const root = scratch(t)
  if (sharedPropagation) {
    mountTmpfs(t, path.join(root, 'base'), 'size=64m')
    execFileSync('mount', ['--make-shared', path.join(root, 'base')])
  }
  const home = freshHome(t, sharedPropagation ? path.join(root, 'base') : root)
  const box = freshBox(t, home)
  box.prepareSync()
  fs.writeFileSync(path.join(box.mountsDir, 'host-file'), 'host')
  mountTmpfs(t, path.join(box.mountsDir, 'sub'), 'size=4m')
  fs.writeFileSync(path.join(box.mountsDir, 'sub', 'inner'), 'inner')
  return box
}

function assertReadOnlyView (t: import('ava').ExecutionContext, box: BoxLayout): void {
  const s = box.sharedDir
  expectEROFS(t, 'create', () => fs.writeFileSync(path.join(s, 'new'), 'x'))
  expectEROFS(t, 'mkdir', () => fs.mkdirSync(path.join(s, 'dir')))
  expectEROFS(t, 'unlink', () => fs.unlinkSync(path.join(s, 'host-file')))
  expectEROFS(t, 'rename', () => fs.renameSync(path.join(s, 'host-file'), path.join(s, 'moved')))
  expectEROFS(t, 'chmod', () => fs.chmodSync(path.join(s, 'host-file'), 0o777))
  expectEROFS(t, 'truncate', () => fs.truncateSync(path.join(s, 'host-file')))
  expectEROFS(t, 'write in submount', () => fs.writeFileSync(path.join(s, 'sub', 'new'), 'x'))
  expectEROFS(t, 'unlink in submount', () => fs.unlinkSync(path.join(s, 'sub', 'inner')))
  // The host still writes through mounts/, and the guest view follows.
  fs.writeFileSync(path.join(box.mountsDir, 'later'), 'later')
  fs.writeFileSync(path.join(box.mountsDir, 'sub', 'later'), 'later')
  t.is(fs.readFileSync(path.join(s, 'later'), 'utf8'), 'later')
  t.is(fs.readFileSync(path.join(s, 'sub', 'later'), 'utf8'), 'later')
  t.is(fs.readFileSync(path.join(s, 'host-file'), 'utf8'), 'host')
}

privileged('mountShared: shared/ becomes a read-only mount of mounts/, submounts included', async (t) => {
  const box = populatedBox(t)
  const r = await box.mountShared()
  t.is(r.method, 'bind-ro')
  t.true(r.readOnly)
  t.false(r.reused)
  t.is(r.source, box.mountsDir)
  t.is(r.target, box.sharedDir)
  const entry = mountAt(box.sharedDir)
  t.truthy(entry, 'shared/ is a mount point')
  t.is(entry!.root, fs.realpathSync(box.mountsDir), 'of mounts/')
  t.regex(entry!.options, /^ro[,$]/)
  t.deepEqual(await box.sharedState(), { kind: 'mount', readOnly: true, showsMounts: true, writableSubmounts: [] })
  assertReadOnlyView(t, box)
})

privileged('mountShared is idempotent: the mount is reused, never stacked', (t) => {
  const box = populatedBox(t)
  box.mountSharedSync()
  const r = box.mountSharedSync()
  t.true(r.reused)
  t.true(r.readOnly)
  t.is(mountsBelow(box.sharedDir).filter((m) => m === fs.realpathSync(box.sharedDir)).length, 1)
})

privileged('a submount added to mounts/ later reaches shared/ and is re-sealed read-only by mountShared', (t) => {
  const box = populatedBox(t, true)
  box.mountSharedSync()
  mountTmpfs(t, path.join(box.mountsDir, 'late'), 'size=4m')
  fs.writeFileSync(path.join(box.mountsDir, 'late', 'marker'), 'm')
  t.is(fs.readFileSync(path.join(box.sharedDir, 'late', 'marker'), 'utf8'), 'm', 'propagated (slave of mounts/)')
  const before = box.sharedStateSync()
  t.false(before.readOnly, 'a writable submount is reported, not hidden')
  t.deepEqual(before.writableSubmounts, [fs.realpathSync(path.join(box.sharedDir, 'late'))])
  box.mountSharedSync()
  t.deepEqual(box.sharedStateSync().writableSubmounts, [])
  expectEROFS(t, 'write in late submount', () => fs.writeFileSync(path.join(box.sharedDir, 'late', 'x'), 'x'))
  fs.writeFileSync(path.join(box.mountsDir, 'late', 'host'), 'h')
  t.is(fs.readFileSync(path.join(box.sharedDir, 'late', 'host'), 'utf8'), 'h')
})

privileged('on a shared parent the mount is a pure slave: mounts under shared/ do not leak into mounts/', (t) => {
  const box = populatedBox(t, true)
  box.mountSharedSync()
  const { propagation } = mountAt(box.sharedDir)!
  t.regex(propagation, /\bmaster:\d+/, 'a slave of mounts/')
  t.notRegex(propagation, /\bshared:\d+/, 'not a peer of anything')
  fs.mkdirSync(path.join(box.mountsDir, 'probe'))
  mountTmpfs(t, path.join(box.sharedDir, 'probe'), 'size=1m')
  fs.writeFileSync(path.join(box.sharedDir, 'probe', 'x'), 'x')
  t.false(fs.existsSync(path.join(box.mountsDir, 'probe', 'x')), 'no propagation back into mounts/')
})

privileged('legacy API (forced): same guarantees', async (t) => {
  const box = populatedBox(t)
  const r = await box.mountShared({ api: 'legacy' })
  t.is(r.method, 'bind-ro-legacy')
  t.true(r.readOnly)
  t.is(mountAt(box.sharedDir)!.root, fs.realpathSync(box.mountsDir))
  assertReadOnlyView(t, box)
  t.true(box.mountSharedSync({ api: 'legacy' }).reused)
})

// Serial: it sets process.env, which every concurrent mountShared() reads.
privilegedSerial('legacy API forced through BOXLITE_LAYOUT_MOUNT_API', (t) => {
  const box = populatedBox(t)
  const before = process.env.BOXLITE_LAYOUT_MOUNT_API
  process.env.BOXLITE_LAYOUT_MOUNT_API = 'legacy'
  t.teardown(() => {
    if (before === undefined) delete process.env.BOXLITE_LAYOUT_MOUNT_API
    else process.env.BOXLITE_LAYOUT_MOUNT_API = before
  })
  t.is(box.mountSharedSync().method, 'bind-ro-legacy')
  process.env.BOXLITE_LAYOUT_MOUNT_API = 'bogus'
  t.throws(() => box.mountSharedSync(), { code: 'ERR_INVALID_ARG', message: /BOXLITE_LAYOUT_MOUNT_API/ })
})

for (const api of ['auto', 'legacy'] as const) {
  testWith([needs.linux, needs.mount, needs.tool('unshare', 'util-linux')],
    `inside unshare -Urm on a nosuid,nodev tmpfs (locked flags): ${api} API works`, async (t) => {
      const root = scratch(t)
      // Mounted out here, so inside the user namespace its flags are locked.
      const base = mountTmpfs(t, path.join(root, 'locked'), 'nosuid,nodev,size=32m')
      const spec = { home: path.join(base, 'home'), boxId: mintBoxId(), api, ops: ['prepareHome', 'prepare', 'mountShared', 'writeChecks'] }
      fs.mkdirSync(spec.home)
      fs.mkdirSync(path.join(spec.home, 'boxes', spec.boxId, 'mounts', 'sub'), { recursive: true })
      fs.writeFileSync(path.join(spec.home, 'boxes', spec.boxId, 'mounts', 'host-file'), 'host')
      t.teardown(() => fs.rmSync(`/tmp/bl-0/${spec.boxId}`, { force: true }))
      const { steps, stderr } = await runBoxOps(spec, 'userns')
      const mounted = steps.find((s) => s.op === 'mountShared')
      t.truthy(mounted, stderr)
      t.true(mounted!.ok, mounted!.message)
      t.is(mounted!.result.method, api === 'legacy' ? 'bind-ro-legacy' : 'bind-ro')
      const checks = steps.find((s) => s.op === 'writeChecks')!.result
      for (const k of ['create', 'mkdir', 'unlink', 'rename', 'chmod']) t.is(checks[k], 'EROFS', k)
      t.is(checks.hostWrite, 'ok')
      t.is(checks.guestSeesHost, 'ok')
      // The namespace died with the child: nothing of it is mounted here.
      t.deepEqual(mountsBelow(base), [fs.realpathSync(base)])
    })
}

testWith([needs.linux, needs.root, needs.tool('setpriv', 'util-linux')],
  'unprivileged: symlink fallback is reported; require read-only fails with EPERM', async (t) => {
    const pkg = packageForNobody(t)
    const root = scratch(t)
    const home = path.join(root, 'home')
    fs.chmodSync(root, 0o755)
    fs.mkdirSync(home)
    fs.chownSync(home, NOBODY, NOBODY)
    const boxId = mintBoxId()
    t.teardown(() => fs.rmSync(`/tmp/bl-${NOBODY}/${boxId}`, { force: true }))
    const cli = (...args: string[]) => run(asNobody[0]!, [...asNobody.slice(1), process.execPath, path.join(pkg, 'dist', 'cli.cjs'),
      ...args, '--home', home, '--json'], { cwd: '/' })
    const strict = await cli('box', 'prepare', boxId, '--isolate-mounts', '--require-read-only')
    t.is(strict.code, 1, strict.stderr)
    const refused = JSON.parse(strict.stdout).boxes[0].error
    t.is(refused.code, 'EPERM')
    t.is(refused.reason, 'read-only-impossible')
    t.regex(refused.message, /require: 'read-only'/)
    t.false(fs.existsSync(path.join(home, 'boxes', boxId, 'shared')), 'no symlink left behind by the refusal')

    const lax = await cli('box', 'prepare', boxId, '--isolate-mounts')
    t.is(lax.code, 0, lax.stderr)
    const shared = JSON.parse(lax.stdout).boxes[0].shared
    t.is(shared.method, 'symlink')
    t.false(shared.readOnly)
    t.is(shared.error.code, 'EPERM')
    t.is(fs.readlinkSync(path.join(home, 'boxes', boxId, 'shared')), 'mounts')
    const cleaned = await cli('box', 'cleanup', boxId)
    t.is(cleaned.code, 0, cleaned.stderr)
    t.true(JSON.parse(cleaned.stdout).boxes[0].removed)
  })

test('mountShared on a box that does not isolate mounts is EINVAL', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home, { isolateMounts: false })
  box.prepareSync()
  const e = t.throws(() => box.mountSharedSync(), { instanceOf: LayoutError })
  t.is(e.code, 'EINVAL')
  t.regex(e.message, /isolateMounts: true/)
})

test('mountShared before prepare is ENOENT and creates nothing', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  const e = t.throws(() => box.mountSharedSync(), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.false(fs.existsSync(box.root))
})

test('mountShared refuses a shared/ that holds files', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  fs.mkdirSync(box.sharedDir)
  fs.writeFileSync(path.join(box.sharedDir, 'precious'), 'p')
  const e = t.throws(() => box.mountSharedSync(), { instanceOf: LayoutError })
  t.is(e.code, 'ENOTEMPTY')
  t.is(fs.readFileSync(path.join(box.sharedDir, 'precious'), 'utf8'), 'p')
})

test('mountShared refuses a foreign symlink at shared/', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  fs.symlinkSync('/etc', box.sharedDir)
  t.is(t.throws(() => box.mountSharedSync(), { instanceOf: LayoutError, code: 'EEXIST', message: /does not point at mounts/ }).reason, 'shared-occupied')
  t.is(fs.readlinkSync(box.sharedDir), '/etc')
})

privileged('mountShared reports a foreign mount at shared/ instead of reusing it', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  mountTmpfs(t, box.sharedDir, 'size=1m')
  const e = t.throws(() => box.mountSharedSync(), { instanceOf: LayoutError })
  t.is(e.code, 'EBUSY')
  t.is(e.reason, 'shared-wrong-mount')
  t.regex(e.message, /already a mount, but not of mounts\//)
})

privileged('mountShared upgrades a symlink left by an unprivileged run', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  fs.symlinkSync('mounts', box.sharedDir)
  t.is(box.sharedStateSync().kind, 'symlink')
  const r = box.mountSharedSync()
  t.is(r.method, 'bind-ro')
  t.is(box.sharedStateSync().kind, 'mount')
})

privileged('unmountShared detaches; twice is fine', async (t) => {
  const box = populatedBox(t)
  await box.mountShared()
  t.is(await box.unmountShared(), 'unmounted')
  t.is(mountAt(box.sharedDir), undefined)
  t.is(box.unmountSharedSync(), 'none')
  t.is(box.sharedStateSync().kind, 'directory')
})

test('mountShared validates its options', (t) => {
  const home = new HomeLayout({ home: '/nonexistent-home' })
  const box = home.box('b1', { isolateMounts: true })
  t.throws(() => box.mountSharedSync({ require: 'maybe' as 'any' }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => box.mountSharedSync({ api: 'new' as 'auto' }), { code: 'ERR_INVALID_ARG' })
})

privileged('submount flags stay as they were (nosuid/nodev re-stated, not dropped)', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  mountTmpfs(t, path.join(box.mountsDir, 'locked'), 'nosuid,nodev,noexec,size=1m')
  box.mountSharedSync({ api: 'legacy' })
  const opts = mountAt(path.join(box.sharedDir, 'locked'))!.options.split(',')
  for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) t.true(opts.includes(o), `${o} in ${opts.join(',')}`)
  execFileSync('true')
})

test('where a platform has no bind mounts (macOS; forced here), shared/ is the reported symlink, or ENOTSUP when read-only is required', async (t) => {
  const home = path.join(scratch(t), 'home')
  const id = mintBoxId()
  t.teardown(() => fs.rmSync(`/tmp/bl-${process.getuid!()}/${id}`, { force: true }))
  const cli = (...args: string[]) => run(process.execPath, [path.join(repoRoot, 'dist', 'cli.cjs'), ...args, '--home', home, '--json'],
    { cwd: repoRoot, env: { ...process.env, BOXLITE_LAYOUT_NO_MOUNTS: '1' } })
  const strict = await cli('box', 'prepare', id, '--isolate-mounts', '--require-read-only')
  t.is(strict.code, 1, strict.stderr)
  const error = JSON.parse(strict.stdout).boxes[0].error
  t.is(error.code, 'ENOTSUP')
  t.is(error.reason, 'read-only-impossible')
  const lax = await cli('box', 'prepare', id, '--isolate-mounts')
  t.is(lax.code, 0, lax.stderr)
  const shared = JSON.parse(lax.stdout).boxes[0].shared
  t.like(shared, { method: 'symlink', readOnly: false, error: { code: 'ENOTSUP' } })
  t.is(fs.readlinkSync(path.join(home, 'boxes', id, 'shared')), 'mounts')
  t.is((await cli('box', 'cleanup', id)).code, 0)
})

// macOS 15.2+ refuses unmount(MNT_NOFOLLOW) with ELOOP at any symlink, and
// every isolating box there has `shared -> mounts`: whether anything is
// mounted is decided by looking first (portable code), so the fallback box
// is unmounted and cleaned up without a single unmount call. Watched with
// strace in a child running the built library, macOS's mode forced.
testWith([needs.linux, needs.tool('strace', 'strace')],
  'where there are no mounts (macOS; forced here), unmountShared and cleanup of the symlink fallback never call unmount', async (t) => {
    const root = scratch(t)
    const id = mintBoxId()
    t.teardown(() => fs.rmSync(`/tmp/bl-${process.getuid!()}/${id}`, { force: true }))
    const trace = path.join(root, 'trace')
    const script = `
      const { HomeLayout } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))})
      const box = new HomeLayout({ home: process.argv[1] }).box(process.argv[2], { isolateMounts: true })
      const steps = []
      await box.prepare()
      steps.push((await box.mountShared()).method)
      steps.push(await box.unmountShared())
      steps.push(box.mountSharedSync().method)
      steps.push((await box.cleanup()).removed)
      console.log(JSON.stringify(steps))`
    const r = await run('strace', ['-f', '-qq', '-e', 'trace=umount2', '-o', trace,
      process.execPath, '--input-type=module', '-e', script, path.join(root, 'home'), id],
    { cwd: repoRoot, env: { ...process.env, BOXLITE_LAYOUT_NO_MOUNTS: '1' } })
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), ['symlink', 'unlinked', 'symlink', true])
    t.false(fs.existsSync(path.join(root, 'home', 'boxes', id)), 'the box is gone')
    t.deepEqual(fs.readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('umount2')), [])
  })

// The other side: an unmount that fails ELOOP (what macOS 15.2 answers at a
// symlink, injected here into a real mount's umount2) is not read as "not
// mounted" while the mount is still there: unmountShared and cleanup fail
// with it, and nothing below the mount is deleted.
testWith([needs.linux, needs.mount, needs.tool('strace', 'strace')],
  'an unmount refused with ELOOP while the mount is still there fails unmountShared and cleanup; nothing below it is deleted', async (t) => {
    const box = populatedBox(t)
    box.mountSharedSync()
    t.teardown(() => { if (mountAt(box.sharedDir) !== undefined) execFileSync('umount', ['-l', box.sharedDir]) })
    const script = `
      const { BoxLayout } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))})
      const box = new BoxLayout(process.argv[1], { isolateMounts: true })
      const errors = []
      for (const op of [() => box.unmountSharedSync(), () => box.unmountShared(), () => box.cleanupSync()]) {
        try { await op(); errors.push('succeeded') } catch (e) { errors.push(e.code + '/' + e.syscall) }
      }
      console.log(JSON.stringify(errors))`
    const r = await run('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=umount2', '-e', 'inject=umount2:error=ELOOP',
      process.execPath, '--input-type=module', '-e', script, box.root], { cwd: repoRoot })
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout), ['ELOOP/umount2', 'ELOOP/umount2', 'ELOOP/umount2'])
    t.not(mountAt(box.sharedDir), undefined, 'still mounted')
    t.true(fs.existsSync(path.join(box.mountsDir, 'host-file')), 'nothing below the mount was deleted')
    t.is(box.unmountSharedSync(), 'unmounted')
    t.true(box.cleanupSync().removed)
  })
