// The built CLI (dist/cli.cjs), run as a child process the way a jailer
// script runs it: every command, human and JSON output (each JSON document
// checked against its schema in docs/cli-json/), exit codes, bad input, help,
// the man page.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { manPage } from '../lib/cli/spec.ts'
import { mintBoxId } from '../lib/index.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { pathsBelow, repoRoot, run, scratch, writeShimSet } from './helpers/fixtures.ts'
import { mountsBelow } from './helpers/mounts.ts'
import { asNobody, NOBODY, packageForNobody } from './helpers/other-user.ts'
import { conforms } from './helpers/cli-json.ts'

const cli = path.join(repoRoot, 'dist', 'cli.cjs')

function blx (args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [cli, ...args], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env } })
}

async function json<T = any> (t: import('ava').ExecutionContext, schema: string, args: string[]): Promise<T> {
  const r = await blx([...args, '--json'])
  if (r.code !== 0) throw new Error(`exit ${String(r.code)}: ${r.stdout}${r.stderr}`)
  const doc = JSON.parse(r.stdout) as T
  conforms(t, schema, doc)
  return doc
}

test('the built CLI exists (npm test builds dist/ first) and is one file', (t) => {
  t.true(fs.existsSync(cli), 'run `npm run build:ts`')
  const src = fs.statSync(path.join(repoRoot, 'lib', 'cli', 'main.ts')).mtimeMs
  t.true(fs.statSync(cli).mtimeMs >= src - 1000, 'dist/ is older than lib/: rebuild it')
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  t.is(path.join(repoRoot, pkg.bin['boxlite-layout']!), cli)
})

test('id: a fresh 12-character base62 id, human and JSON', async (t) => {
  const r = await blx(['id'])
  t.is(r.code, 0)
  t.regex(r.stdout, /^[0-9A-Za-z]{12}\n$/)
  const j = await json<{ id: string }>(t, 'id', ['id'])
  t.not(j.id, r.stdout.trim())
})

test('prepare: creates the home; --home works before or after the command', async (t) => {
  const home = path.join(scratch(t), 'home')
  const r = await blx(['--home', home, 'prepare'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /same filesystem\s+yes/)
  t.deepEqual(fs.readdirSync(home).sort(), ['bases', 'boxes', 'images', 'tmp'])
  fs.chmodSync(path.join(home, 'bases'), 0o777)
  const j = await json(t, 'prepare', ['prepare', '--home', home])
  t.is(j.home, home)
  t.deepEqual(j.repaired, [path.join(home, 'bases')])
  t.true(j.sameFilesystem.same)
})

test('BOXLITE_HOME is the default home; an empty one is refused', async (t) => {
  const home = path.join(scratch(t), 'env-home')
  const r = await blx(['prepare', '--json'], { BOXLITE_HOME: home })
  t.is(r.code, 0, r.stderr)
  t.is(JSON.parse(r.stdout).home, home)
  const empty = await blx(['prepare'], { BOXLITE_HOME: '' })
  t.is(empty.code, 2)
  t.regex(empty.stderr, /"BOXLITE_HOME" must be an absolute path/)
})

privileged('box prepare several ids with --isolate-mounts --require-read-only --shim; inspect; list; cleanup several', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const shim = writeShimSet(path.join(root, 'dist'), { shimBytes: 1 << 20, libBytes: 1 << 19 })
  const ids = [mintBoxId(), mintBoxId()]
  t.teardown(() => { for (const id of ids) fs.rmSync(`/tmp/bl-0/${id}`, { force: true }) })

  const human = await blx(['box', 'prepare', ...ids, '--home', home, '--isolate-mounts', '--require-read-only', '--shim', shim])
  t.is(human.code, 0, human.stderr)
  t.is(human.stdout.match(/shared\s+bind-ro \(read-only\)/g)?.length, 2)
  t.regex(human.stdout, /FILE\s+METHOD\s+BYTES\nboxlite-shim\s+\S+\s+1048576\nlibkrunfw\.so\.5\s+\S+\s+524288/)

  const again = await json(t, 'box-prepare', ['box', 'prepare', ids[0]!, '--home', home, '--isolate-mounts', '--shim', shim])
  const [first] = again.boxes
  t.is(first.boxId, ids[0])
  t.is(first.socketLink.link, 'kept')
  t.is(first.shared.method, 'bind-ro')
  t.true(first.shared.reused)
  t.deepEqual(first.shim.files.map((f: { method: string }) => f.method), ['skipped', 'skipped'])

  const inspected = await json(t, 'box-inspect', ['box', 'inspect', ids[0]!, '--home', home])
  t.true(inspected.isolateMounts)
  t.deepEqual(inspected.shared, { kind: 'mount', readOnly: true, showsMounts: true, writableSubmounts: [] })
  t.is(inspected.socketLink.state, 'ok')
  t.deepEqual(inspected.sockets.map((s: { state: string }) => s.state), ['missing', 'missing', 'missing', 'missing', 'missing'])
  t.deepEqual(inspected.bin.map((f: { name: string, mode: string }) => [f.name, f.mode]), [['boxlite-shim', '0755'], ['libkrunfw.so.5', '0644']])
  t.is(inspected.shim.identity, 'absent')
  t.is(inspected.exit, null)
  const ih = await blx(['box', 'inspect', ids[0]!, '--home', home])
  t.regex(ih.stdout, /shared\s+mount, read-only, shows mounts\//)
  t.regex(ih.stdout, /BIN FILE\s+BYTES\s+MODE\s+REFLINKED/)

  // A live shim, a trash dir and a stray file, as box list shows them.
  fs.writeFileSync(path.join(home, 'boxes', ids[1]!, 'shim.pid'), `${process.pid}\n`)
  fs.mkdirSync(path.join(home, 'boxes', '.trash-gone-00000000'))
  fs.writeFileSync(path.join(home, 'boxes', 'stray.txt'), '')
  const list = await json(t, 'box-list', ['box', 'list', '--home', home])
  const byName = Object.fromEntries(list.boxes.map((b: { name: string }) => [b.name, b]))
  t.is(byName[ids[0]!].state, 'mounted')
  t.deepEqual(byName[ids[0]!].shared, { kind: 'mount', readOnly: true })
  t.is(byName[ids[0]!].socketLink, 'ok')
  t.is(byName[ids[0]!].binFiles, 2)
  t.is(byName[ids[1]!].state, 'live')
  t.deepEqual(byName[ids[1]!].shim, { pid: process.pid, alive: true, identity: 'legacy' })
  t.is(byName['.trash-gone-00000000'].state, 'trash')
  t.is(byName['stray.txt'].state, 'stray')
  const lh = await blx(['box', 'list', '--home', home])
  t.deepEqual(byName[ids[0]!].sockets, [], 'no socket bound yet')
  t.is(byName['stray.txt'].sockets, null)
  t.regex(lh.stdout, /^BOX\s+STATE\s+SHARED\s+LINK\s+SOCKETS\s+SHIM\s+BIN$/m)
  t.regex(lh.stdout, new RegExp(`^${ids[0]!}\\s+mounted\\s+mount ro\\s+ok\\s+none\\s+-\\s+2$`, 'm'))
  t.regex(lh.stdout, new RegExp(`^${ids[1]!}\\s+live\\s+mount ro\\s+ok\\s+none\\s+${process.pid} alive\\s+2$`, 'm'))

  // ids[1]'s pid file names this (live) process: only --force removes it.
  const refused = await blx(['box', 'cleanup', ids[1]!, '--home', home])
  t.is(refused.code, 1)
  t.regex(refused.stderr, /EBUSY: cannot clean up box .*shim is alive/)
  const cleaned = await json(t, 'box-cleanup', ['box', 'cleanup', ...ids, '--home', home, '--force'])
  t.deepEqual(cleaned.boxes.map((b: { removed: boolean, unmounted: number }) => [b.removed, b.unmounted]), [[true, 1], [true, 1]])
  t.deepEqual(mountsBelow(home), [])
  const twice = await blx(['box', 'cleanup', ids[0]!, '--home', home])
  t.is(twice.code, 0)
  t.regex(twice.stdout, /nothing there/)
})

test('box jail --print: the bwrap argv, human (shell-quoted) and JSON; a command is required', async (t) => {
  const home = path.join(scratch(t), 'home')
  const id = mintBoxId()
  const link = `/tmp/bl-${process.getuid!()}/${id}`
  t.teardown(() => fs.rmSync(link, { force: true }))
  t.is((await blx(['box', 'prepare', id, '--home', home])).code, 0)
  // --json before "--": everything after it belongs to the command.
  const r = await blx(['box', 'jail', id, '--home', home, '--print', '--json', '--', '/bin/echo', 'two words'])
  t.is(r.code, 0, r.stderr)
  const argv = JSON.parse(r.stdout) as string[]
  conforms(t, 'box-jail', argv)
  t.is(argv[0], 'bwrap')
  t.deepEqual(argv.slice(-3), ['--', '/bin/echo', 'two words'])
  const human = await blx(['box', 'jail', id, '--home', home, '--print', '--', '/bin/echo', 'two words'])
  t.true(human.stdout.trim().endsWith("-- /bin/echo 'two words'"), human.stdout)
  t.is((await blx(['box', 'jail', id, '--home', home, '--print'])).code, 2, 'no command: usage')
  t.is((await blx(['box', 'cleanup', id, '--home', home])).code, 0)
})

test('gc --dry-run and gc: human and JSON; a missing home is refused, not created', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  await json(t, 'prepare', ['prepare', '--home', home])
  fs.writeFileSync(path.join(home, 'tmp', 'leftover'), 'x')
  const dry = await json(t, 'gc', ['gc', '--dry-run', '--home', home])
  const mine = dry.actions.filter((a: { kind: string }) => a.kind === 'remove-tmp')
  t.is(mine.length, 1)
  t.false(mine[0].done)
  t.true(fs.existsSync(path.join(home, 'tmp', 'leftover')))
  const human = await blx(['gc', '--home', home])
  t.is(human.code, 0, human.stderr)
  t.regex(human.stdout, /remove-tmp\s+OK\s+.*leftover/)
  t.false(fs.existsSync(path.join(home, 'tmp', 'leftover')))
  const missing = path.join(root, 'does', 'not', 'exist')
  const r = await blx(['gc', '--home', missing, '--json'])
  t.is(r.code, 1)
  conforms(t, 'error', JSON.parse(r.stdout))
  t.is(JSON.parse(r.stdout).error.code, 'ENOENT')
  t.false(fs.existsSync(path.join(root, 'does')), 'gc never creates a home')
})

test('doctor: every check, ok/warn/fail, human and JSON; its hints run as pasted', async (t) => {
  const home = path.join(scratch(t), 'my home')
  const before = await json(t, 'doctor', ['doctor', '--home', home])
  const homeCheck = before.checks.find((c: { name: string }) => c.name === 'home')
  t.is(homeCheck.status, 'warn')
  t.is(homeCheck.hint, `run \`boxlite-layout prepare --home '${home}'\``, 'repeats --home, quoted')
  await json(t, 'prepare', ['prepare', '--home', home])
  const r = await json(t, 'doctor', ['doctor', '--home', home])
  t.deepEqual(r.checks.map((c: { name: string }) => c.name), ['platform', 'privilege', 'mount api', 'read-only bind', 'reflink', 'home',
    'same filesystem', 'sun_path headroom', 'socket link dir', 'stale state'])
  t.is(r.ok + r.warn + r.fail, r.checks.length)
  const byName = Object.fromEntries(r.checks.map((c: { name: string }) => [c.name, c]))
  t.regex(byName.reflink.detail, /^tried: /, 'reflink is tried, not guessed')
  t.regex(byName['sun_path headroom'].detail, /bytes to spare/)
  t.is(byName.home.status, 'ok')
  const human = await blx(['doctor', '--home', home])
  t.is(human.code, r.fail > 0 ? 1 : 0)
  t.regex(human.stdout, /CHECK\s+STATUS\s+DETAIL/)
  t.regex(human.stdout, /\d+ ok, \d+ warn, \d+ fail/)
  t.false(human.stdout.includes('\u001b['), 'no colour when stdout is not a TTY')
  // A loose home directory is what doctor reports, with the command that fixes it.
  fs.chmodSync(path.join(home, 'boxes'), 0o777)
  const failing = await blx(['doctor', '--home', home, '--json'])
  t.is(failing.code, 1, 'a failed check is exit 1')
  const loose = JSON.parse(failing.stdout)
  conforms(t, 'doctor', loose)
  const looseHome = loose.checks.find((c: { name: string }) => c.name === 'home')
  t.is(looseHome.status, 'fail')
  t.regex(looseHome.detail, /mode 0777/)
})

testWith([needs.tool('script', 'util-linux')], 'colour on a TTY or with FORCE_COLOR; never with NO_COLOR', async (t) => {
  const cmd = `${process.execPath} ${cli} --help`
  const tty = await run('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } })
  t.is(tty.code, 0)
  const home = path.join(scratch(t), 'home')
  await json(t, 'prepare', ['prepare', '--home', home])
  const list = `${process.execPath} ${cli} box list --home ${home}`
  const ttyList = await run('script', ['-qec', list, '/dev/null'], { env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } })
  t.regex(ttyList.stdout, /no boxes in/)
  const doctor = `${process.execPath} ${cli} doctor --home ${home}`
  const onTty = await run('script', ['-qec', doctor, '/dev/null'], { env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } })
  t.true(onTty.stdout.includes('\u001b[1m'), 'bold header on a TTY')
  const forced = await blx(['doctor', '--home', home], { FORCE_COLOR: '1' })
  t.true(forced.stdout.includes('\u001b[1m'), 'FORCE_COLOR colours a pipe')
  const noColor = await run('script', ['-qec', doctor, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '1' } })
  t.false(noColor.stdout.includes('\u001b['), 'NO_COLOR wins')
})

test('usage errors: exit 2, one line, no parser internals; help lists the exit codes', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const usage = [
    ['frobnicate'], ['box'], ['box', 'prepare'], ['box', 'prepare', 'x', '--bogus'],
    ['box', 'prepare', 'x', '--require-read-only'], ['gc', 'extra-arg'], ['box', 'inspect', 'a', 'b'],
  ]
  for (const args of usage) {
    const r = await blx([...args, '--home', home])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^boxlite-layout: ERR_USAGE: /m)
    t.false(/outputHelp|commander|\(see --help\)|TypeError|at .*\.js:\d+/.test(r.stderr), r.stderr)
    const j = await blx([...args, '--home', home, '--json'])
    t.is(j.code, 2)
    const doc = JSON.parse(j.stdout)
    conforms(t, 'error', doc)
    t.is(doc.error.code, 'ERR_USAGE')
    t.false(doc.error.message.endsWith('\n') || doc.error.message.includes('(see --help)'), JSON.stringify(doc.error.message))
  }
  const bare = await blx(['box'])
  t.regex(bare.stderr, /Usage: boxlite-layout box <command>/, 'box alone prints its help')
  // demo and id take no --home.
  for (const args of [['demo', '--home', home], ['id', '--home', home]]) t.is((await blx(args)).code, 2, args.join(' '))
  const none = await blx([])
  t.is(none.code, 2)
  t.regex(none.stderr, /Usage: boxlite-layout/)
  const help = await blx(['box', 'prepare', '--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /--isolate-mounts/)
  t.regex(help.stdout, /Exit codes: 0 success, 1 failure, 2 usage/)
  t.regex((await blx(['--help'])).stdout, /Exit codes: 0 success, 1 failure, 2 usage/)
  t.deepEqual(pathsBelow(root), [], 'nothing created for bad usage')
})

test('bad ids and paths: exit 2 (ERR_INVALID_ARG), nothing created; failures exit 1', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  for (const id of ['../etc', 'a/b', 'has space', 'x'.repeat(129), 'ünï', '.']) {
    const r = await blx(['box', 'prepare', 'ok1', id, '--home', home, '--isolate-mounts'])
    t.is(r.code, 2, id)
    t.regex(r.stderr, /^boxlite-layout: ERR_INVALID_ARG: "boxId" must be/)
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, 'one line')
    const j = await blx(['box', 'prepare', id, '--home', home, '--json'])
    t.is(j.code, 2)
    t.is(JSON.parse(j.stdout).error.code, 'ERR_INVALID_ARG')
  }
  t.deepEqual(pathsBelow(root), [], 'nothing created for bad input, not even the good id before it')
  t.is((await blx(['prepare', '--home', 'relative/home'])).code, 2)
  const missing = await blx(['box', 'inspect', 'nosuchbox', '--home', home])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /^boxlite-layout: ENOENT: cannot inspect box nosuchbox: .*does not exist/)
  const missingJson = await blx(['box', 'inspect', 'nosuchbox', '--home', home, '--json'])
  t.is(missingJson.code, 1)
  const e = JSON.parse(missingJson.stdout)
  conforms(t, 'error', e)
  t.is(e.error.reason, 'not-prepared')
})

privileged('demo as root: read-only mount, socket round trip, cleanup; --keep prints the command that removes it', async (t) => {
  const parent = scratch(t)
  const r = await blx(['demo', '--dir', parent])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /STEP\s+MS\s+RESULT/)
  t.regex(r.stdout, /shared mount\s+[\d.]+\s+bind-ro, read-only/)
  t.regex(r.stdout, /guest view.*write refused \(EROFS\)/)
  t.regex(r.stdout, /socket.*round trip "pong:ping"/)
  t.deepEqual(fs.readdirSync(parent), [], 'throw-away home removed')
  const j = await json(t, 'demo', ['demo', '--dir', parent])
  t.deepEqual(j.steps.map((s: { step: string }) => s.step),
    ['home prepare', 'box prepare', 'shared mount', 'guest view', 'shim set', 'shim install', 'socket', 'inspect', 'cleanup'])
  const kept = await json(t, 'demo', ['demo', '--dir', parent, '--keep'])
  t.true(kept.kept)
  t.true(mountsBelow(kept.home).length > 0, 'kept with its mount')
  const human = await blx(['demo', '--dir', parent, '--keep'])
  const command = /^remove it with: (.*)$/m.exec(human.stdout)![1]!
  // The command as an operator pastes it, with boxlite-layout on PATH.
  const bin = path.join(scratch(t), 'bin')
  fs.mkdirSync(bin)
  fs.writeFileSync(path.join(bin, 'boxlite-layout'), `#!/bin/sh\nexec ${process.execPath} ${cli} "$@"\n`, { mode: 0o755 })
  for (const c of [kept.cleanup, command]) {
    const removed = await run('sh', ['-c', c], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } })
    t.is(removed.code, 0, removed.stderr)
  }
  t.deepEqual(fs.readdirSync(parent), [], 'the printed command removed everything')
  t.deepEqual(mountsBelow(parent), [])
})

testWith([needs.linux, needs.root, needs.tool('setpriv', 'util-linux')], 'demo as an unprivileged user completes, reporting the symlink fallback', async (t) => {
  const pkg = packageForNobody(t)
  const parent = path.join(scratch(t), 'nobody')
  fs.mkdirSync(parent)
  fs.chmodSync(path.dirname(parent), 0o755)
  fs.chownSync(parent, NOBODY, NOBODY)
  const r = await run(asNobody[0]!, [...asNobody.slice(1), process.execPath, path.join(pkg, 'dist', 'cli.cjs'), 'demo', '--dir', parent],
    { cwd: '/', env: { ...process.env, HOME: parent } })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /shared mount\s+[\d.]+\s+symlink, WRITABLE by the guest/)
  t.regex(r.stdout, /fell back: shared\/ is a symlink to mounts\/, not a read-only mount \(EPERM: mounting needs CAP_SYS_ADMIN/)
  t.deepEqual(fs.readdirSync(parent), [])
})

test('the man page is made from the command table, is current, and renders', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string, man: string[] }
  const page = path.join(repoRoot, pkg.man[0]!)
  t.is(fs.readFileSync(page, 'utf8'), manPage(pkg.version), 'stale: run `npm run man`')
  const r = await run('man', ['-P', 'cat', page], { env: { ...process.env, MANWIDTH: '100' } })
  t.is(r.code, 0, r.stderr)
  for (const heading of ['NAME', 'SYNOPSIS', 'COMMANDS', 'EXIT STATUS', 'ENVIRONMENT']) t.regex(r.stdout, new RegExp(`^${heading}$`, 'm'))
  t.regex(r.stdout, /boxlite-layout box prepare \[options\] ID\.\.\./)
})
