// SPEC §8 and issue 7: the built CLI (dist/cli/main.js), run as a child
// process: every command, human and JSON output, exit codes, bad input.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { mintBoxId } from '../lib/index.ts'
import { handToNobody } from './helpers/boxes.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { mountsBelow, repoRoot, run, scratch } from './helpers/fixtures.ts'

const cli = path.join(repoRoot, 'dist', 'cli', 'main.js')

function blx (args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [cli, ...args], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '', ...env } })
}

async function json<T = any> (args: string[]): Promise<T> {
  const r = await blx([...args, '--json'])
  if (r.code !== 0) throw new Error(`exit ${String(r.code)}: ${r.stdout}${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

function tree (dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : []
}

test('the built CLI exists (npm test builds dist/ first)', (t) => {
  t.true(fs.existsSync(cli), 'run `npm run build:ts`')
  const src = fs.statSync(path.join(repoRoot, 'lib', 'cli', 'main.ts')).mtimeMs
  t.true(fs.statSync(cli).mtimeMs >= src - 1000, 'dist/ is older than lib/: rebuild it')
})

test('id: a fresh 12-character base62 id, human and JSON', async (t) => {
  const r = await blx(['id'])
  t.is(r.code, 0)
  t.regex(r.stdout, /^[0-9A-Za-z]{12}\n$/)
  const j = await json<{ id: string }>(['id'])
  t.regex(j.id, /^[0-9A-Za-z]{12}$/)
  t.not(j.id, r.stdout.trim())
})

test('prepare: creates the home; --home works before or after the command', async (t) => {
  const home = path.join(scratch(t), 'home')
  const r = await blx(['--home', home, 'prepare'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /same filesystem\s+yes/)
  t.deepEqual(fs.readdirSync(home).sort(), ['bases', 'boxes', 'images', 'tmp'])
  const j = await json<{ home: string, sameFilesystem: { same: boolean, devices: string[] } }>(['prepare', '--home', home])
  t.is(j.home, home)
  t.true(j.sameFilesystem.same)
  t.is(j.sameFilesystem.devices.length, 3)
})

test('BOXLITE_HOME is the default home', async (t) => {
  const home = path.join(scratch(t), 'env-home')
  const r = await blx(['prepare', '--json'], { BOXLITE_HOME: home })
  t.is(r.code, 0, r.stderr)
  t.is(JSON.parse(r.stdout).home, home)
})

privileged('box prepare --isolate-mounts --require-read-only --shim, inspect, cleanup: human and JSON', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const dist = path.join(root, 'dist')
  fs.mkdirSync(dist)
  fs.writeFileSync(path.join(dist, 'boxlite-shim'), Buffer.alloc(1 << 20, 7), { mode: 0o755 })
  fs.writeFileSync(path.join(dist, 'libkrunfw.so.5'), Buffer.alloc(1 << 19, 8))
  const id = mintBoxId()
  t.teardown(() => fs.rmSync(`/tmp/bl-0/${id}`, { force: true }))

  const human = await blx(['box', 'prepare', id, '--home', home, '--isolate-mounts', '--require-read-only', '--shim', path.join(dist, 'boxlite-shim')])
  t.is(human.code, 0, human.stderr)
  t.regex(human.stdout, /shared\s+bind-ro \(read-only\)/)
  t.regex(human.stdout, /FILE\s+METHOD\s+BYTES\nboxlite-shim\s+\S+\s+1048576\nlibkrunfw\.so\.5\s+\S+\s+524288/)

  const again = await json(['box', 'prepare', id, '--home', home, '--isolate-mounts', '--shim', path.join(dist, 'boxlite-shim')])
  t.is(again.boxId, id)
  t.is(again.socketLink.link, 'kept')
  t.is(again.shared.method, 'bind-ro')
  t.true(again.shared.reused)
  t.deepEqual(again.shim.files.map((f: { method: string }) => f.method), ['skipped', 'skipped'])

  const inspected = await json(['box', 'inspect', id, '--home', home])
  t.is(inspected.boxId, id)
  t.true(inspected.isolateMounts)
  t.deepEqual(inspected.shared, { kind: 'mount', readOnly: true, showsMounts: true, writableSubmounts: [] })
  t.is(inspected.socketLink.state, 'ok')
  t.deepEqual(inspected.bin.map((f: { name: string, mode: string }) => [f.name, f.mode]), [['boxlite-shim', '0755'], ['libkrunfw.so.5', '0644']])
  t.is(inspected.bin[0].reflinked, false, 'copies on ext4 share no extents')
  t.is(inspected.shim.identity, 'absent')
  t.is(inspected.exit, null)
  const ih = await blx(['box', 'inspect', id, '--home', home])
  t.regex(ih.stdout, /shared\s+mount, read-only, shows mounts\//)
  t.regex(ih.stdout, /BIN FILE\s+BYTES\s+MODE\s+REFLINKED/)

  const cleaned = await json(['box', 'cleanup', id, '--home', home])
  t.true(cleaned.removed)
  t.is(cleaned.unmounted, 1)
  t.true(cleaned.socketLink.removed)
  t.deepEqual(mountsBelow(home), [])
  const twice = await blx(['box', 'cleanup', id, '--home', home])
  t.is(twice.code, 0)
  t.regex(twice.stdout, /removed\s+nothing there/)
})

test('gc --dry-run and gc: human and JSON', async (t) => {
  const home = path.join(scratch(t), 'home')
  await json(['prepare', '--home', home])
  fs.writeFileSync(path.join(home, 'tmp', 'leftover'), 'x')
  const dry = await json(['gc', '--dry-run', '--home', home])
  t.true(dry.dryRun)
  const mine = dry.actions.filter((a: { kind: string }) => a.kind === 'remove-tmp')
  t.is(mine.length, 1)
  t.false(mine[0].done)
  t.true(fs.existsSync(path.join(home, 'tmp', 'leftover')))
  const human = await blx(['gc', '--home', home])
  t.is(human.code, 0, human.stderr)
  t.regex(human.stdout, /remove-tmp\s+OK\s+.*leftover/)
  t.false(fs.existsSync(path.join(home, 'tmp', 'leftover')))
})

test('doctor: every check, ok/warn/fail, human and JSON', async (t) => {
  const home = path.join(scratch(t), 'home')
  await json(['prepare', '--home', home])
  const r = await json(['doctor', '--home', home])
  const names = r.checks.map((c: { name: string }) => c.name)
  t.deepEqual(names, ['platform', 'privilege', 'mount api', 'read-only bind', 'reflink', 'home', 'same filesystem',
    'sun_path headroom', 'socket link dir', 'stale state'])
  for (const c of r.checks) t.true(['ok', 'warn', 'fail'].includes(c.status), c.name)
  t.is(r.ok + r.warn + r.fail, r.checks.length)
  const byName = Object.fromEntries(r.checks.map((c: { name: string }) => [c.name, c]))
  t.regex(byName.reflink.detail, /^tried: /, 'reflink is tried, not guessed')
  t.regex(byName['sun_path headroom'].detail, /bytes to spare/)
  const human = await blx(['doctor', '--home', home])
  t.is(human.code, r.fail > 0 ? 1 : 0)
  t.regex(human.stdout, /CHECK\s+STATUS\s+DETAIL/)
  t.regex(human.stdout, /\d+ ok, \d+ warn, \d+ fail/)
  t.false(human.stdout.includes('\u001b['), 'no colour when stdout is not a TTY')
})

testWith([needs.tool('script', 'util-linux')], 'colour only on a TTY, and never with NO_COLOR', async (t) => {
  const home = path.join(scratch(t), 'home')
  const cmd = `${process.execPath} ${cli} doctor --home ${home}`
  const tty = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '' } })
  t.true(tty.stdout.includes('\u001b[1m'), 'bold header on a TTY')
  const plain = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } })
  t.false(plain.stdout.includes('\u001b['), 'NO_COLOR wins')
})

test('exit codes: 2 for usage and bad ids (nothing created), 1 for failures', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const usage = [
    [], ['frobnicate'], ['box'], ['box', 'prepare'], ['box', 'prepare', 'x', '--bogus'],
    ['box', 'prepare', 'x', '--require-read-only'], ['gc', 'extra-arg'],
  ]
  for (const args of usage) {
    const r = await blx([...args, '--home', home])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
  }
  for (const id of ['../etc', 'a/b', 'has space', 'x'.repeat(129), 'ünï', '.']) {
    const r = await blx(['box', 'prepare', id, '--home', home, '--isolate-mounts'])
    t.is(r.code, 2, id)
    t.regex(r.stderr, /^boxlite-layout: ERR_INVALID_ARG: box id must be/)
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, 'one line')
    const j = await blx(['box', 'prepare', id, '--home', home, '--json'])
    t.is(j.code, 2)
    t.is(JSON.parse(j.stdout).error.code, 'ERR_INVALID_ARG')
  }
  t.deepEqual(tree(root), [], 'nothing created for bad input')
  const relative = await blx(['prepare', '--home', 'relative/home'])
  t.is(relative.code, 2)
  const missing = await blx(['box', 'inspect', 'nosuchbox', '--home', home])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /^boxlite-layout: ENOENT: there is no box nosuchbox/)
  const missingJson = await blx(['box', 'inspect', 'nosuchbox', '--home', home, '--json'])
  t.is(missingJson.code, 1)
  t.deepEqual(Object.keys(JSON.parse(missingJson.stdout).error).sort(), ['code', 'errno', 'message', 'path'])
  const help = await blx(['box', 'prepare', '--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /--isolate-mounts/)
})

privileged('demo as root: read-only mount, socket round trip, cleanup; human and JSON', async (t) => {
  const parent = scratch(t)
  const r = await blx(['demo', '--dir', parent])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /STEP\s+MS\s+RESULT/)
  t.regex(r.stdout, /shared mount\s+[\d.]+\s+bind-ro, read-only/)
  t.regex(r.stdout, /guest view.*write refused \(EROFS\)/)
  t.regex(r.stdout, /socket.*round trip "pong:ping"/)
  t.regex(r.stdout, /fell back: shim copied with copy_file_range|no fallbacks/)
  t.deepEqual(fs.readdirSync(parent), [], 'throw-away home removed')
  const j = await json(['demo', '--dir', parent])
  t.deepEqual(j.steps.map((s: { step: string }) => s.step),
    ['home prepare', 'box prepare', 'shared mount', 'guest view', 'shim set', 'shim install', 'socket', 'inspect', 'cleanup'])
  t.false(j.kept)
  const kept = await json(['demo', '--dir', parent, '--keep'])
  t.true(kept.kept)
  t.true(fs.existsSync(kept.home))
  const inspected = await json(['box', 'inspect', kept.boxId, '--home', kept.home])
  t.is(inspected.shared.kind, 'mount')
  await json(['box', 'cleanup', kept.boxId, '--home', kept.home])
})

testWith([needs.linux, needs.root, needs.tool('setpriv', 'util-linux')], 'demo as an unprivileged user completes, reporting the symlink fallback', async (t) => {
  const parent = path.join(scratch(t), 'nobody')
  handToNobody(parent)
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'demo', '--dir', parent],
    { cwd: repoRoot, env: { ...process.env, HOME: parent } })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /shared mount\s+[\d.]+\s+symlink, WRITABLE by the guest/)
  t.regex(r.stdout, /fell back: shared\/ is a symlink to mounts\/, not a read-only mount \(EPERM: mounting needs CAP_SYS_ADMIN/)
  t.deepEqual(fs.readdirSync(parent), [])
})
