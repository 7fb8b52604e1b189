// shim.pid identity and exit records, byte-compatible with BoxLite.
import test from 'ava'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  formatContainerExit, formatExitRecord, judgeIdentity, LayoutError, parseExitRecord, parsePidFile, PidFile,
  signalExit, type ExitRecord,
} from '../lib/index.ts'
import { freshBox, freshHome } from './helpers/boxes.ts'
import { scratch } from './helpers/fixtures.ts'

test('pid file: pid, start-time fingerprint, capability lines; identity verified', async (t) => {
  const file = path.join(scratch(t), 'shim.pid')
  const pid = new PidFile(file)
  const rec = await pid.write(process.pid, ['net=gvproxy', 'jailer=bwrap'])
  t.is(rec.pid, process.pid)
  t.regex(rec.startTime!, /^[0-9]+$/)
  t.is(fs.readFileSync(file, 'utf8'), `${process.pid}\n${rec.startTime!}\nnet=gvproxy\njailer=bwrap\n`)
  t.deepEqual(pid.readSync(), rec)
  t.deepEqual(await pid.identity(), { identity: 'verified', pid: process.pid, why: 'alive, same start time' })
})

test('pid file: a legacy file (pid only, as older BoxLite writes) reads as legacy while alive', (t) => {
  const file = path.join(scratch(t), 'shim.pid')
  fs.writeFileSync(file, `${process.pid}\n`)
  t.deepEqual(parsePidFile(fs.readFileSync(file, 'utf8')), { pid: process.pid, capabilities: [] })
  t.is(new PidFile(file).identitySync().identity, 'legacy')
})

test('pid file: pid reuse is detected through the fingerprint', (t) => {
  const file = path.join(scratch(t), 'shim.pid')
  const stat = fs.readFileSync('/proc/self/stat', 'utf8')
  const real = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]!
  fs.writeFileSync(file, `${process.pid}\n${BigInt(real) + 1n}\n`)
  const who = new PidFile(file).identitySync()
  t.is(who.identity, 'absent')
  t.regex(who.why, /was reused/)
})

// The fingerprint is a number: zeros padding it past 20 digits change
// nothing, and neither inspect() nor gc may trip over such a file.
test('pid file: a fingerprint zero-padded past 20 digits is read as its number; the live shim stays verified', async (t) => {
  const file = path.join(scratch(t), 'shim.pid')
  // The start time as the library reads it (under qemu-user, /proc/self is the emulator's view).
  const real = new PidFile(file).writeSync(process.pid).startTime!
  const padded = `${'0'.repeat(30)}${real}`
  fs.writeFileSync(file, `${process.pid}\n${padded}\n`)
  t.deepEqual(parsePidFile(fs.readFileSync(file, 'utf8')), { pid: process.pid, startTime: padded, capabilities: [] })
  t.deepEqual(new PidFile(file).identitySync(), { identity: 'verified', pid: process.pid, why: 'alive, same start time' })
  const box = freshBox(t, freshHome(t))
  await box.prepare()
  fs.writeFileSync(box.pidFile.path, `${process.pid}\n${padded}\n`)
  // Sync, as the start time above was read: under qemu-user a pool thread's
  // /proc/<pid>/stat is its own thread's (an emulation quirk, not Linux's).
  t.is(box.inspectSync().shim.identity, 'verified')
  // cleanup's own judgement (native, under the box lock) agrees: a live shim.
  t.is(t.throws(() => box.cleanupSync(), { instanceOf: LayoutError }).reason, 'shim-alive')
  box.cleanupSync({ force: true })
})

// BoxLite on macOS writes proc_pidinfo's start time as tvsec * 1000000 +
// tvusec, a 16-digit number, and a current shim adds its capability line;
// the core's darwin fingerprint is the same number, so these are the
// comparisons a Mac makes (judged here as macOS judges them).
test('pid file: BoxLite\'s macOS records (microsecond start times) are verified, and a reused pid is caught', (t) => {
  const started = `${1733456789n * 1000000n + 123456n}`
  const macRecord = parsePidFile(`4321\n${started}\nservices-mux-v1\n`)
  t.deepEqual(macRecord, { pid: 4321, startTime: '1733456789123456', capabilities: ['services-mux-v1'] })
  t.deepEqual(judgeIdentity(macRecord, { alive: true, startTime: '1733456789123456' }, 'darwin'),
    { identity: 'verified', pid: 4321, why: 'alive, same start time' })
  // Another process got pid 4321 one microsecond later.
  const reused = judgeIdentity(macRecord, { alive: true, startTime: '1733456789123457' }, 'darwin')
  t.is(reused.identity, 'absent')
  t.regex(reused.why, /pid 4321 was reused/)
  t.is(judgeIdentity(macRecord, { alive: false, startTime: '' }, 'darwin').identity, 'absent')
  // A live pid whose start time macOS would not tell: not provably reused.
  t.is(judgeIdentity(macRecord, { alive: true, startTime: '' }, 'darwin').identity, 'legacy')
  t.is(judgeIdentity(macRecord, { alive: true, startTime: '' }, 'linux').identity, 'absent')
  // The shim with no fingerprint writes an empty line 2 before its capability.
  const noPrint = parsePidFile('4321\n\nservices-mux-v1\n')
  t.deepEqual(noPrint, { pid: 4321, capabilities: ['services-mux-v1'] })
  t.is(judgeIdentity(noPrint, { alive: true, startTime: started }, 'darwin').identity, 'legacy')
  // Fingerprints are numbers, as BoxLite parses them: leading zeros do not make a different start time.
  t.is(judgeIdentity(parsePidFile(`4321\n0${started}\n`), { alive: true, startTime: started }, 'darwin').identity, 'verified')
})

test('pid file: a process that died is absent; no file is absent', async (t) => {
  const dir = scratch(t)
  const child = spawn('sleep', ['30'])
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const pid = new PidFile(path.join(dir, 'shim.pid'))
  await pid.write(child.pid!)
  t.is((await pid.identity()).identity, 'verified')
  child.kill('SIGKILL')
  await exited
  t.deepEqual(await pid.identity(), { identity: 'absent', pid: child.pid!, why: 'process is gone' })
  t.deepEqual(new PidFile(path.join(dir, 'none')).identitySync(), { identity: 'absent', why: 'no pid file' })
})

test('pid file: malformed files are a typed error on read and absent for identity', async (t) => {
  const dir = scratch(t)
  for (const [i, text] of ['', 'abc\n', '-5\n', '12x\n', '99999999999\n'].entries()) {
    const file = path.join(dir, `p${i}`)
    fs.writeFileSync(file, text)
    const e = await t.throwsAsync(new PidFile(file).read(), { instanceOf: LayoutError }, JSON.stringify(text))
    t.is(e.code, 'EINVAL')
    t.is(e.reason, 'malformed-record')
    const identity = new PidFile(file).identitySync()
    t.is(identity.identity, 'absent')
    t.true(identity.error instanceof LayoutError)
    t.is(identity.error?.reason, 'malformed-record')
  }
  t.throws(() => new PidFile(path.join(dir, 'w')).writeSync(0), { code: 'ERR_INVALID_ARG' })
})

test('pid file: a line 2 that is not a fingerprint reads as none (legacy while alive), as BoxLite reads it', (t) => {
  const file = path.join(scratch(t), 'shim.pid')
  for (const second of ['notanumber', '-1', '18446744073709551616', '12 34']) {
    fs.writeFileSync(file, `${process.pid}\n${second}\nservices-mux-v1\n`)
    t.deepEqual(new PidFile(file).readSync(), { pid: process.pid, capabilities: ['services-mux-v1'] }, second)
    t.is(new PidFile(file).identitySync().identity, 'legacy', second)
  }
})

// Byte-exact against BoxLite's own serialization (serde, tag first).
const WIRE: Array<[string, ExitRecord]> = [
  ['{"type":"signal","exit_code":134,"signal":"SIGABRT"}', { type: 'signal', exitCode: 134, signal: 'SIGABRT' }],
  ['{"type":"panic","exit_code":101,"message":"assertion failed","location":"main.rs:42:5"}',
    { type: 'panic', exitCode: 101, message: 'assertion failed', location: 'main.rs:42:5' }],
  ['{"type":"error","exit_code":1,"message":"Failed to create VM instance"}',
    { type: 'error', exitCode: 1, message: 'Failed to create VM instance', errorKind: 'engine' }],
  ['{"type":"error","exit_code":1,"message":"nested virtualization is unavailable","error_kind":"unsupported"}',
    { type: 'error', exitCode: 1, message: 'nested virtualization is unavailable', errorKind: 'unsupported' }],
]

for (const [wire, record] of WIRE) {
  test(`exit record round trip: ${record.type}${record.type === 'error' ? `/${record.errorKind}` : ''}`, (t) => {
    t.deepEqual(parseExitRecord(wire), record)
    t.is(formatExitRecord(record), wire)
  })
}

test('exit record: BoxLite\'s documented field order parses too; stderr field of old records ignored', (t) => {
  t.deepEqual(parseExitRecord('{"exit_code":139,"type":"signal","signal":"SIGSEGV","stderr":"x"}'),
    { type: 'signal', exitCode: 139, signal: 'SIGSEGV' })
})

test('exit record: an unknown error_kind reads as engine, keeping the message', (t) => {
  t.deepEqual(parseExitRecord('{"type":"error","exit_code":1,"message":"new error","error_kind":"future_kind"}'),
    { type: 'error', exitCode: 1, message: 'new error', errorKind: 'engine' })
})

test('exit record: signal exits are 128 + n; panics 101', (t) => {
  t.deepEqual(signalExit('SIGKILL'), { type: 'signal', exitCode: 137, signal: 'SIGKILL' })
  t.is(signalExit('SIGABRT').exitCode, 134)
  t.throws(() => signalExit('SIGNOPE' as NodeJS.Signals), { code: 'ERR_INVALID_ARG' })
})

test('exit record: truncated and garbage files are a typed EINVAL, not a crash', (t) => {
  for (const bad of [
    '', '{', '{"type":"signal","exit_code":134', 'null', '[]', '42', 'not json',
    '{"type":"signal","exit_code":"134","signal":"SIGABRT"}', '{"type":"signal","exit_code":134}',
    '{"type":"panic","exit_code":101,"message":"m"}', '{"type":"mystery","exit_code":1}',
    '{"type":"error","exit_code":1.5,"message":"m"}', '{"type":"error","exit_code":1,"message":"m","error_kind":7}',
  ]) {
    const e = t.throws(() => parseExitRecord(bad, '/box/exit'), { instanceOf: LayoutError }, bad)
    t.is(e?.code, 'EINVAL')
    t.is(e?.path, '/box/exit')
  }
})

test('box exit file: write, read, rotate to exit.previous (one slot), ENOENT ignored', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home)
  await box.prepare()
  t.is(await box.exitFile.read(), null)
  t.false(await box.rotateExit(), 'nothing to rotate')
  await box.exitFile.write(signalExit('SIGSEGV'))
  t.is(fs.readFileSync(box.exitFilePath, 'utf8'), '{"type":"signal","exit_code":139,"signal":"SIGSEGV"}')
  t.true(box.rotateExitSync())
  t.false(fs.existsSync(box.exitFilePath))
  t.deepEqual(await box.exitFile.readPrevious(), signalExit('SIGSEGV'))
  box.exitFile.writeSync({ type: 'panic', exitCode: 101, message: 'boom', location: 'a.rs:1:1' })
  t.true(await box.rotateExit())
  t.is(box.exitFile.readPreviousSync()?.type, 'panic', 'the older record was replaced')
  fs.writeFileSync(box.exitFilePath, '{"type":"sig')
  await t.throwsAsync(box.exitFile.read(), { code: 'EINVAL' })
})

test('container exit.json: {"exit_code":N}, written host-side, read guest-side path', async (t) => {
  const home = freshHome(t)
  const box = freshBox(t, home, { isolateMounts: false })
  await box.prepare()
  await box.container('c1').prepare()
  t.is(await box.readContainerExit('c1'), null)
  await box.writeContainerExit('c1', { exitCode: 3 })
  t.is(fs.readFileSync(box.containerExitPath('c1'), 'utf8'), '{"exit_code":3}')
  t.deepEqual(box.readContainerExitSync('c1'), { exitCode: 3 })
  t.is(formatContainerExit({ exitCode: 0 }), '{"exit_code":0}')
  fs.writeFileSync(box.containerExitPath('c1'), '{"exit_code":"x"}')
  t.throws(() => box.readContainerExitSync('c1'), { code: 'EINVAL' })
  t.throws(() => box.readContainerExitSync('../x'), { code: 'ERR_INVALID_ARG' })
})
