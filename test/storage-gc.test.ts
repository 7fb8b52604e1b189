// Storage gc (gc --storage) on a real loop-mounted filesystem with images
// made by the real qemu-img: it removes only what no backing chain names,
// keeps the fresh and the unreadable, and a kill between its rename and its
// unlink leaves nothing under the real name. Metrics pass the real promtool.
import test, { type ExecutionContext } from 'ava'
import { Ajv } from 'ajv'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { HomeLayout, LayoutError, mintBoxId } from '../lib/index.ts'
import { needs, testWith } from './helpers/env.ts'
import { mountLoopFs, qcow2, repoRoot, run, scratch, tsNode } from './helpers/fixtures.ts'
import { errorObject } from '../lib/cli/output.ts'
import { privateLinkUid } from './helpers/boxes.ts'

const needsQemuImg = needs.tool('qemu-img', 'qemu-utils')
const needsStrace = needs.tool('strace', 'strace')
const needsPromtool = needs.tool('promtool', 'prometheus')

/** A report as the CLI prints it with --json: each LayoutError as its error object. */
function asCliJson (report: unknown): unknown {
  return JSON.parse(JSON.stringify(report, (_k, v: unknown) => v instanceof LayoutError ? errorObject(v) : v))
}

const validateJson = new Ajv({ allErrors: true, strict: true })
  .compile(JSON.parse(fs.readFileSync(path.join(repoRoot, 'docs', 'cli-json', 'gc-storage.schema.json'), 'utf8')) as object)

const OLD = new Date(Date.now() - 3600 * 1000)

/** A base made by qemu-img, backdated past the grace period unless fresh. */
function base (home: HomeLayout, name: string, options: { backing?: string, fresh?: boolean } = {}): string {
  const file = path.join(home.basesDir, name)
  const args = ['create', '-q', '-f', 'qcow2', ...(options.backing === undefined ? [] : ['-b', options.backing, '-F', 'qcow2']), file, '16M']
  execFileSync('qemu-img', args)
  if (options.fresh !== true) fs.utimesSync(file, OLD, OLD)
  return file
}

/** A box whose disks/disk.qcow2 is an overlay on backing (real qemu-img). */
function boxOver (home: HomeLayout, backing: string): string {
  const disks = path.join(home.boxesDir, mintBoxId(), 'disks')
  fs.mkdirSync(disks, { recursive: true })
  const overlay = path.join(disks, 'disk.qcow2')
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', overlay])
  return overlay
}

function loopHome (t: ExecutionContext, type: 'xfs' | 'ext4'): HomeLayout {
  const root = mountLoopFs(t, path.join(scratch(t), 'fs'), type, 300)
  const home = new HomeLayout({ home: path.join(root, 'home') })
  home.prepareSync()
  return home
}

const cli = (...args: string[]) => run(process.execPath, tsNode('lib/cli/main.ts', ...args), { cwd: repoRoot })

testWith([needs.mount, needsQemuImg], 'gc --storage reports, then removes an orphaned base; keeps a chained one, a fresh one and a FIFO', async (t) => {
  const home = loopHome(t, 'xfs')
  const grand = base(home, 'grand.qcow2')
  const used = base(home, 'used.qcow2', { backing: grand })
  const overlay = boxOver(home, used)
  const orphan = base(home, 'orphan.qcow2')
  const orphanExt4 = path.join(home.basesDir, 'orphan.ext4')
  fs.writeFileSync(orphanExt4, Buffer.alloc(1 << 20, 1))
  fs.utimesSync(orphanExt4, OLD, OLD)
  const image = path.join(home.images.diskImagesDir, 'layer.ext4')
  fs.writeFileSync(image, Buffer.alloc(4096, 2))
  fs.utimesSync(image, OLD, OLD)
  const fresh = base(home, 'fresh.qcow2', { fresh: true })
  const fifo = path.join(home.basesDir, 'fifo.qcow2')
  execFileSync('mkfifo', [fifo])
  const other = path.join(home.basesDir, 'notes.txt')
  fs.writeFileSync(other, 'not a base')
  fs.utimesSync(other, OLD, OLD)

  const dry = await home.gcStorage()
  t.true(dry.dryRun)
  t.true(dry.chainsComplete)
  t.is(dry.database, 'absent')
  t.is(dry.imagesRead, 1)
  const orphanBytes = fs.statSync(orphan).size
  t.deepEqual(dry.actions.map((a) => [a.kind, a.path, a.bytes, a.done]), [
    ['base', orphanExt4, 1 << 20, false],
    ['base', orphan, orphanBytes, false],
    ['disk-image', image, 4096, false],
  ])
  t.deepEqual(dry.totals.base, { count: 2, bytes: (1 << 20) + orphanBytes })
  t.deepEqual(dry.kept, { referenced: 2, recent: 1, database: 0, unreadable: 1 })
  t.deepEqual(dry.warnings.map((w) => [w.kind, w.path]), [['unreadable', fifo]])
  t.true(dry.warnings[0]?.error instanceof LayoutError, 'the error met, as a LayoutError')
  t.is(dry.warnings[0]?.error?.reason, 'not-a-regular-file')
  for (const f of [grand, used, orphan, orphanExt4, image, fresh, fifo, other]) t.true(fs.existsSync(f), `dry run kept ${f}`)

  // The CLI's --json dry run is the same report, per its schema.
  const dryCli = await cli('gc', '--storage', '--json', '--home', home.home)
  t.is(dryCli.code, 0, dryCli.stderr)
  const dryDoc = JSON.parse(dryCli.stdout) as unknown
  t.true(validateJson(dryDoc), JSON.stringify(validateJson.errors))
  t.deepEqual(dryDoc, asCliJson(dry))

  const applied = await home.gcStorage({ apply: true })
  t.true(validateJson(asCliJson(applied)), JSON.stringify(validateJson.errors))
  t.false(applied.dryRun)
  t.true(applied.actions.every((a) => a.done), JSON.stringify(applied.actions))
  t.is(applied.actions.length, 3)
  for (const f of [orphan, orphanExt4, image]) t.false(fs.existsSync(f), `removed ${f}`)
  for (const f of [grand, used, fresh, fifo, other]) t.true(fs.existsSync(f), `kept ${f}`)
  t.deepEqual(fs.readdirSync(home.tmpDir), [], 'nothing left in tmp/')
  // The box's chain is whole.
  const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--backing-chain', overlay], { encoding: 'utf8' })) as Array<{ filename: string }>
  t.deepEqual(info.map((i) => i.filename), [overlay, used, grand])
  // Once the box is gone its bases go, one generation per run: used.qcow2
  // still names grand.qcow2 (base-to-base ancestry) until it is removed.
  fs.rmSync(path.dirname(path.dirname(overlay)), { recursive: true })
  const second = await home.gcStorage({ apply: true })
  t.deepEqual(second.actions.map((a) => a.path), [used])
  const third = await home.gcStorage({ apply: true })
  t.deepEqual(third.actions.map((a) => a.path), [grand])
})

testWith([needs.mount, needsQemuImg], 'gc --storage fails closed: an unreadable header or a broken box chain stops every removal', async (t) => {
  const home = loopHome(t, 'ext4')
  const orphan = base(home, 'orphan.qcow2')
  // A qcow2 header whose backing name is longer than QEMU allows: unreadable.
  const corrupt = path.join(home.basesDir, 'corrupt.qcow2')
  const header = Buffer.alloc(512)
  header.write('QFI\xfb', 0, 'latin1')
  header.writeUInt32BE(3, 4)
  header.writeBigUInt64BE(512n, 8)
  header.writeUInt32BE(5000, 16)
  fs.writeFileSync(corrupt, header)
  fs.utimesSync(corrupt, OLD, OLD)
  const report = await home.gcStorage({ apply: true })
  t.false(report.chainsComplete)
  t.deepEqual(report.actions, [])
  t.deepEqual(report.warnings.map((w) => [w.kind, w.path]), [['unreadable', corrupt]])
  t.true(fs.existsSync(orphan) && fs.existsSync(corrupt))

  // A box whose chain names a file that is not there: the chain is unknown
  // beyond it, so the orphan stays.
  fs.rmSync(corrupt)
  const overlay = path.join(home.boxesDir, mintBoxId(), 'disks', 'disk.qcow2')
  qcow2(overlay, '/nonexistent/base.qcow2')
  const broken = await home.gcStorage({ apply: true })
  t.false(broken.chainsComplete)
  t.deepEqual(broken.actions, [])
  t.is(broken.warnings[0]?.kind, 'chain')
  t.is(broken.warnings[0]?.error?.code, 'ENOENT')
  t.true(fs.existsSync(orphan))

  // A symlink among the bases, to a host file: never followed, never
  // removed, and the host file untouched byte for byte.
  fs.rmSync(path.dirname(path.dirname(overlay)), { recursive: true })
  const host = path.join(scratch(t), 'precious.qcow2')
  fs.writeFileSync(host, 'do not delete')
  fs.utimesSync(host, OLD, OLD)
  const link = path.join(home.basesDir, 'link.qcow2')
  fs.symlinkSync(host, link)
  const linked = await home.gcStorage({ apply: true })
  t.deepEqual(linked.actions, [])
  t.deepEqual(linked.warnings.map((w) => [w.kind, w.path]), [['unreadable', link]])
  t.is(fs.readFileSync(host, 'utf8'), 'do not delete')
  t.true(fs.lstatSync(link).isSymbolicLink())
})

testWith([needs.mount, needsQemuImg, needsStrace], 'SIGKILL between the rename and the unlink: nothing under the real name; the next run removes the leftover', async (t) => {
  const home = loopHome(t, 'xfs')
  const orphan = base(home, 'orphan.qcow2')
  // strace kills the CLI as it enters its first unlinkat: the rename into
  // tmp/ is done, the unlink is not.
  const killed = await run('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=unlinkat', '-e', 'inject=unlinkat:signal=SIGKILL',
    process.execPath, ...tsNode('lib/cli/main.ts', 'gc', '--storage', '--apply', '--home', home.home)],
  // No tsx disk cache: its own expiry unlinks would be the first unlinkat.
  { cwd: repoRoot, env: { ...process.env, TSX_DISABLE_CACHE: '1' } })
  t.not(killed.code, 0, killed.stderr)
  t.false(fs.existsSync(orphan), 'not under its real name')
  const left = fs.readdirSync(home.tmpDir)
  t.is(left.length, 1)
  t.regex(left[0]!, /^storage-gc-[0-9a-f]{16}$/)
  const next = await home.gcStorage({ apply: true })
  t.deepEqual(next.actions.map((a) => [a.kind, a.done]), [['tmp-leftover', true]])
  t.deepEqual(fs.readdirSync(home.tmpDir), [])
})

testWith([needs.mount, needsQemuImg], 'BoxLite\'s database: a base_disk row keeps its base where node:sqlite exists; on Node 20 only the chains decide', async (t) => {
  const home = loopHome(t, 'ext4')
  const named = base(home, 'named.qcow2')
  const orphan = base(home, 'orphan.qcow2')
  fs.mkdirSync(home.dbDir)
  type Sqlite = { DatabaseSync: new (p: string) => { exec: (sql: string) => void, close: () => void } }
  let sqlite: Sqlite | undefined
  try { sqlite = process.getBuiltinModule?.('node:sqlite') as Sqlite | undefined } catch { sqlite = undefined }
  if (sqlite?.DatabaseSync !== undefined) {
    const db = new sqlite.DatabaseSync(home.dbPath)
    db.exec(`CREATE TABLE base_disk (id TEXT PRIMARY KEY, path TEXT NOT NULL); INSERT INTO base_disk VALUES ('n1', '${named}')`)
    db.close()
    const report = await home.gcStorage({ apply: true })
    t.is(report.database, 'consulted')
    t.deepEqual(report.actions.map((a) => a.path), [orphan])
    t.is(report.kept.database, 1)
    t.true(fs.existsSync(named))
  } else {
    fs.writeFileSync(home.dbPath, 'SQLite format 3\0')
    const report = await home.gcStorage({ apply: true })
    t.is(report.database, 'unavailable')
    t.deepEqual(report.actions.map((a) => a.path), [named, orphan])
  }
})

test('gcStorage rejects bad options with ERR_INVALID_ARG before touching the disk', async (t) => {
  const home = new HomeLayout({ home: '/nonexistent/blx-storage-gc-home' })
  for (const options of [{ graceSeconds: -1 }, { graceSeconds: Number.NaN }, { apply: 'yes' }, { runtimeLock: {} }]) {
    const e = t.throws(() => home.gcStorageSync(options as never), { instanceOf: LayoutError })
    t.is(e?.code, 'ERR_INVALID_ARG')
    await t.throwsAsync(home.gcStorage(options as never), { instanceOf: LayoutError, code: 'ERR_INVALID_ARG' } as never)
  }
  t.false(fs.existsSync('/nonexistent'))
  const bad = await cli('gc', '--storage', '--grace', 'soon', '--home', '/nonexistent/blx-storage-gc-home')
  t.is(bad.code, 2, bad.stderr)
})

testWith([needs.mount, needsQemuImg, needsPromtool], 'metrics: promtool accepts them; --textfile writes boxlite_layout.prom atomically', async (t) => {
  const home = loopHome(t, 'xfs')
  boxOver(home, base(home, 'used.qcow2'))
  base(home, 'orphan.qcow2')
  await home.gcStorage({ apply: true, graceSeconds: 0 })
  base(home, 'orphan2.qcow2')
  const out = await cli('metrics', '--home', home.home)
  t.is(out.code, 0, out.stderr)
  t.regex(out.stdout, /^boxlite_layout_storage_reclaimable_bytes\{kind="base"\} [1-9][0-9]*$/m)
  t.regex(out.stdout, /^boxlite_layout_last_gc_timestamp_seconds\{gc="storage"\} [1-9][0-9]*$/m)
  t.regex(out.stdout, /^boxlite_layout_last_gc_actions\{gc="storage"\} 1$/m)
  t.regex(out.stdout, /^boxlite_layout_boxes\{state="prepared"\} 1$/m)
  const check = promtoolCheck(out.stdout)
  t.is(check.code, 0, check.stderr)
  const dir = scratch(t)
  const written = await cli('metrics', '--home', home.home, '--textfile', dir)
  t.is(written.code, 0, written.stderr)
  t.deepEqual(fs.readdirSync(dir), ['boxlite_layout.prom'])
  t.is(fs.readFileSync(path.join(dir, 'boxlite_layout.prom'), 'utf8').split('\n').filter((l) => l.startsWith('# TYPE')).length,
    out.stdout.split('\n').filter((l) => l.startsWith('# TYPE')).length)
})

function promtoolCheck (input: string): { code: number | null, stderr: string } {
  try {
    execFileSync('promtool', ['check', 'metrics'], { input, stdio: ['pipe', 'pipe', 'pipe'] })
    return { code: 0, stderr: '' }
  } catch (e) {
    const err = e as { status: number | null, stderr: Buffer, stdout: Buffer }
    return { code: err.status, stderr: `${err.stdout.toString()}${err.stderr.toString()}` }
  }
}

test('a gc record that cannot be written is a warning carrying its LayoutError; the work stands', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  // A directory where the record goes: neither gc can write it.
  fs.mkdirSync(path.join(home.home, '.boxlite-layout-gc.json'))
  const leftover = path.join(home.tmpDir, 'stage.qcow2')
  fs.writeFileSync(leftover, '')
  // A uid of its own: /tmp/bl-{our uid} is other tests' to sweep.
  const repair = await home.gc({ uid: privateLinkUid(t) })
  t.deepEqual(repair.actions.map((a) => [a.kind, a.path, a.done]), [['remove-tmp', leftover, true]])
  const storage = home.gcStorageSync({ apply: true })
  for (const report of [repair, storage]) {
    const warning = report.warnings.find((w) => w.kind === 'record')
    t.is(warning?.path, home.home)
    t.true(warning?.error instanceof LayoutError, JSON.stringify(report.warnings))
    t.is(warning?.error?.reason, 'not-a-regular-file')
    t.regex(warning?.why ?? '', /record could not be written/)
  }
  t.true(validateJson(asCliJson(storage)), JSON.stringify(validateJson.errors))
})
