// Shim copies (docs/design.md, "Shim copies"): reflink/clonefile copies, fallbacks, atomic install.
// Real XFS (reflink=1) and ext4 on loop devices, tmpfs for cross-device.
import test, { type ExecutionContext } from 'ava'
import { execFileSync, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { cloneFile, cloneFileSync, LayoutError, sharesExtentsSync, type BoxLayout } from '../lib/index.ts'
import { freshBox, freshHome } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { mountLoopFs, mountTmpfs, payload, repoRoot, run, scratch, testTmp, tsNode, writeShimSet } from './helpers/fixtures.ts'
import { asNobody, NOBODY, packageForNobody } from './helpers/other-user.ts'

const withXfs = [needs.linux, needs.mount, needs.tool('mkfs.xfs', 'xfsprogs'), needs.tool('filefrag', 'e2fsprogs')]
const withExt4 = [needs.linux, needs.mount, needs.tool('mkfs.ext4', 'e2fsprogs')]

/** A shim set (2 MiB libkrunfw.so.5) with a versioned libkrunfw beside it, and two files installShim must not copy. */
function writeFullShimSet (dir: string, shimBytes = 8 << 20): string {
  const shim = writeShimSet(dir, { shimBytes, libBytes: 2 << 20 })
  fs.writeFileSync(path.join(dir, 'libkrunfw.so.5.1.0'), payload(1 << 20, 3), { mode: 0o644 })
  fs.writeFileSync(path.join(dir, 'libkrun.so'), payload(4096, 4)) // not libkrunfw.*: not copied
  fs.writeFileSync(path.join(dir, 'README'), 'not copied')
  return shim
}

function sharedExtents (file: string): boolean {
  return /shared/.test(execFileSync('filefrag', ['-v', file], { encoding: 'utf8' }))
}

function sha (file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

function tempLeftovers (dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('.blx-'))
}

testWith(withXfs, 'on XFS (reflink=1): installShim reflinks, extents shared, mode kept, new inode', async (t) => {
  const xfs = mountLoopFs(t, path.join(scratch(t), 'xfs'), 'xfs')
  const shim = writeFullShimSet(path.join(xfs, 'dist'))
  const home = freshHome(t, xfs)
  const box = freshBox(t, home)
  await box.prepare()
  const r = await box.installShim(shim)
  t.deepEqual(r.files.map((f) => [f.name, f.method]), [
    ['boxlite-shim', 'reflink'], ['libkrunfw.so.5', 'reflink'], ['libkrunfw.so.5.1.0', 'reflink'],
  ])
  t.deepEqual(fs.readdirSync(box.binDir).sort(), ['boxlite-shim', 'libkrunfw.so.5', 'libkrunfw.so.5.1.0'])
  for (const f of r.files) {
    const src = path.join(xfs, 'dist', f.name)
    const dst = path.join(box.binDir, f.name)
    t.is(f.bytes, fs.statSync(src).size)
    t.is(sha(dst), sha(src), `${f.name} content`)
    t.true(sharedExtents(dst), `${f.name} shares extents (filefrag -v)`)
    t.true(sharesExtentsSync(dst), `${f.name} shares extents (our FIEMAP read agrees)`)
    t.not(fs.statSync(dst).ino, fs.statSync(src).ino, 'a new inode, never a hard link')
    t.is(fs.statSync(dst).nlink, 1)
    t.is(fs.statSync(dst).mode & 0o7777, fs.statSync(src).mode & 0o7777)
  }
  t.is(fs.statSync(path.join(box.binDir, 'boxlite-shim')).mode & 0o777, 0o755, 'the shim stays executable')
  box.cleanupSync()
})

testWith(withXfs, 'on XFS: force reflinks; never makes a real copy (no shared extents)', async (t) => {
  const xfs = mountLoopFs(t, path.join(scratch(t), 'xfs'), 'xfs')
  fs.writeFileSync(path.join(xfs, 'src'), payload(4 << 20, 9))
  const forced = await cloneFile(path.join(xfs, 'src'), path.join(xfs, 'forced'), { mode: 'force' })
  t.is(forced.method, 'reflink')
  t.true(sharedExtents(path.join(xfs, 'forced')))
  const copied = cloneFileSync(path.join(xfs, 'src'), path.join(xfs, 'copied'), { mode: 'never' })
  t.is(copied.method, 'copy')
  t.false(sharedExtents(path.join(xfs, 'copied')))
  t.false(sharesExtentsSync(path.join(xfs, 'copied')))
  t.is(sha(path.join(xfs, 'copied')), sha(path.join(xfs, 'src')))
})

testWith(withExt4, 'on ext4: auto copies with copy_file_range; force fails ENOTSUP and leaves nothing', async (t) => {
  const ext4 = mountLoopFs(t, path.join(scratch(t), 'ext4'), 'ext4', 128)
  fs.writeFileSync(path.join(ext4, 'src'), payload(3 << 20, 5), { mode: 0o750 })
  fs.chmodSync(path.join(ext4, 'src'), 0o750)
  const auto = await cloneFile(path.join(ext4, 'src'), path.join(ext4, 'auto'))
  t.is(auto.method, 'copy_file_range')
  t.is(sha(path.join(ext4, 'auto')), sha(path.join(ext4, 'src')))
  t.false(sharesExtentsSync(path.join(ext4, 'auto')), 'ext4 copies share nothing')
  t.is(fs.statSync(path.join(ext4, 'auto')).mode & 0o777, 0o750)

  const e = await t.throwsAsync(cloneFile(path.join(ext4, 'src'), path.join(ext4, 'forced'), { mode: 'force' }), { instanceOf: LayoutError })
  t.is(e.code, 'ENOTSUP')
  t.is(e.syscall, 'ioctl')
  t.regex(e.message, /cannot reflink/)
  t.false(fs.existsSync(path.join(ext4, 'forced')))
  t.deepEqual(tempLeftovers(ext4), [])
})

testWith(withXfs, 'tmpfs -> XFS: force fails EXDEV; auto copies', async (t) => {
  const root = scratch(t)
  const xfs = mountLoopFs(t, path.join(root, 'xfs'), 'xfs')
  const tmp = mountTmpfs(t, path.join(root, 'tmpfs'))
  fs.writeFileSync(path.join(tmp, 'src'), payload(1 << 20, 7))
  const e = t.throws(() => cloneFileSync(path.join(tmp, 'src'), path.join(xfs, 'dst'), { mode: 'force' }), { instanceOf: LayoutError })
  t.is(e.code, 'EXDEV')
  t.is(e.dest, path.join(xfs, 'dst'))
  t.false(fs.existsSync(path.join(xfs, 'dst')))
  t.deepEqual(tempLeftovers(xfs), [])
  const auto = cloneFileSync(path.join(tmp, 'src'), path.join(xfs, 'dst'))
  t.true(['copy_file_range', 'copy'].includes(auto.method), auto.method)
  t.is(sha(path.join(xfs, 'dst')), sha(path.join(tmp, 'src')))
})

/** A prepared box in a scratch home, and a shim set of that size beside it. */
async function boxWithShimSet (t: ExecutionContext, shimBytes: number): Promise<{ root: string, box: BoxLayout, shim: string }> {
  const root = scratch(t)
  const shim = writeFullShimSet(path.join(root, 'dist'), shimBytes)
  const box = freshBox(t, freshHome(t, root))
  await box.prepare()
  return { root, box, shim }
}

test('re-install skips unchanged files and replaces a changed one', async (t) => {
  const { root, box, shim } = await boxWithShimSet(t, 1 << 20)
  await box.installShim(shim)
  const again = box.installShimSync(shim)
  t.deepEqual(again.files.map((f) => f.method), ['skipped', 'skipped', 'skipped'])
  const inode = fs.statSync(path.join(box.binDir, 'libkrunfw.so.5')).ino
  fs.writeFileSync(path.join(root, 'dist', 'libkrunfw.so.5'), payload(2 << 20, 99)) // same size, new mtime
  const changed = await box.installShim(shim)
  t.deepEqual(changed.files.map((f) => f.method === 'skipped'), [true, false, true])
  t.not(fs.statSync(path.join(box.binDir, 'libkrunfw.so.5')).ino, inode, 'replaced by rename, not rewritten in place')
  t.is(sha(path.join(box.binDir, 'libkrunfw.so.5')), sha(path.join(root, 'dist', 'libkrunfw.so.5')))
  fs.writeFileSync(path.join(root, 'dist', 'boxlite-shim'), payload(3 << 20, 5), { mode: 0o755 })
  t.is((await box.installShim(shim)).files[0]!.method === 'skipped', false, 'a new size is a change')
})

test('a destination hard-linked to the source is never taken as installed: a new inode replaces it', async (t) => {
  const { box, shim } = await boxWithShimSet(t, 1 << 16)
  fs.mkdirSync(box.binDir)
  fs.linkSync(shim, path.join(box.binDir, 'boxlite-shim'))
  const r = await box.installShim(shim)
  t.not(r.files[0]!.method, 'skipped')
  t.not(fs.statSync(path.join(box.binDir, 'boxlite-shim')).ino, fs.statSync(shim).ino)
  t.is(fs.statSync(shim).nlink, 1, 'the source lost its second name')
  t.is(sha(path.join(box.binDir, 'boxlite-shim')), sha(shim))
})

test('a reader during the replace sees the old or the new file, never a torn one', async (t) => {
  const root = scratch(t)
  const a = path.join(root, 'a')
  const b = path.join(root, 'b')
  fs.writeFileSync(a, payload(24 << 20, 1))
  fs.writeFileSync(b, payload(16 << 20, 2))
  const dst = path.join(root, 'dst')
  cloneFileSync(a, dst)
  // Counted, not timed: install until the reader has read at least 20
  // times while we were replacing the file at least 20 times.
  const stop = path.join(root, 'stop')
  const reader = spawn(process.execPath, tsNode('test/fixtures/reader.ts', dst, stop, sha(a), sha(b)), { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  reader.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<void>((resolve) => reader.once('close', () => resolve()))
  t.teardown(() => { reader.kill('SIGKILL') })
  const readsSoFar = () => out.split('\n')[0]!.length
  let installs = 0
  while (installs < 20 || readsSoFar() < 20) {
    await cloneFile(installs % 2 === 0 ? b : a, dst, { mode: 'never' })
    installs++
  }
  fs.writeFileSync(stop, '')
  await exited
  const stats = JSON.parse(out.split('\n')[1]!) as { reads: number, torn: number, missing: number }
  t.true(stats.reads >= 20, `reads: ${stats.reads}`)
  t.is(stats.torn, 0)
  t.is(stats.missing, 0, 'never a moment without a file')
  t.deepEqual(tempLeftovers(root), [])
})

function expectNothingInstalled (t: ExecutionContext, binDir: string): void {
  t.true(!fs.existsSync(binDir) || fs.readdirSync(binDir).length === 0, `bin/ holds ${fs.existsSync(binDir) ? fs.readdirSync(binDir).join(',') : ''}`)
}

test('a missing shim: ENOENT naming it, nothing created', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  const missing = path.join(home.home, 'nope', 'boxlite-shim')
  const e = await t.throwsAsync(box.installShim(missing), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
  t.is(e.path, missing)
  t.false(fs.existsSync(box.binDir))
})

test('a directory passed as the shim: EISDIR, nothing created', (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  box.prepareSync()
  const e = t.throws(() => box.installShimSync(home.home), { instanceOf: LayoutError })
  t.is(e.code, 'EISDIR')
  t.is(e.reason, 'not-a-regular-file')
  t.regex(e.message, /is not a regular file/)
  t.false(fs.existsSync(box.binDir))
})

testWith([needs.linux, needs.mount], 'a read-only destination: EROFS, nothing half-written', async (t) => {
  const root = scratch(t)
  const shim = writeFullShimSet(path.join(root, 'dist'), 1 << 20)
  const home = freshHome(t, root)
  const box = freshBox(t, home)
  await box.prepare()
  fs.mkdirSync(box.binDir)
  mountTmpfs(t, box.binDir, 'ro,size=1m')
  const e = await t.throwsAsync(box.installShim(shim), { instanceOf: LayoutError })
  t.is(e.code, 'EROFS')
  t.is(e.syscall, 'open')
  expectNothingInstalled(t, box.binDir)
})

test('cloneFile validates its input', async (t) => {
  await t.throwsAsync(cloneFile('', '/tmp/x'), { code: 'ERR_INVALID_ARG' })
  t.throws(() => cloneFileSync('/etc/hostname', '/tmp/x', { mode: 'sometimes' as 'auto' }), { code: 'ERR_INVALID_ARG' })
  const dir = scratch(t)
  fs.mkdirSync(path.join(dir, 'taken'))
  fs.writeFileSync(path.join(dir, 'src'), 'x')
  t.throws(() => cloneFileSync(path.join(dir, 'src'), path.join(dir, 'taken')), { code: 'EISDIR' })
  t.is(t.throws(() => cloneFileSync('/dev/null', path.join(dir, 'null')), { instanceOf: LayoutError, code: 'EINVAL', message: /not a regular file/ }).reason, 'not-a-regular-file')
  t.deepEqual(tempLeftovers(dir), [])
})

// macOS's clonefile makes the copy by name with the source's mode already on
// it; BOXLITE_LAYOUT_CLONE=clonefile makes Linux's auto mode do the same and
// then take the darwin path (adopt_clone_at). A non-root user installing a
// 0555 shim or a 0444 library must get exact copies: the copy was once
// reopened for writing (EACCES), and a mode without owner read still falls
// back to a plain copy.
testWith([needs.linux, needs.root, needs.tool('setpriv', 'util-linux')],
  'a non-root user copies 0555/0444/0004 sources where the copy is made carrying their mode, as clonefile does', async (t) => {
    const pkg = packageForNobody(t)
    const dir = fs.mkdtempSync(path.join(testTmp, 'blx-clone-mode-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    fs.chmodSync(dir, 0o755)
    const out = path.join(dir, 'out')
    fs.mkdirSync(out)
    fs.chownSync(out, NOBODY, NOBODY)
    const sources = { shim: 0o555, 'libkrunfw.so.5': 0o444, 'others-only': 0o004 }
    for (const [name, mode] of Object.entries(sources)) {
      fs.writeFileSync(path.join(dir, name), payload(200_000, mode))
      fs.chmodSync(path.join(dir, name), mode)
    }
    const script = `
      const { cloneFileSync } = await import(${JSON.stringify(path.join(pkg, 'dist', 'index.js'))})
      const [dir, out, ...names] = process.argv.slice(1)
      const results = {}
      for (const name of names) {
        try {
          results[name] = cloneFileSync(dir + '/' + name, out + '/' + name).method
        } catch (e) {
          results[name] = e.code + ' ' + e.message
        }
      }
      console.log(JSON.stringify(results))`
    // By name, the 0004 copy (no owner read) is refused to its owner and
    // redone as a plain copy (copy_file_range here).
    const expected = {
      clonefile: { shim: 'copy', 'libkrunfw.so.5': 'copy', 'others-only': 'copy_file_range' },
      '': { shim: 'copy_file_range', 'libkrunfw.so.5': 'copy_file_range', 'others-only': 'copy_file_range' },
    }
    for (const knob of ['clonefile', ''] as const) {
      const r = await run(asNobody[0]!, [...asNobody.slice(1), process.execPath, '--input-type=module', '-e', script, dir, out, ...Object.keys(sources)],
        { env: { ...process.env, BOXLITE_LAYOUT_CLONE: knob } })
      t.is(r.code, 0, r.stderr)
      t.deepEqual(JSON.parse(r.stdout), expected[knob], `BOXLITE_LAYOUT_CLONE=${knob}`)
      for (const [name, mode] of Object.entries(sources)) {
        const st = fs.statSync(path.join(out, name))
        t.is(st.mode & 0o7777, mode, `${name} keeps its mode`)
        t.is(st.uid, NOBODY)
        t.true(fs.readFileSync(path.join(out, name)).equals(payload(200_000, mode)), `${name} is an exact copy`)
      }
      t.deepEqual(fs.readdirSync(out).filter((n) => n.includes('.blx-')), [], 'no temporary left')
    }
  })
