// home.diskUsage() and `boxlite-layout df` on real filesystems: a loop XFS
// (reflink=1) where six boxes reflink one shim set, an ext4 one (no
// reflink); what the walk must never do (follow a symlink out of the home,
// open a FIFO, count a bind mount again); the CLI's table and --json.
import test, { type ExecutionContext } from 'ava'
import { Ajv } from 'ajv'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { HomeLayout, mintBoxId, type DiskUsageReport } from '../lib/index.ts'
import { freshBox } from './helpers/boxes.ts'
import { privileged } from './helpers/env.ts'
import { fdsUnder, mountLoopFs, payload, repoRoot, run, scratch, writeShimSet } from './helpers/fixtures.ts'
import { isMountPoint } from './helpers/mounts.ts'

const SHIM_BYTES = 8 << 20
const LIB_BYTES = 2 << 20

function usedBytes (dir: string): number {
  execFileSync('sync', ['-f', dir])
  const s = fs.statfsSync(dir)
  return (s.blocks - s.bfree) * s.bsize
}

/** A home on a fresh loop filesystem, the shim set beside it (same filesystem, outside the home). */
function loopHome (t: ExecutionContext, type: 'xfs' | 'ext4'): { fsRoot: string, home: HomeLayout, shimDir: string } {
  const fsRoot = mountLoopFs(t, path.join(scratch(t), type), type)
  const home = new HomeLayout({ home: path.join(fsRoot, 'home') })
  home.prepareSync()
  return { fsRoot, home, shimDir: path.join(fsRoot, 'shim-src') }
}

function near (t: ExecutionContext, got: number, want: number, fraction: number, what: string): void {
  t.true(Math.abs(got - want) <= want * fraction, `${what}: ${got} is not within ${fraction * 100}% of ${want}`)
}

privileged('df counts six reflinks of one shim set once: physical matches the filesystem\'s growth, du says six times more', async (t) => {
  const { fsRoot, home, shimDir } = loopHome(t, 'xfs')
  const before = usedBytes(fsRoot)
  const shim = writeShimSet(shimDir, { shimBytes: SHIM_BYTES, libBytes: LIB_BYTES })
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    const box = freshBox(t, home, {})
    box.prepareSync()
    const r = box.installShimSync(shim, { mode: 'force' })
    t.true(r.files.every((f) => f.method === 'reflink'), JSON.stringify(r.files))
    ids.push(box.boxId)
  }
  const growth = usedBytes(fsRoot) - before

  const report = await home.diskUsage()
  t.true(report.extentsKnown)
  const total = report.total
  near(t, total.physicalBytes!, growth, 0.05, 'physical bytes against the filesystem\'s growth')
  const ratio = total.duBytes / total.physicalBytes!
  t.log(`physical ${total.physicalBytes!} B, filesystem growth ${growth} B, du ${total.duBytes} B (${ratio.toFixed(2)}× physical)`)
  t.true(ratio > 5.5 && ratio < 6.5, `du's sum is ${ratio.toFixed(2)}× the physical bytes, not about 6×`)
  t.is(total.duBytes, total.allocatedBytes)
  t.is(total.exclusiveBytes! + total.sharedBytes!, total.allocatedBytes)
  // The first box in byte order owns the shim set's extents; the others add only their own files.
  const boxes = [...ids].sort()
  t.deepEqual(report.boxes.map((b) => b.id), boxes)
  for (const b of report.boxes) {
    t.is(b.sharedBytes, SHIM_BYTES + LIB_BYTES, `box ${b.id} shares the whole shim set`)
    if (b.id === boxes[0]) t.true(b.physicalBytes! >= SHIM_BYTES + LIB_BYTES)
    else t.true(b.physicalBytes! < 1 << 20, `box ${b.id} adds ${b.physicalBytes} bytes`)
  }
  const boxesArea = report.areas.find((a) => a.name === 'boxes')!
  t.is(boxesArea.sharedBytes, 6 * (SHIM_BYTES + LIB_BYTES))
  t.deepEqual(report.areas.map((a) => a.name).filter((n) => n.startsWith('images/')), ['images/disk-images', 'images/layers', 'images/manifests'])
  // The sync form is the same native work.
  t.deepEqual(home.diskUsageSync(), report)
})

privileged('df on ext4 (no reflink): nothing is shared, physical is allocated', async (t) => {
  const { home, shimDir } = loopHome(t, 'ext4')
  const shim = writeShimSet(shimDir, { shimBytes: 1 << 20, libBytes: 64 << 10 })
  for (let i = 0; i < 3; i++) {
    const box = freshBox(t, home, {})
    box.prepareSync()
    box.installShimSync(shim)
  }
  const report = await home.diskUsage()
  t.true(report.extentsKnown)
  t.is(report.total.sharedBytes, 0)
  t.is(report.total.physicalBytes, report.total.allocatedBytes)
  for (const b of report.boxes) t.is(b.sharedBytes, 0)
})

privileged('df never follows a symlink out of the home, never opens a FIFO, never counts a bind mount again', async (t) => {
  const { fsRoot, home } = loopHome(t, 'xfs')
  // Outside the home: 4 MiB a symlink points at.
  const outside = path.join(fsRoot, 'outside')
  fs.mkdirSync(outside)
  fs.writeFileSync(path.join(outside, 'big'), payload(4 << 20, 7))
  const box = freshBox(t, home, { isolateMounts: true })
  box.prepareSync()
  fs.symlinkSync(outside, path.join(box.root, 'escape'))
  fs.symlinkSync(path.join(outside, 'big'), path.join(box.root, 'escape-file'))
  // A FIFO nobody writes to: opening it for reading without O_NONBLOCK would hang the scan.
  execFileSync('mkfifo', [path.join(box.root, 'fifo')])
  // 2 MiB in mounts/, also shown at shared/ by a read-only bind mount.
  fs.writeFileSync(path.join(box.mountsDir, 'data'), payload(2 << 20, 9))
  const m = box.mountSharedSync()
  t.teardown(() => { box.unmountSharedSync() })  // before the loop filesystem's own teardown
  t.is(m.method.startsWith('bind-ro'), true, JSON.stringify(m))
  t.true(isMountPoint(box.sharedDir))

  const report = await home.diskUsage()
  const b = report.boxes.find((x) => x.id === box.boxId)!
  t.true(b.allocatedBytes >= 2 << 20, 'mounts/data is counted')
  t.true(b.allocatedBytes < 3 << 20, `counted ${b.allocatedBytes} bytes: the bind mount or the symlink's target was counted too`)
  t.true(report.total.allocatedBytes < 3 << 20)
  t.true(report.skipped.mounts >= 1)
  t.is(report.skipped.special, 1)
  // Nothing in the home changed, and the FIFO is still a FIFO.
  t.true(fs.lstatSync(path.join(box.root, 'fifo')).isFIFO())
})

test('diskUsage of a home that does not exist is ENOENT, reason not-prepared', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'nope') })
  const e = await t.throwsAsync(home.diskUsage())
  t.is((e as any).code, 'ENOENT')
  t.is((e as any).reason, 'not-prepared')
  t.throws(() => home.diskUsageSync(), { code: 'ENOENT' } as any)
})

test('diskUsage walks a tree deeper than its fd budget: every level counted, fds bounded', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  let dir = home.tmpDir
  for (let i = 0; i < 150; i++) dir = path.join(dir, 'd')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'bottom'), payload(64 << 10, 5))
  const report = home.diskUsageSync()
  t.deepEqual(fdsUnder(home.home), [], 'no fd left open in the home')
  const tmp = report.areas.find((a) => a.name === 'tmp')!
  t.is(tmp.files, 1 + 150 + 1)
  t.true(tmp.apparentBytes >= 64 << 10)
})

test('diskUsage reports progress through its counters when asked', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(home.tmpDir, `f${i}`), 'x')
  const seen: number[] = []
  const report = await home.diskUsage({ onProgress: (p) => seen.push(p.files), progressIntervalMs: 1 })
  // Counts only grow, and never past the final one (the timer may not fire on a fast scan).
  t.deepEqual(seen, [...seen].sort((a, b) => a - b))
  t.true(seen.every((n) => n <= report.total.files))
  t.is(report.areas.find((a) => a.name === 'tmp')!.files, 201)
})

const cli = path.join(repoRoot, 'dist', 'cli.cjs')

test('boxlite-layout df: --json conforms to its schema, the table names each area and box, nothing on a piped stderr', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  const box = home.box(mintBoxId())
  t.teardown(() => box.sockets.removeSync())
  box.prepareSync()
  fs.writeFileSync(path.join(box.root, 'disk'), payload(256 << 10, 3))
  const env = { ...process.env, NO_COLOR: '1' }
  const j = await run(process.execPath, [cli, 'df', '--home', home.home, '--json'], { env })
  t.is(j.code, 0, j.stderr)
  t.is(j.stderr, '')
  const doc = JSON.parse(j.stdout) as DiskUsageReport
  const ajv = new Ajv({ allErrors: true, strict: true })
  const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(repoRoot, 'docs', 'cli-json', 'df.schema.json'), 'utf8')))
  t.true(validate(doc), ajv.errorsText(validate.errors))
  for (const key of ['apparentBytes', 'allocatedBytes', 'sharedBytes', 'exclusiveBytes', 'physicalBytes']) {
    t.true(key in doc.total && key in doc.areas[0]! && key in doc.boxes[0]!, key)
  }
  t.true(doc.boxes[0]!.apparentBytes >= 256 << 10)
  const h = await run(process.execPath, [cli, 'df', '--home', home.home], { env })
  t.is(h.code, 0, h.stderr)
  t.is(h.stderr, '')
  t.regex(h.stdout, /^AREA +FILES +APPARENT +ALLOCATED +SHARED +EXCLUSIVE +PHYSICAL$/m)
  t.regex(h.stdout, new RegExp(`^${box.boxId} `, 'm'))
  t.regex(h.stdout, /^du would say /m)
})
