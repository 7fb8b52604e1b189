// Single-file volumes on real XFS and ext4 loop homes: a read-write volume
// is the source itself (a hard link: the guest's writes land in it, and it
// cannot cross filesystems), a read-only one a snapshot (a copy, reflinked
// on XFS); re-staging replaces the entry; only a regular file is staged;
// under isolateMounts the entry is written through mounts/ and seen at the
// read-only shared/.
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { LayoutError, type BoxLayout, type LayoutErrorCode, type LayoutErrorReason } from '../lib/index.ts'
import { freshBox, freshHome } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { mountLoopFs, scratch, type LoopFsType } from './helpers/fixtures.ts'

const loopFs = (type: LoopFsType) => [needs.linux, needs.mount, needs.tool(`mkfs.${type}`, type === 'xfs' ? 'xfsprogs' : 'e2fsprogs')]

/** A prepared box (not isolating) in a home on a fresh loop filesystem, and that filesystem. */
async function loopBox (t: ExecutionContext, type: LoopFsType, isolateMounts = false): Promise<{ box: BoxLayout, fsRoot: string }> {
  const fsRoot = mountLoopFs(t, path.join(scratch(t), type), type, 300)
  const box = freshBox(t, freshHome(t, fsRoot), { isolateMounts })
  await box.prepare()
  return { box, fsRoot }
}

const tmpLeft = (dir: string) => fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.staging-tmp')) : []

for (const type of ['xfs', 'ext4'] as const) {
  testWith(loopFs(type), `${type}: read-write is a hard link of the source; writes through the share land in it; re-staging keeps it`, async (t) => {
    const { box, fsRoot } = await loopBox(t, type)
    const src = path.join(fsRoot, 'data.db')
    fs.writeFileSync(src, 'v1')
    const r = await box.stageVolumeFile(src, { index: 2 })
    const shareDir = path.join(box.sharedDir, 'user-volumes', 'uservol2')
    t.deepEqual(r, { tag: 'uservol2', shareDir, name: 'data.db', path: path.join(shareDir, 'data.db'), method: 'hardlink', bytes: 2 })
    t.is(fs.statSync(r.path).ino, fs.statSync(src).ino)
    fs.appendFileSync(r.path, '+guest')
    t.is(fs.readFileSync(src, 'utf8'), 'v1+guest', 'a write to the staged entry is a write to the source')
    t.like(box.stageVolumeFileSync(src, { index: 2 }), { method: 'hardlink' })
    t.is(fs.statSync(src).nlink, 2, 'staging again adds no link')
    t.deepEqual(tmpLeft(r.shareDir), [])
  })

  testWith(loopFs(type), `${type}: read-only is a snapshot with the source's mode; re-staging takes a new one`, async (t) => {
    const { box, fsRoot } = await loopBox(t, type)
    const src = path.join(fsRoot, 'config.toml')
    fs.writeFileSync(src, 'snapshot one')
    fs.chmodSync(src, 0o640)
    const r = await box.stageVolumeFile(src, { index: 0, readOnly: true })
    t.is(r.method, type === 'xfs' ? 'reflink' : r.method)
    t.not(r.method, 'hardlink')
    if (type === 'ext4') t.not(r.method, 'reflink')
    t.not(fs.statSync(r.path).ino, fs.statSync(src).ino)
    t.is(fs.statSync(r.path).mode & 0o7777, 0o640)
    fs.writeFileSync(src, 'changed later')
    t.is(fs.readFileSync(r.path, 'utf8'), 'snapshot one', 'later writes to the source are not seen')
    await box.stageVolumeFile(src, { index: 0, readOnly: true })
    t.is(fs.readFileSync(r.path, 'utf8'), 'changed later', 're-staging replaces the entry')
    // From read-only to read-write: the entry becomes the source itself.
    await box.stageVolumeFile(src, { index: 0 })
    t.is(fs.statSync(r.path).ino, fs.statSync(src).ino)
    t.deepEqual(tmpLeft(r.shareDir), [])
  })
}

testWith(loopFs('ext4'), 'read-write across filesystems is EXDEV with the hint; nothing is left; read-only crosses fine', async (t) => {
  const { box } = await loopBox(t, 'ext4')
  const src = path.join(scratch(t), 'elsewhere.bin') // /tmp: not the loop filesystem
  fs.writeFileSync(src, 'far away')
  const e = await t.throwsAsync(box.stageVolumeFile(src, { index: 1 }), { instanceOf: LayoutError })
  t.is(e.code, 'EXDEV')
  t.is(e.syscall, 'link')
  t.is(e.path, src)
  t.regex(e.message, /mount the parent directory as a volume instead, or move the file onto the home's filesystem/)
  const dir = path.join(box.sharedDir, 'user-volumes', 'uservol1')
  t.deepEqual(fs.readdirSync(dir), [], 'no entry, no temp')
  const r = await box.stageVolumeFile(src, { index: 1, readOnly: true })
  t.is(fs.readFileSync(r.path, 'utf8'), 'far away')
})

testWith(loopFs('xfs'), 'a temp left by an interrupted staging is replaced, not tripped over; a different source replaces the entry', async (t) => {
  const { box, fsRoot } = await loopBox(t, 'xfs')
  const dir = path.join(box.sharedDir, 'user-volumes', 'uservol0')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'f.staging-tmp'), 'half written')
  fs.writeFileSync(path.join(dir, 'f'), 'an older staging')
  const src = path.join(fsRoot, 'a', 'f')
  fs.mkdirSync(path.dirname(src))
  fs.writeFileSync(src, 'new')
  await box.stageVolumeFile(src, { index: 0 })
  t.deepEqual(fs.readdirSync(dir), ['f'])
  t.is(fs.statSync(path.join(dir, 'f')).ino, fs.statSync(src).ino)
})

testWith(loopFs('xfs'), 'only a regular file is staged: a FIFO, a directory, a device and a symlink are refused, and nothing is made', async (t) => {
  const { box, fsRoot } = await loopBox(t, 'xfs')
  const fifo = path.join(fsRoot, 'pipe')
  execFileSync('mkfifo', [fifo])
  const dir = path.join(fsRoot, 'dir')
  fs.mkdirSync(dir)
  const target = path.join(fsRoot, 'real')
  fs.writeFileSync(target, 'x')
  const link = path.join(fsRoot, 'link')
  fs.symlinkSync(target, link)
  const cases: Array<[string, LayoutErrorCode, LayoutErrorReason]> = [
    [fifo, 'EINVAL', 'not-a-regular-file'], [dir, 'EISDIR', 'not-a-regular-file'],
    ['/dev/null', 'EINVAL', 'not-a-regular-file'], [link, 'ELOOP', 'symlink'],
  ]
  for (const [src, code, reason] of cases) {
    for (const readOnly of [false, true]) {
      const e = await t.throwsAsync(box.stageVolumeFile(src, { index: 0, readOnly }), { instanceOf: LayoutError }, src)
      t.is(e.code, code, src)
      t.is(e.reason, reason, src)
      t.is(e.path, src)
    }
  }
  t.false(fs.existsSync(path.join(box.sharedDir, 'user-volumes')), 'a refused source leaves nothing behind')
})

testWith([...loopFs('xfs'), needs.root], 'isolateMounts: staged through mounts/, seen at the read-only shared/, where staging directly fails', async (t) => {
  const { box, fsRoot } = await loopBox(t, 'xfs', true)
  await box.mountShared({ require: 'read-only' })
  const src = path.join(fsRoot, 'state.json')
  fs.writeFileSync(src, '{}')
  // What staging into shared/ (as BoxLite does) meets under isolation.
  t.throws(() => fs.mkdirSync(path.join(box.sharedDir, 'user-volumes')), { code: 'EROFS' })
  const rw = await box.stageVolumeFile(src, { index: 0 })
  const ro = await box.stageVolumeFile(src, { index: 1, readOnly: true })
  t.is(rw.path, path.join(box.sharedDir, 'user-volumes', 'uservol0', 'state.json'))
  t.is(fs.statSync(path.join(box.mountsDir, 'user-volumes', 'uservol0', 'state.json')).ino, fs.statSync(src).ino)
  fs.writeFileSync(src, '{"a":1}')
  t.is(fs.readFileSync(rw.path, 'utf8'), '{"a":1}', 'the guest view (shared/) shows the source')
  t.is(fs.readFileSync(ro.path, 'utf8'), '{}', 'and the snapshot')
  t.throws(() => fs.writeFileSync(ro.path, 'x'), { code: 'EROFS' })
  // The read-only view holds for the read-write volume too (docs/design.md#single-file-volumes).
  t.throws(() => fs.appendFileSync(rw.path, 'x'), { code: 'EROFS' })
  await box.unmountShared()
})

test('bad arguments are ERR_INVALID_ARG before anything touches the disk', async (t) => {
  const root = scratch(t)
  const box = freshHome(t, root).box('never-made')
  const bad: Array<[unknown, unknown]> = [
    ['relative/file', { index: 0 }], [42, { index: 0 }], ['/a/b\0c', { index: 0 }], ['/a/dir/', { index: 0 }], ['/', { index: 0 }],
    ['/a/..', { index: 0 }], ['/a/f', undefined], ['/a/f', { index: -1 }], ['/a/f', { index: 1.5 }], ['/a/f', { index: 2 ** 32 }],
    ['/a/f', { index: '0' }], ['/a/f', { index: 0, readOnly: 'yes' }],
  ]
  for (const [src, options] of bad) {
    const e = await t.throwsAsync(box.stageVolumeFile(src as string, options as { index: number }), { instanceOf: LayoutError })
    t.is(e.code, 'ERR_INVALID_ARG', JSON.stringify([src, options]))
    t.throws(() => box.stageVolumeFileSync(src as string, options as { index: number }), { code: 'ERR_INVALID_ARG' })
  }
  t.false(fs.existsSync(box.root))
})
