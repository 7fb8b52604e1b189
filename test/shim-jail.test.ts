// box.jail() with the real bubblewrap and a shim compiled at test time
// (fixtures/shim-life.c): a restart loop whose every record is the shim's
// own, a SIGKILLed shim whose record and pid file are right, a shim record
// never overwritten, stderr appended to shim.stderr. Each box binds its
// socket link under a uid of its own (privateLinkUid): /tmp/bl-{uid} is
// the test's alone. docs/design.md, "The shim's life".
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { exitRecordOf, LayoutError, mintBoxId, type BoxLayout, type JailedShim } from '../lib/index.ts'
import { freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'

const jailed = [needs.linux, needs.root, needs.tool('bwrap', 'bubblewrap'), needs.tool('cc', 'gcc')]

let shimBuild: string | undefined
test.after.always(() => { if (shimBuild !== undefined) fs.rmSync(path.dirname(shimBuild), { recursive: true, force: true }) })

/** The stand-in shim, compiled once for this file. */
function builtShim (): string {
  if (shimBuild !== undefined) return shimBuild
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blx-shim-life-'))
  shimBuild = path.join(dir, 'boxlite-shim')
  execFileSync('cc', ['-O2', '-o', shimBuild, path.join(import.meta.dirname, 'fixtures', 'shim-life.c')])
  return shimBuild
}

/** A prepared box with the shim installed in bin/. */
async function shimBox (t: ExecutionContext): Promise<{ box: BoxLayout, shim: string }> {
  const home = freshHome(t)
  const box = home.box(mintBoxId(), { uid: privateLinkUid(t) })
  await box.prepare()
  await box.installShim(builtShim())
  return { box, shim: path.join(box.binDir, 'boxlite-shim') }
}

function startTimeOf (pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!
}

async function stdoutUntil (shim: JailedShim, marker: string): Promise<string> {
  let out = ''
  for await (const chunk of shim.stdout!) {
    out += String(chunk)
    if (out.includes(marker)) return out
  }
  throw new Error(`the shim ended without printing ${marker}: ${out}`)
}

testWith(jailed, 'a restart loop: 20 failures then a success; every record is the shim\'s own, exit.previous the run before', async (t) => {
  t.timeout(300_000)
  const { box, shim } = await shimBox(t)
  let previous: string | null = null
  for (let run = 1; run <= 21; run++) {
    const ok = run === 21
    const own = `{"type":"error","exit_code":${run + 1},"message":"run ${run} failed"}`
    const handle = await box.jail(ok ? [shim, 'exit', '0'] : [shim, 'own', box.exitFilePath, String(run + 1), own])
    t.regex(handle.pidRecord.startTime ?? '', /^[0-9]+$/, `run ${run}: shim.pid has a fingerprint`)
    const end = await handle.exit
    t.is(end.code, ok ? 0 : run + 1, `run ${run}: the shim's status`)
    if (ok) {
      t.like(end, { record: null, recordBy: 'none' })
      t.is(fs.readFileSync(box.exitFilePath, 'utf8'), '', 'a clean exit leaves the empty exit')
      t.is(await box.exitFile.read(), null, 'which reads as no record')
    } else {
      t.is(end.recordBy, 'shim', `run ${run}: the shim wrote its record`)
      t.is(fs.readFileSync(box.exitFilePath, 'utf8'), own, `run ${run}: byte for byte its own`)
    }
    t.is(fs.existsSync(box.exitPreviousPath) ? fs.readFileSync(box.exitPreviousPath, 'utf8') : null, previous,
      `run ${run}: exit.previous holds the run before`)
    previous = fs.readFileSync(box.exitFilePath, 'utf8')
  }
})

testWith(jailed, 'SIGKILL of a jailed shim: record signal SIGKILL (137); shim.pid names the jailed pid with its fingerprint', async (t) => {
  const { box, shim } = await shimBox(t)
  const handle = await box.jail([shim, 'wait'], { stdout: 'pipe' })
  const out = await stdoutUntil(handle, 'READY\n')
  // The shim's own getpid() is the pid bwrap's --info-fd named (the host
  // pid: bwrap shares our pid namespace), not bwrap's.
  t.is(Number(out.split('\n')[0]), handle.pid)
  const [pid, fingerprint] = fs.readFileSync(box.pidFilePath, 'utf8').split('\n')
  t.is(Number(pid), handle.pid)
  t.is(fingerprint, startTimeOf(handle.pid), 'the fingerprint is the jailed process\'s start time')
  t.is((await box.pidFile.identity()).identity, 'verified')
  t.true(handle.kill('SIGKILL'))
  const end = await handle.exit
  t.is(end.code, 137, 'bubblewrap reports 128 + 9')
  t.like(end, { recordBy: 'jail', record: { type: 'signal', exitCode: 137, signal: 'SIGKILL' } })
  t.deepEqual(await box.exitFile.read(), exitRecordOf(null, 'SIGKILL'))
  t.false(handle.kill('SIGKILL'), 'a shim that is gone is not signalled (its pid may be reused)')
  t.is((await box.pidFile.identity()).identity, 'absent')
})

testWith(jailed, 'a shim that writes its own record (even a malformed one) is never overwritten; without one, the status is recorded', async (t) => {
  const { box, shim } = await shimBox(t)
  const panic = '{"type":"panic","exit_code":101,"message":"boom","location":"main.rs:1:1"}'
  let end = await (await box.jail([shim, 'own', box.exitFilePath, '101', panic])).exit
  t.like(end, { code: 101, recordBy: 'shim', record: { type: 'panic', message: 'boom' } })
  t.is(fs.readFileSync(box.exitFilePath, 'utf8'), panic)
  end = await (await box.jail([shim, 'own', box.exitFilePath, '3', '{"type":'])).exit
  t.is(end.recordBy, 'shim')
  t.is(end.error?.reason, 'malformed-record')
  t.is(fs.readFileSync(box.exitFilePath, 'utf8'), '{"type":', 'left as the shim wrote it')
  end = await (await box.jail([shim, 'exit', '66'])).exit
  t.like(end, { recordBy: 'jail', record: { type: 'error', exitCode: 66, errorKind: 'engine' } })
  t.is(fs.readFileSync(box.exitPreviousPath, 'utf8'), '{"type":', 'the malformed one rotated, untouched')
})

testWith(jailed, 'stderr is appended to shim.stderr across runs; exit, logs/console.log and shim.stderr are regular 0644 files', async (t) => {
  const { box, shim } = await shimBox(t)
  for (const [text, code] of [['first run\n', 3], ['second run\n', 4]] as const) {
    const end = await (await box.jail([shim, 'stderr', text, String(code)])).exit
    t.like(end, { code, recordBy: 'jail', record: { type: 'error', exitCode: code } })
  }
  t.is(fs.readFileSync(box.stderrFilePath, 'utf8'), 'first run\nsecond run\n')
  for (const f of [box.exitFilePath, box.consoleOutputPath, box.stderrFilePath]) {
    const st = fs.lstatSync(f)
    t.true(st.isFile(), f)
    t.is(st.mode & 0o777, 0o644, f)
  }
})

testWith(jailed, 'the jail prepares before the policy: sockets/, the link, exit and console.log are granted even when missing', async (t) => {
  const { box, shim } = await shimBox(t)
  fs.rmdirSync(box.socketsDir)
  box.sockets.removeSync()
  fs.rmSync(box.logsDir, { recursive: true })
  const end = await (await box.jail([shim, 'own', box.exitFilePath, '5', '{"type":"error","exit_code":5,"message":"m"}'])).exit
  t.like(end, { recordBy: 'shim', record: { exitCode: 5 } }, 'the shim could write exit: it was granted')
  const grants = (await box.sandboxPolicy()).map((g) => g.path)
  for (const p of [box.socketsDir, box.sockets.bindingDir, box.exitFilePath, box.logsDir]) t.true(grants.includes(p), p)
})

testWith(jailed, 'bad input is refused before anything is touched', async (t) => {
  const { box, shim } = await shimBox(t)
  fs.writeFileSync(box.exitFilePath, '{"type":"error","exit_code":1,"message":"kept"}')
  for (const [command, options] of [[[], {}], [[shim], { stdout: 'tty' }], [[shim], { network: false, networkBackend: true }],
    [[shim], { capabilities: ['a\nb'] }], [[shim], { volumes: [{ path: 'relative' }] }]] as const) {
    await t.throwsAsync(box.jail([...command], options as object), { instanceOf: LayoutError, code: 'ERR_INVALID_ARG' })
  }
  t.false(fs.existsSync(box.exitPreviousPath), 'exit was not rotated')
  t.false(fs.existsSync(box.stderrFilePath))
})

test('jailArgv for darwin refuses a relative shim as the argument that named it, before the disk is read', async (t) => {
  const box = freshHome(t).box(mintBoxId())
  await t.throwsAsync(box.jailArgv(['boxlite-shim'], { platform: 'darwin' }), { instanceOf: LayoutError, code: 'ERR_INVALID_ARG', message: /"command\[0\]" must be an absolute path/ })
  await t.throwsAsync(box.jailArgv(['/bin/x'], { platform: 'darwin', shim: 'boxlite-shim' }), { instanceOf: LayoutError, code: 'ERR_INVALID_ARG', message: /"options\.shim" must be an absolute path/ })
  await t.throwsAsync(box.jailArgv(['/bin/x'], { platform: 'sideways' as 'linux' }), { instanceOf: LayoutError, code: 'ERR_INVALID_ARG', message: /"options\.platform"/ })
  t.false(fs.existsSync(box.root))
})

test('exitRecordOf: 0 is no record, 128 + n a signal, other statuses an engine error, a signal as itself', (t) => {
  t.is(exitRecordOf(0), null)
  t.deepEqual(exitRecordOf(137), { type: 'signal', exitCode: 137, signal: 'SIGKILL' })
  t.deepEqual(exitRecordOf(null, 'SIGSEGV'), { type: 'signal', exitCode: 139, signal: 'SIGSEGV' })
  t.deepEqual(exitRecordOf(1), { type: 'error', exitCode: 1, message: 'exited with status 1', errorKind: 'engine' })
  t.deepEqual(exitRecordOf(128), { type: 'error', exitCode: 128, message: 'exited with status 128', errorKind: 'engine' })
  t.is(exitRecordOf(255)?.type, 'error', '128 + 127 is no signal')
  for (const [code, signal] of [[256, null], [-1, null], [1.5, null], [null, null], [1, 'SIGKILL'], [null, 'SIGNOPE']] as const) {
    t.throws(() => exitRecordOf(code as number, signal as NodeJS.Signals), { code: 'ERR_INVALID_ARG' })
  }
})

testWith(jailed, 'box jail where bind mounts are impossible (macOS; forced here): the shim writes through shared/ -> mounts; --print for darwin', async (t) => {
  const home = path.join(scratch(t), 'home')
  const id = mintBoxId()
  t.teardown(() => fs.rmSync(`/tmp/bl-${process.getuid!()}/${id}`, { force: true }))
  const cli = (...args: string[]) => run(process.execPath, [path.join(repoRoot, 'dist', 'cli.cjs'), ...args],
    { cwd: repoRoot, env: { ...process.env, BOXLITE_LAYOUT_NO_MOUNTS: '1' } })
  const prepared = await cli('box', 'prepare', id, '--isolate-mounts', '--home', home)
  t.is(prepared.code, 0, prepared.stderr)
  const box = path.join(home, 'boxes', id)
  t.is(fs.readlinkSync(path.join(box, 'shared')), 'mounts')
  const jailedRun = await cli('box', 'jail', id, '--home', home, '--', '/bin/sh', '-c', `echo through > ${box}/shared/x; exit 3`)
  t.is(jailedRun.code, 3, fs.readFileSync(path.join(box, 'shim.stderr'), 'utf8'))
  t.is(fs.readFileSync(path.join(box, 'mounts', 'x'), 'utf8'), 'through\n', 'written inside the jail through the link')
  const printed = await cli('box', 'jail', id, '--home', home, '--platform', 'darwin', '--print', '--json', '--', `${box}/bin/boxlite-shim`, 'a b')
  t.is(printed.code, 0, printed.stderr)
  const argv = JSON.parse(printed.stdout) as string[]
  t.deepEqual([argv[0], argv[1]], ['/usr/bin/sandbox-exec', '-p'])
  t.deepEqual(argv.slice(-2), [`${box}/bin/boxlite-shim`, 'a b'])
  t.true(argv[2]!.includes(`(subpath "${box}/mounts")`), 'the profile grants what shared/ stands for')
  const human = await cli('box', 'jail', id, '--home', home, '--platform', 'darwin', '--print', '--', '/bin/x', 'a b')
  t.true(human.stdout.startsWith('/usr/bin/sandbox-exec -p \';; BoxLite Sandbox Policy'), 'shell-quoted')
  t.true(human.stdout.trimEnd().endsWith(' /bin/x \'a b\''))
  const wrong = await cli('box', 'jail', id, '--home', home, '--platform', 'darwin', '--', '/bin/true')
  t.is(wrong.code, 2, 'another platform only with --print')
  t.is((await cli('box', 'cleanup', id, '--home', home)).code, 0)
})

testWith(jailed, 'a jail that ends before it starts the shim is ERR_JAIL_FAILED, with no record; no jail program is ENOENT', async (t) => {
  const { box, shim } = await shimBox(t)
  // A bwrap that fails during its set-up, as a missing bind source makes it.
  const fake = path.join(path.dirname(box.root), 'fake-bin')
  fs.mkdirSync(fake)
  fs.writeFileSync(path.join(fake, 'bwrap'), '#!/bin/sh\necho "bwrap: Can\'t find source path /x: No such file or directory" >&2\nexit 1\n', { mode: 0o755 })
  const e = await t.throwsAsync(box.jail([shim, 'exit', '0'], { env: { PATH: fake } }), { instanceOf: LayoutError })
  t.is(e.code, 'ERR_JAIL_FAILED')
  t.is(e.reason, 'jail-failed')
  t.regex(e.message, /status 1/)
  t.is(fs.readFileSync(box.exitFilePath, 'utf8'), '', 'no record: the shim never ran')
  t.regex(fs.readFileSync(box.stderrFilePath, 'utf8'), /Can't find source path/, 'bwrap\'s own message is in shim.stderr')
  const missing = await t.throwsAsync(box.jail([shim, 'exit', '0'], { env: { PATH: path.join(fake, 'none') } }), { instanceOf: LayoutError })
  t.is(missing.code, 'ENOENT')
  t.regex(missing.message, /install bubblewrap/)
})
