// What a real Linux guest sees of a box's shared/, from inside a VM: the
// QEMU guest of tools/guest-vm/vm.ts with shared/ over virtio-9p. One boot
// per scenario, its probes batched. The read-only bind of an isolating box
// (every write EROFS, host writes seen live); the plain shared/ of
// BoxLite's default (every write lands, the guest's exit.json reaches the
// host); a guest planting symlinks and a FIFO for the host's container ops
// to trip on; and `npm run demo:vm` end to end.
import test, { type ExecutionContext } from 'ava'
import { Ajv } from 'ajv'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { shellQuote } from '../lib/cli/output.ts'
import { LayoutError, mintBoxId, type BoxLayout, type HomeLayout } from '../lib/index.ts'
import { freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs as envNeeds, testWith, type Requirement } from './helpers/env.ts'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'
import { mountsBelow } from './helpers/mounts.ts'
import {
  assertStepErrno, assertStepOk, describeStep, guestAvailability, guestImage, HOST_WRITE_FILE, HOST_WRITE_TEXT,
  hostWriteProbe, PROBE_FILES, PROBE_TEXT, readProbeStep, runInGuest, seedProbeFiles, stepNamed, writeProbeSteps,
  type GuestRun, type GuestStep,
} from './helpers/guest.ts'
import { plantSentinel, snapshot } from './helpers/sentinel.ts'

// Asked once, before any test is registered: testWith needs a sync answer.
const availability = await guestAvailability()
const needs = {
  ...envNeeds,
  guest: {
    ok: () => availability.ok,
    reason: availability.ok ? '' : `needs the QEMU guest: ${availability.reason}`,
  } satisfies Requirement,
}

const WRITE_PROBES = writeProbeSteps().map((s) => s.name)

/**
 * A TCG guest on a loaded 2-core machine can take minutes to boot: the
 * limit only catches a hung guest, so it is far above the usual boot. The
 * VM tests are serial besides, so their guests never share the cores.
 */
const GUEST_TIMEOUT_MS = 240_000

/** A box of a fresh home in a scratch dir, its socket link under a uid of its own. */
function scenarioBox (t: ExecutionContext, isolateMounts: boolean): { root: string, home: HomeLayout, box: BoxLayout, uid: number } {
  const root = scratch(t)
  const home = freshHome(t, root)
  const uid = privateLinkUid(t)
  const box = home.box(mintBoxId(), { isolateMounts, uid })
  // Also on failure, before scratch()'s teardown unmounts what is left by path.
  t.teardown(async () => { await box.cleanup().catch(() => {}) })
  return { root, home, box, uid }
}

/** fn is refused with a LayoutError of this code and reason. */
async function refused (t: ExecutionContext, what: string, fn: () => Promise<unknown>, code: string, reason: string): Promise<LayoutError | undefined> {
  const e = await t.throwsAsync(fn, { instanceOf: LayoutError }, `${what} must be refused`)
  t.deepEqual({ code: e?.code, reason: e?.reason }, { code, reason }, `${what}: ${e?.message ?? 'not refused'}`)
  return e
}

/** The box is gone, with nothing mounted under the scratch root. */
async function cleanedUp (t: ExecutionContext, box: BoxLayout, root: string): Promise<void> {
  const r = await box.cleanup()
  t.true(r.removed, 'cleanup removed the box')
  t.false(fs.existsSync(box.root), 'the box dir is gone')
  t.deepEqual(mountsBelow(root), [], 'no mount left under the scratch root')
}

function logConsoleOnFailure (t: ExecutionContext, guest: GuestRun): void {
  t.teardown(() => {
    if (!t.passed) t.log(`guest console:\n${guest.console}`)
  })
}

testWith([needs.linux, needs.mount, needs.guest], 'isolating box after mountShared(): the guest reads, every write is EROFS, host writes show up live', async (t) => {
  const { root, box } = scenarioBox(t, true)
  await box.prepare()
  const mount = await box.mountShared()
  t.is(mount.method, 'bind-ro')
  t.true(mount.readOnly)
  await seedProbeFiles(box.mountsDir)
  const before = snapshot(box.mountsDir)

  const hostWrite = hostWriteProbe(box.mountsDir)
  const guest = await runInGuest(box.sharedDir, [readProbeStep(), ...writeProbeSteps(), hostWrite.step],
    { onMarker: hostWrite.onMarker, image: await guestImage(t), timeoutMs: GUEST_TIMEOUT_MS })
  logConsoleOnFailure(t, guest)

  const read = stepNamed(guest, 'read')
  assertStepOk(t, read)
  t.is(read.stdout, PROBE_TEXT, 'the guest reads the host file as written')
  for (const name of WRITE_PROBES) assertStepErrno(t, stepNamed(guest, name), 'EROFS')
  const seen = stepNamed(guest, hostWrite.step.name)
  assertStepOk(t, seen)
  t.regex(seen.stdout, /^seen after \d+ polls\n/, describeStep(seen))
  t.true(seen.stdout.endsWith(HOST_WRITE_TEXT), `the guest read the host's write back: ${describeStep(seen)}`)

  // mounts/ on the host: as seeded, plus the host's own write, and nothing of the guest's.
  const after = snapshot(box.mountsDir)
  t.deepEqual(after.filter((e) => e.path !== HOST_WRITE_FILE), before, 'mounts/ unchanged by the guest')
  t.is(fs.readFileSync(path.join(box.mountsDir, HOST_WRITE_FILE), 'utf8'), HOST_WRITE_TEXT)

  await cleanedUp(t, box, root)
}, true)

testWith([needs.linux, needs.root, needs.guest], 'isolation off (BoxLite\'s default): every guest write lands in shared/, the guest\'s exit.json reaches the host, staged volumes: read-write writes the source, read-only is a snapshot', async (t) => {
  const { root, box } = scenarioBox(t, false)
  await box.prepare()
  t.is(box.mountsDir, box.sharedDir)
  t.is((await box.sharedState()).kind, 'directory')
  await seedProbeFiles(box.sharedDir)

  const hostWrite = hostWriteProbe(box.sharedDir)
  const exitStep: GuestStep = {
    name: 'container exit',
    run: 'mkdir -p containers/c1 && printf \'{"exit_code":7}\' > containers/c1/exit.json',
  }
  // Single-file volumes: a read-write one (the source itself) and a
  // read-only one (a snapshot: the source changes after staging).
  const rwSource = path.join(root, 'volume-rw.txt')
  const roSource = path.join(root, 'volume-ro.txt')
  fs.writeFileSync(rwSource, 'host\n')
  fs.writeFileSync(roSource, 'snapshot\n')
  const rwStaged = await box.stageVolumeFile(rwSource, { index: 0 })
  const roStaged = await box.stageVolumeFile(roSource, { index: 1, readOnly: true })
  fs.writeFileSync(roSource, 'changed after staging\n')
  const volumeSteps: GuestStep[] = [
    { name: 'rw volume', run: `printf 'guest\\n' >> user-volumes/${rwStaged.tag}/${rwStaged.name} && cat user-volumes/${rwStaged.tag}/${rwStaged.name}` },
    { name: 'ro volume', run: `cat user-volumes/${roStaged.tag}/${roStaged.name}` },
  ]
  const guest = await runInGuest(box.sharedDir, [readProbeStep(), ...writeProbeSteps(), hostWrite.step, exitStep, ...volumeSteps],
    { onMarker: hostWrite.onMarker, image: await guestImage(t), timeoutMs: GUEST_TIMEOUT_MS })
  logConsoleOnFailure(t, guest)

  const read = stepNamed(guest, 'read')
  assertStepOk(t, read)
  t.is(read.stdout, PROBE_TEXT)
  for (const name of [...WRITE_PROBES, hostWrite.step.name, exitStep.name]) assertStepOk(t, stepNamed(guest, name))
  t.true(stepNamed(guest, hostWrite.step.name).stdout.endsWith(HOST_WRITE_TEXT))

  // Each write landed on the host.
  const at = (name: string): string => path.join(box.sharedDir, name)
  t.is(fs.readFileSync(at('guest-wrote.txt'), 'utf8'), 'guest\n', 'write')
  t.is(fs.readFileSync(at(PROBE_FILES.probe), 'utf8'), `${PROBE_TEXT}guest\n`, 'append')
  t.true(fs.lstatSync(at('guest-dir')).isDirectory(), 'mkdir')
  t.is(fs.lstatSync(at(PROBE_FILES.probe)).mode & 0o7777, 0o600, 'chmod')
  t.false(fs.existsSync(at(PROBE_FILES.renameMe)), 'rename: the old name is gone')
  t.is(fs.readFileSync(at('renamed.txt'), 'utf8'), PROBE_TEXT, 'rename: the new name')
  t.is(fs.readlinkSync(at('guest-link')), PROBE_FILES.probe, 'symlink')
  t.false(fs.existsSync(at(PROBE_FILES.removeMe)), 'rm')
  t.is(fs.readFileSync(at(HOST_WRITE_FILE), 'utf8'), HOST_WRITE_TEXT)

  t.is(fs.readFileSync(box.containerExitPath('c1'), 'utf8'), '{"exit_code":7}')
  t.deepEqual(await box.readContainerExit('c1'), { exitCode: 7 })

  const rwStep = stepNamed(guest, 'rw volume')
  assertStepOk(t, rwStep)
  t.is(rwStep.stdout, 'host\nguest\n', 'the guest reads the source through the staged entry')
  t.is(fs.readFileSync(rwSource, 'utf8'), 'host\nguest\n', 'the guest\'s write landed in the read-write volume\'s source')
  const roStep = stepNamed(guest, 'ro volume')
  assertStepOk(t, roStep)
  t.is(roStep.stdout, 'snapshot\n', 'a read-only volume is the snapshot taken at staging')

  await cleanedUp(t, box, root)
}, true)

testWith([needs.linux, needs.root, needs.guest], 'isolation off, a hostile guest plants containers/c1 -> a host sentinel, c3 -> /, a FIFO exit.json: every host op refuses, nothing outside is touched', async (t) => {
  const { root, home, box, uid } = scenarioBox(t, false)
  const sentinel = plantSentinel(path.join(root, 'sentinel'))
  const sentinelBefore = snapshot(sentinel)
  const slash = (): unknown => ({ names: fs.readdirSync('/').sort(), mode: fs.lstatSync('/').mode, uid: fs.lstatSync('/').uid })
  const slashBefore = slash()

  // Before any cleanup can meet containers/c3 -> / (this test's own, or
  // its teardown's): the same cleanup of a decoy box whose link points at
  // the sentinel. A cleanup that followed links eats the sentinel here,
  // and the guest never plants the link to /.
  const decoy = home.box(mintBoxId(), { isolateMounts: false, uid })
  await decoy.prepare()
  fs.mkdirSync(path.join(decoy.sharedDir, 'containers'))
  fs.symlinkSync(sentinel, path.join(decoy.sharedDir, 'containers', 'c1'))
  await decoy.cleanup()
  t.false(fs.existsSync(decoy.root))
  if (!fs.existsSync(sentinel) || !t.deepEqual(snapshot(sentinel), sentinelBefore, 'cleanup of a decoy box left the sentinel intact')) {
    t.fail('cleanup followed a container link: not planting one to /')
    return
  }

  await box.prepare()

  const containers = path.join(box.sharedDir, 'containers')
  let hostPlantedFifo = false
  const plant: GuestStep = {
    name: 'plant links',
    run: [
      'mkdir -p containers/c4',
      `ln -s ${shellQuote(sentinel)} containers/c1`,
      'ln -s / containers/c3',
      `ln -s ${shellQuote(path.join(sentinel, 'secret'))} containers/c4/exit.json`,
      // The host acts while the guest waits, links in place.
      'await_host planted',
      'readlink containers/c1',
    ].join(' && '),
  }
  // QEMU's 9p server may refuse to make special files (CVE-2023-2861
  // hardening: ENXIO); virtio-fs, BoxLite's share, makes them. Then the
  // host plants the FIFO while the guest waits, and the guest checks it.
  const fifo: GuestStep = {
    name: 'plant fifo',
    run: 'mkdir -p containers/c2 && ' +
      '{ mkfifo containers/c2/exit.json 2>/tmp/mkfifo.err || { cat /tmp/mkfifo.err >&2; await_host plant-fifo; }; } && ' +
      'test -p containers/c2/exit.json',
  }
  const guest = await runInGuest(box.sharedDir, [plant, fifo], {
    image: await guestImage(t),
    timeoutMs: GUEST_TIMEOUT_MS,
    onMarker: async (name) => {
      if (name === 'planted') {
        await refused(t, 'writeContainerExit c1 while the guest runs', () => box.writeContainerExit('c1', { exitCode: 9 }), 'ELOOP', 'symlink')
        await refused(t, 'readContainerExit c1 while the guest runs', () => box.readContainerExit('c1'), 'ELOOP', 'symlink')
      } else if (name === 'plant-fifo') {
        execFileSync('mkfifo', [path.join(containers, 'c2', 'exit.json')])
        hostPlantedFifo = true
      } else {
        throw new Error(`unexpected guest marker ${name}`)
      }
    },
  })
  logConsoleOnFailure(t, guest)
  const planted = stepNamed(guest, plant.name)
  assertStepOk(t, planted)
  t.is(planted.stdout, `${sentinel}\n`)
  const madeFifo = stepNamed(guest, fifo.name)
  assertStepOk(t, madeFifo)
  if (hostPlantedFifo) {
    t.log(`the guest's mkfifo was refused by QEMU's 9p server (${madeFifo.stderr.trim()}): the host planted the FIFO`)
    t.regex(madeFifo.stderr, /No such device or address/, `only the 9p server's refusal stands in for the guest: ${describeStep(madeFifo)}`)
  }

  // What the guest planted is on the host, as planted.
  t.is(fs.readlinkSync(path.join(containers, 'c1')), sentinel)
  t.is(fs.readlinkSync(path.join(containers, 'c3')), '/')
  t.true(fs.lstatSync(path.join(containers, 'c2', 'exit.json')).isFIFO())

  // The host's container ops after the guest powered off. prepare works
  // on mounts/, which the guest does not reach, so it may succeed.
  await box.container('c1').prepare()
  t.true(fs.lstatSync(box.container('c1').rootfsDir).isDirectory(), 'prepared under mounts/')
  await refused(t, 'writeContainerExit c1', () => box.writeContainerExit('c1', { exitCode: 1 }), 'ELOOP', 'symlink')
  await refused(t, 'readContainerExit c1', () => box.readContainerExit('c1'), 'ELOOP', 'symlink')
  // No timing here: a read that blocked on the FIFO would hang until ava's timeout.
  await refused(t, 'readContainerExit c2 (a FIFO)', () => box.readContainerExit('c2'), 'EINVAL', 'not-a-regular-file')
  const secret = await refused(t, 'readContainerExit c4 (exit.json -> the secret)', () => box.readContainerExit('c4'), 'ELOOP', 'symlink')
  t.notRegex(secret?.message ?? '', /TOPSECRET/, 'the secret is not quoted back')
  t.deepEqual(snapshot(sentinel), sentinelBefore, 'the sentinel is intact')

  await box.container('c3').prepare()
  await refused(t, 'writeContainerExit c3 (-> /)', () => box.writeContainerExit('c3', { exitCode: 1 }), 'ELOOP', 'symlink')
  await refused(t, 'readContainerExit c3 (-> /)', () => box.readContainerExit('c3'), 'ELOOP', 'symlink')
  t.deepEqual(slash(), slashBefore, '/ is untouched')

  await cleanedUp(t, box, root)
  t.deepEqual(snapshot(sentinel), sentinelBefore, 'the sentinel is intact after cleanup')
  t.deepEqual(slash(), slashBefore, '/ is untouched after cleanup')
}, true)

/** `npm run demo:vm`'s command after `node` (package.json holds exactly this). */
const DEMO_VM = ['--import', 'tsx', 'tools/guest-vm/demo.ts']

function demoVm (args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof run> {
  return run(process.execPath, [...DEMO_VM, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', BOXLITE_LAYOUT_GUEST_TIMEOUT_MS: String(GUEST_TIMEOUT_MS), ...env },
  })
}

test('npm run demo:vm is the command these tests run', (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  t.is(pkg.scripts['demo:vm'], ['node', ...DEMO_VM].join(' '))
})

/** The demo's steps; it exited 0, its JSON conforms, its throw-away home is gone. */
async function demoSteps (t: ExecutionContext, parent: string, env: NodeJS.ProcessEnv = {}): Promise<Array<{ step: string, result: string }>> {
  const r = await demoVm(['--json', '--dir', parent], env)
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as { steps: Array<{ step: string, result: string }> }
  t.true(validateDemo(doc), ajv.errorsText(validateDemo.errors))
  return doc.steps
}

const ajv = new Ajv({ allErrors: true, strict: true })
const validateDemo = ajv.compile(JSON.parse(fs.readFileSync(path.join(repoRoot, 'docs', 'cli-json', 'demo.schema.json'), 'utf8')) as object)

function escapeRegExp (text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

testWith([needs.linux, needs.mount, needs.guest], 'demo:vm: a "guest view (VM)" step with the read ok, every write EROFS and the host write seen; JSON per its schema', async (t) => {
  // The child boots with the cache this file prepares.
  await guestImage(t)
  const parent = scratch(t)
  // One after the other: two TCG guests at once on a small machine can
  // each take longer than their limit.
  const steps = await demoSteps(t, parent)
  const human = await demoVm(['--dir', parent])
  t.is(human.code, 0, human.stderr)

  const guestResult = new RegExp('^read ok; ' + escapeRegExp(WRITE_PROBES.map((w) => `${w} EROFS`).join(', ')) +
    '; host write seen after \\d+ polls \\(\\d+\\.\\d s boot\\)$')
  const vm = steps.filter((s) => s.step === 'guest view (VM)')
  t.is(vm.length, 1, JSON.stringify(steps.map((s) => s.step)))
  t.regex(vm[0]?.result ?? '', guestResult)
  t.is(steps.find((s) => s.step === 'shared mount')?.result, 'bind-ro, read-only')

  const line = human.stdout.split('\n').find((l) => l.startsWith('guest view (VM) '))
  t.truthy(line, human.stdout)
  t.regex(line ?? '', /^guest view \(VM\) +\d+\.\d\d {2}read ok; /)
  t.regex((line ?? '').replace(/^guest view \(VM\) +\d+\.\d\d {2}/, ''), guestResult)

  // Both demos removed their throw-away homes and mounts.
  t.deepEqual(fs.readdirSync(parent), [])
  t.deepEqual(mountsBelow(parent), [])
}, true)

/** The steps after the VM's, as the demo runs them whatever became of it. */
const AFTER_VM = ['shim set', 'shim install', 'socket', 'inspect', 'cleanup']

testWith([needs.linux], 'demo:vm without QEMU: the VM step says skipped and why, the rest runs', async (t) => {
  const parent = scratch(t)
  // PATH is where guestAvailability looks for QEMU; node is run by its path.
  const steps = await demoSteps(t, parent, { PATH: path.join(parent, 'empty-path') })
  t.regex(steps.find((s) => s.step === 'guest view (VM)')?.result ?? '', /^skipped: qemu-system-x86_64 is not installed: apt-get install qemu-system-x86$/)
  t.deepEqual(steps.map((s) => s.step).slice(-AFTER_VM.length), AFTER_VM)
  t.deepEqual(fs.readdirSync(parent), [])
})

testWith([needs.linux, needs.guest], 'demo:vm when the kernel download fails: skipped with apt\'s error, the rest runs', async (t) => {
  const parent = scratch(t)
  // An empty cache and an apt that knows the package but cannot fetch it.
  const cache = path.join(parent, 'cache')
  const fakeApt = path.join(parent, 'fake-apt')
  fs.mkdirSync(fakeApt)
  fs.writeFileSync(path.join(fakeApt, 'apt-cache'), '#!/bin/sh\necho "  Depends: linux-image-0.0.0-0-amd64"\n', { mode: 0o755 })
  fs.writeFileSync(path.join(fakeApt, 'apt-get'), [
    '#!/bin/sh',
    'case "$*" in *--print-uris*) echo "\'http://deb.invalid/k.deb\' k.deb 1 SHA256:00"; exit 0 ;; esac',
    'echo "E: Failed to fetch http://deb.invalid/k.deb" >&2; exit 100',
  ].join('\n') + '\n', { mode: 0o755 })
  const demoDir = path.join(parent, 'demo')
  fs.mkdirSync(demoDir)
  const steps = await demoSteps(t, demoDir, { BOXLITE_LAYOUT_CACHE: cache, PATH: `${fakeApt}:${process.env.PATH ?? ''}` })
  t.is(steps.find((s) => s.step === 'guest view (VM)')?.result,
    'skipped: the guest kernel could not be fetched: apt-get download linux-image-0.0.0-0-amd64 failed (100): E: Failed to fetch http://deb.invalid/k.deb')
  t.deepEqual(steps.map((s) => s.step).slice(-AFTER_VM.length), AFTER_VM)
  t.deepEqual(fs.readdirSync(demoDir), [])
  t.deepEqual(fs.readdirSync(path.join(cache, 'guest')), [], 'no partial cache entry is left')
})
