// Boot generations (boot/current.json naming boot/generations/{gen}) on real
// XFS (reflink) and ext4 loop homes: publish, read, prune, legacy migration,
// checksums, manifests a user or an older BoxLite may have left, planted
// symlinks, bad arguments, and a publish SIGKILLed at every mutating syscall.
import test, { type ExecutionContext } from 'ava'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { formatBootManifest, LayoutError, parseBootManifest, type BoxLayout, type HomeLayout } from '../lib/index.ts'
import { freshBox, freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith, type Requirement } from './helpers/env.ts'
import { mountLoopFs, payload, repoRoot, run, scratch, tsNode, type LoopFsType } from './helpers/fixtures.ts'
import { plantSentinel, snapshot } from './helpers/sentinel.ts'
import { conforms } from './helpers/cli-json.ts'

const loopFs: Record<LoopFsType, Requirement[]> = {
  xfs: [needs.linux, needs.mount, needs.tool('mkfs.xfs', 'xfsprogs')],
  ext4: [needs.linux, needs.mount, needs.tool('mkfs.ext4', 'e2fsprogs')],
}

function sha (data: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`
}

interface Setup { root: string, home: HomeLayout, box: BoxLayout, kernel: string, initramfs: string }

async function setup (t: ExecutionContext, type: LoopFsType): Promise<Setup> {
  const root = mountLoopFs(t, path.join(scratch(t), type), type)
  const home = freshHome(t, root)
  const box = freshBox(t, home, { uid: privateLinkUid(t) })
  await box.prepare()
  const kernel = path.join(root, 'vmlinux')
  const initramfs = path.join(root, 'initramfs.cpio')
  fs.writeFileSync(kernel, payload(3 << 20, 11), { mode: 0o644 })
  fs.writeFileSync(initramfs, payload(1 << 20, 12), { mode: 0o644 })
  return { root, home, box, kernel, initramfs }
}

function bootEntries (box: BoxLayout): string[] {
  return fs.readdirSync(box.bootDir).sort()
}

for (const type of ['xfs', 'ext4'] as const) {
  testWith(loopFs[type], `on ${type}: publishBoot stages, switches and prunes; readBoot checks it`, async (t) => {
    const { box, kernel, initramfs } = await setup(t, type)
    t.is(await box.readBoot(), null, 'nothing published yet')

    const first = await box.publishBoot({ kernel, initramfs, format: 'elf' })
    t.regex(first.manifest.generation, /^[A-Za-z0-9_-]{12}$/)
    t.is(first.kernelCopy.method, type === 'xfs' ? 'reflink' : 'copy_file_range')
    t.is(first.kernelCopy.bytes, 3 << 20)
    t.deepEqual(bootEntries(box), ['current.json', 'generations'])
    t.deepEqual(fs.readdirSync(path.join(box.bootDir, 'generations')), [first.manifest.generation])
    t.deepEqual(fs.readdirSync(first.generationDir).sort(), ['initramfs', 'kernel'])
    t.deepEqual(fs.readFileSync(first.kernelPath), fs.readFileSync(kernel))
    t.is(fs.statSync(first.kernelPath).mode & 0o7777, 0o644)

    // BoxLite's bytes exactly: two-space indent, its key order, no newline at the end.
    const text = fs.readFileSync(path.join(box.bootDir, 'current.json'), 'utf8')
    t.is(text, '{\n' +
      '  "version": 1,\n' +
      `  "generation": "${first.manifest.generation}",\n` +
      '  "format": "elf",\n' +
      `  "kernel_sha256": "${sha(fs.readFileSync(kernel))}",\n` +
      `  "initramfs_sha256": "${sha(fs.readFileSync(initramfs))}"\n` +
      '}')
    t.is(formatBootManifest(first.manifest), text)

    const read = box.readBootSync()
    t.deepEqual(read, {
      bootDir: box.bootDir,
      manifestPath: path.join(box.bootDir, 'current.json'),
      manifest: first.manifest,
      generationDir: first.generationDir,
      kernelPath: first.kernelPath,
      initramfsPath: first.initramfsPath,
    })

    // A second publish without initramfs: the key is omitted, the old generation pruned.
    fs.writeFileSync(kernel, payload(2 << 20, 13))
    const second = box.publishBootSync({ kernel, format: 'image-gz' })
    t.deepEqual(second.pruned, [first.manifest.generation])
    t.is(second.initramfsPath, undefined)
    t.false(fs.readFileSync(second.manifestPath, 'utf8').includes('initramfs'))
    t.deepEqual(fs.readdirSync(path.join(box.bootDir, 'generations')), [second.manifest.generation])
    t.deepEqual((await box.readBoot())?.manifest, second.manifest)
    t.is(second.manifest.format, 'image-gz')
  })
}

testWith(loopFs.ext4, 'legacy boot/kernel and boot/initramfs: migrated by publishBoot without kernel, removed by any publish', async (t) => {
  const { box, kernel } = await setup(t, 'ext4')
  fs.mkdirSync(box.bootDir)
  fs.writeFileSync(path.join(box.bootDir, 'kernel'), 'legacy kernel')
  fs.writeFileSync(path.join(box.bootDir, 'initramfs'), 'legacy initramfs')
  t.is(box.readBootSync(), null, 'no manifest: nothing current')

  const migrated = box.publishBootSync({ format: 'raw' })
  t.deepEqual(migrated.legacyRemoved, ['kernel', 'initramfs'])
  t.deepEqual(bootEntries(box), ['current.json', 'generations'])
  t.is(fs.readFileSync(migrated.kernelPath, 'utf8'), 'legacy kernel')
  t.is(fs.readFileSync(migrated.initramfsPath!, 'utf8'), 'legacy initramfs')
  t.is(migrated.manifest.kernelSha256, sha(Buffer.from('legacy kernel')))
  t.deepEqual(box.readBootSync()?.manifest, migrated.manifest)

  // Nothing left to migrate: ENOENT with a hint, and the current generation untouched.
  const e = t.throws(() => box.publishBootSync({ format: 'raw' }), { instanceOf: LayoutError })
  t.is(e?.code, 'ENOENT')
  t.deepEqual(box.readBootSync()?.manifest, migrated.manifest)

  // A legacy file next to a manifest goes with the next publish.
  fs.writeFileSync(path.join(box.bootDir, 'kernel'), 'stale')
  const next = box.publishBootSync({ kernel, format: 'elf' })
  t.deepEqual(next.legacyRemoved, ['kernel'])
  t.deepEqual(bootEntries(box), ['current.json', 'generations'])
})

testWith(loopFs.xfs, 'a changed or missing file of the generation is checksum-mismatch', async (t) => {
  const { box, kernel, initramfs } = await setup(t, 'xfs')
  const r = box.publishBootSync({ kernel, initramfs, format: 'elf' })
  const original = fs.readFileSync(r.kernelPath)
  const changed = Buffer.from(original)
  changed[12345] = changed[12345]! ^ 1
  fs.writeFileSync(r.kernelPath, changed)
  const e = t.throws(() => box.readBootSync(), { instanceOf: LayoutError })
  t.is(e?.code, 'EIO')
  t.is(e?.reason, 'checksum-mismatch')
  t.is(e?.path, r.kernelPath)
  t.true(e?.message.includes(sha(changed)))
  fs.writeFileSync(r.kernelPath, original)
  t.truthy(await box.readBoot())

  fs.rmSync(r.initramfsPath!)
  const missing = await t.throwsAsync(box.readBoot(), { instanceOf: LayoutError })
  t.is(missing?.reason, 'checksum-mismatch')
  t.is(missing?.path, r.initramfsPath)
})

testWith(loopFs.ext4, 'manifests readBoot refuses: bad generation names, versions, formats, duplicate keys', async (t) => {
  const { box, kernel } = await setup(t, 'ext4')
  const r = box.publishBootSync({ kernel, format: 'elf' })
  const good = JSON.parse(fs.readFileSync(r.manifestPath, 'utf8')) as Record<string, unknown>
  const write = (doc: unknown): void => fs.writeFileSync(r.manifestPath, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2))
  const refused = (doc: unknown, what: RegExp): void => {
    write(doc)
    const e = t.throws(() => box.readBootSync(), { instanceOf: LayoutError }, JSON.stringify(doc))
    t.is(e?.code, 'EINVAL')
    t.is(e?.reason, 'malformed-record')
    t.regex(e?.message ?? '', what)
  }
  for (const generation of ['', '../../../etc', 'a/b', 'x'.repeat(65), 'é', '.', 'gen name', 7]) {
    refused({ ...good, generation }, /invalid generation/)
  }
  refused({ ...good, version: 2 }, /unsupported version 2/)
  refused({ ...good, version: '1' }, /unsupported version/)
  refused({ ...good, format: 'auto' }, /unsupported kernel format "auto"/)
  refused({ ...good, format: 'bzImage' }, /unsupported kernel format/)
  refused({ ...good, kernel_sha256: 'md5:00' }, /kernel_sha256/)
  refused('{"version": 1,', /not valid JSON/)
  refused('[]', /not a JSON object/)
  // Two generation keys: JSON.parse keeps the last, so the native reading refuses both.
  const text = formatBootManifest(r.manifest)
  refused(text.replace('"format"', `"generation": "${'A'.repeat(12)}",\n  "format"`), /more than once/)
  // 64 bytes is the longest name BoxLite accepts: a valid manifest, its generation missing.
  write({ ...good, generation: 'a'.repeat(64) })
  const e = t.throws(() => box.readBootSync(), { instanceOf: LayoutError })
  t.is(e?.code, 'ENOENT')
  t.throws(() => parseBootManifest('{}', 'x'), { instanceOf: LayoutError })
})

testWith(loopFs.ext4, 'symlinks planted at boot/, boot/generations, current.json and the generation: refused, the sentinel untouched', async (t) => {
  const { root, box, kernel } = await setup(t, 'ext4')
  const sentinel = plantSentinel(path.join(root, 'sentinel'))
  const before = snapshot(sentinel)
  const symlinkError = (e: LayoutError | undefined): void => {
    t.is(e?.code, 'ELOOP')
    t.is(e?.reason, 'symlink')
  }

  fs.symlinkSync(sentinel, box.bootDir)
  symlinkError(t.throws(() => box.publishBootSync({ kernel, format: 'elf' }), { instanceOf: LayoutError }))
  symlinkError(t.throws(() => box.readBootSync(), { instanceOf: LayoutError }))
  fs.unlinkSync(box.bootDir)

  fs.mkdirSync(box.bootDir)
  fs.symlinkSync(sentinel, path.join(box.bootDir, 'generations'))
  symlinkError(t.throws(() => box.publishBootSync({ kernel, format: 'elf' }), { instanceOf: LayoutError }))
  t.deepEqual(bootEntries(box), ['generations'], 'nothing left behind')
  fs.unlinkSync(path.join(box.bootDir, 'generations'))

  const r = box.publishBootSync({ kernel, format: 'elf' })
  // A generation dir that is a symlink to the sentinel, named by the manifest.
  fs.rmSync(r.generationDir, { recursive: true })
  fs.symlinkSync(sentinel, r.generationDir)
  symlinkError(t.throws(() => box.readBootSync(), { instanceOf: LayoutError }))
  fs.unlinkSync(r.generationDir)

  // current.json as a symlink to a manifest-shaped file outside the box.
  fs.writeFileSync(path.join(sentinel, 'current.json'), formatBootManifest(r.manifest))
  const planted = snapshot(sentinel)
  fs.rmSync(r.manifestPath)
  fs.symlinkSync(path.join(sentinel, 'current.json'), r.manifestPath)
  symlinkError(t.throws(() => box.readBootSync(), { instanceOf: LayoutError }))
  // A publish replaces the link itself, never writing through it.
  const next = box.publishBootSync({ kernel, format: 'elf' })
  t.false(fs.lstatSync(next.manifestPath).isSymbolicLink())
  t.deepEqual(snapshot(sentinel), planted)
  fs.rmSync(path.join(sentinel, 'current.json'))
  t.deepEqual(snapshot(sentinel), before)
})

testWith(loopFs.ext4, 'bad arguments: ERR_INVALID_ARG before the disk is touched', async (t) => {
  const { box, kernel } = await setup(t, 'ext4')
  const bad: unknown[] = [
    undefined, null, 'vmlinux', {}, { kernel }, { kernel, format: 'auto' }, { kernel, format: 'ELF' },
    { kernel: 'vmlinux', format: 'elf' }, { kernel: '', format: 'elf' }, { kernel: 7, format: 'elf' },
    { kernel: '/a\0b', format: 'elf' }, { kernel, initramfs: 'rel', format: 'elf' }, { kernel, initramfs: null, format: 'elf' },
    { initramfs: kernel, format: 'elf' },
  ]
  for (const options of bad) {
    const e = t.throws(() => box.publishBootSync(options as never), { instanceOf: LayoutError }, JSON.stringify(options))
    t.is(e?.code, 'ERR_INVALID_ARG')
    await t.throwsAsync(box.publishBoot(options as never), { instanceOf: LayoutError })
  }
  t.false(fs.existsSync(box.bootDir))
  // A source that is not a regular file: refused before boot/ exists.
  const e = t.throws(() => box.publishBootSync({ kernel: path.dirname(kernel), format: 'elf' }), { instanceOf: LayoutError })
  t.is(e?.reason, 'not-a-regular-file')
  t.false(fs.existsSync(box.bootDir))
})

// Mutating syscalls of a publish (and of its clean-up): killing the child at
// the Nth call of each leaves the on-disk states a crash can leave. write is
// not among them: Node's main thread writes a varying number of times (event
// loop wake-ups), so its Nth call is not a fixed point; the one state only it
// would add (the temporary manifest created, still empty) is a leftover of
// the same name as the ones fchmod and fsync leave.
const KILL_POINTS = ['mkdirat', 'fchmod', 'ioctl', 'copy_file_range', 'fsync', 'renameat', 'renameat2', 'unlinkat']

testWith([...loopFs.xfs, needs.tool('strace', 'strace')], 'a publish SIGKILLed at any mutating syscall leaves the old or the new generation; gc and the next publish clear the rest', async (t) => {
  const { home, box, kernel, initramfs } = await setup(t, 'xfs')
  const uid = box.sockets.uid
  const node = process.execPath
  const child = tsNode('test/fixtures/boot-publish.ts', home.home, box.boxId, kernel, initramfs)
  const trace = path.join(path.dirname(kernel), 'trace.log')
  let old = box.publishBootSync({ kernel, initramfs, format: 'elf' }).manifest
  fs.writeFileSync(kernel, payload(3 << 20, 21))
  const newKernel = sha(fs.readFileSync(kernel))

  // Which calls of each syscall come after the marker (strace without -f
  // follows the main thread alone, where the sync publish runs). tsx runs
  // without its disk cache, so a cold or warm cache cannot change the calls
  // before the marker; two counted runs must agree.
  const noCache = { env: { ...process.env, TSX_DISABLE_CACHE: '1' } }
  const countRun = async (): Promise<Array<[string, number, number]>> => {
    const traced = await run('strace', ['-qq', '-o', trace, '-e', `trace=access,faccessat,faccessat2,${KILL_POINTS.join(',')}`, node, ...child], noCache)
    t.is(traced.code, 0, traced.stderr)
    const lines = fs.readFileSync(trace, 'utf8').split('\n')
    const marker = lines.findIndex((l) => l.includes('/blx-boot-publish-marker'))
    t.true(marker > 0)
    const count = (name: string, ls: string[]) => ls.filter((l) => l.startsWith(`${name}(`)).length
    return KILL_POINTS.map((name) => [name, count(name, lines.slice(0, marker)), count(name, lines.slice(marker))])
  }
  const counted = await countRun()
  t.deepEqual(await countRun(), counted, 'the calls before the publish are the same in every run')
  const points: Array<[string, number]> = []
  for (const [name, before, during] of counted) {
    for (let n = before + 1; n <= before + during; n++) points.push([name, n])
  }
  t.true(points.length >= 15, `kill points: ${points.length}`)
  t.log(`${points.length} kill points: ${counted.filter((c) => c[2] > 0).map((c) => `${c[0]} x${c[2]}`).join(', ')}`)
  old = box.readBootSync()!.manifest
  fs.writeFileSync(kernel, payload(3 << 20, 22))
  const newest = sha(fs.readFileSync(kernel))
  t.not(newest, newKernel)

  const outcomes = new Set<string>()
  for (const [name, n] of points) {
    const at = `${name} #${n}`
    const r = await run('strace', ['-qq', '-o', '/dev/null', '-e', `trace=${name}`, '-e', `inject=${name}:signal=SIGKILL:when=${n}`, node, ...child], noCache)
    t.is(r.signal ?? (r.code === 137 ? 'SIGKILL' : null), 'SIGKILL', `${at}: killed (${r.code}) ${r.stderr}`)
    const now = box.readBootSync()!
    t.truthy(now, at)
    if (now.manifest.generation === old.generation) {
      t.deepEqual(now.manifest, old, at)
      outcomes.add('old')
    } else {
      t.is(now.manifest.kernelSha256, newest, `${at}: the new generation, complete`)
      outcomes.add('new')
    }
    // gc removes the staging leftovers; nothing else of an interrupted publish stays.
    home.gcSync({ graceSeconds: 0, uid })
    t.deepEqual(bootEntries(box).filter((e) => e.startsWith('.')), [], `${at}: gc left no staging`)
    const extra = fs.readdirSync(path.join(box.bootDir, 'generations')).filter((g) => g !== now.manifest.generation)
    // A generation renamed in but never made current: removed by the next publish.
    const next = box.publishBootSync({ kernel, initramfs, format: 'elf' })
    t.true(extra.every((g) => next.pruned.includes(g)), `${at}: next publish prunes ${extra.join(',')}`)
    t.deepEqual(bootEntries(box), ['current.json', 'generations'], at)
    t.deepEqual(fs.readdirSync(path.join(box.bootDir, 'generations')), [next.manifest.generation], at)
    old = next.manifest
  }
  t.deepEqual([...outcomes].sort(), ['new', 'old'], 'kill points before and after the switch')
})

test('formatBootManifest and parseBootManifest round-trip', (t) => {
  const m = { version: 1 as const, generation: 'V1StGXR8_Z5j', format: 'pe-gz' as const, kernelSha256: `sha256:${'a'.repeat(64)}` }
  t.deepEqual(parseBootManifest(formatBootManifest(m), 'current.json'), m)
})

testWith(loopFs.ext4, 'CLI: box boot publish and box boot show, their JSON documents, a mismatch exits 1', async (t) => {
  const { home, box, kernel, initramfs } = await setup(t, 'ext4')
  const cli = (...args: string[]) => run(process.execPath, [path.join(repoRoot, 'dist', 'cli.cjs'), ...args, '--home', home.home, '--json'])
  const none = await cli('box', 'boot', 'show', box.boxId)
  t.is(none.code, 0, none.stderr)
  conforms(t, 'box-boot-show', JSON.parse(none.stdout))
  t.is(JSON.parse(none.stdout).generation, null)

  fs.writeFileSync(kernel, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), payload(8192, 5)]))
  const published = await cli('box', 'boot', 'publish', box.boxId, '--kernel', kernel, '--initramfs', initramfs)
  t.is(published.code, 0, published.stderr)
  const doc = JSON.parse(published.stdout)
  conforms(t, 'box-boot-publish', doc)
  t.is(doc.format, 'elf', '--format auto reads the ELF magic')
  const shown = await cli('box', 'boot', 'show', box.boxId)
  conforms(t, 'box-boot-show', JSON.parse(shown.stdout))
  t.deepEqual(JSON.parse(shown.stdout), { boxId: doc.boxId, bootDir: doc.bootDir, generation: doc.generation, format: 'elf', kernel: doc.kernel, initramfs: doc.initramfs })

  fs.appendFileSync(doc.kernel.path, 'x')
  const mismatch = await cli('box', 'boot', 'show', box.boxId)
  t.is(mismatch.code, 1)
  conforms(t, 'error', JSON.parse(mismatch.stdout))
  t.is(JSON.parse(mismatch.stdout).error.reason, 'checksum-mismatch')

  for (const args of [['--format', 'auto2', '--kernel', kernel], ['--initramfs', initramfs], [], ['--kernel', '']]) {
    const r = await cli('box', 'boot', 'publish', box.boxId, ...args)
    t.is(r.code, 2, `${args.join(' ')}: ${r.stdout}`)
    conforms(t, 'error', JSON.parse(r.stdout))
  }
})
