// The CLI's rails, run as a jailer script runs it (dist/cli.cjs as a child):
// every `box prepare` option checked before anything is created and a
// failure after creation rolled back; `box cleanup` of a live shim refused
// without --force; `lock` holding the runtime lock across a script's calls;
// `box ca`; `box list` on a missing home; suggestions for unknown options.
import test, { type ExecutionContext } from 'ava'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { HomeLayout, mintBoxId, socketLinkParent } from '../lib/index.ts'
import { needs, privileged, testWith } from './helpers/env.ts'
import { pathsBelow, repoRoot, run, scratch, writeShimSet } from './helpers/fixtures.ts'
import { mountsBelow } from './helpers/mounts.ts'
import { conforms } from './helpers/cli-json.ts'

const cli = path.join(repoRoot, 'dist', 'cli.cjs')
function blx (args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, [cli, ...args], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '', BOXLITE_LAYOUT_LOCK_FD: '', ...env } })
}

/** The box's socket link is gone too (our uid's /tmp/bl-{uid}). */
function noLink (t: ExecutionContext, id: string): void {
  t.throws(() => fs.lstatSync(path.join(socketLinkParent(), id)), { code: 'ENOENT' }, `no link left for ${id}`)
}

function linkTeardown (t: ExecutionContext, id: string): void {
  t.teardown(() => fs.rmSync(path.join(socketLinkParent(), id), { force: true }))
}

test('box prepare: every option is checked before anything is created', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  linkTeardown(t, id)
  fs.mkdirSync(path.join(root, 'a-dir'))
  const bad: Array<[string[], number, RegExp]> = [
    [['--shim', '/no/such/shim'], 2, /ERR_INVALID_ARG: --shim \/no\/such\/shim: nothing usable/],
    [['--shim', path.join(root, 'a-dir')], 2, /is not a regular file/],
    [['--shim', ''], 2, /--shim needs the path/],
    [['--require-read-only'], 2, /--require-read-only needs --isolate-mounts/],
    [['--isolat-mounts'], 2, /did you mean --isolate-mounts\?/],
    [['--shimm', '/x'], 2, /did you mean --shim\?/],
  ]
  for (const [options, code, message] of bad) {
    const r = await blx(['box', 'prepare', id, '--home', home, ...options])
    t.is(r.code, code, `${options.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
    const j = await blx(['box', 'prepare', id, '--home', home, ...options, '--json'])
    conforms(t, 'error', JSON.parse(j.stdout))
  }
  for (const home of ['relative/home', '']) {
    t.is((await blx(['box', 'prepare', id, '--home', home])).code, 2, `--home ${JSON.stringify(home)}`)
  }
  t.is((await blx(['box', 'prepare', id, '../x', '--home', home])).code, 2, 'a bad id after a good one')
  t.deepEqual(pathsBelow(root), ['a-dir'], 'nothing created: no home, no box')
  noLink(t, id)
})

test('box prepare --shim: a failure after creation removes the box and its link again; a box that was there stays', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const shim = writeShimSet(path.join(root, 'shim'))
  // A sibling the install must refuse (a directory named like a library):
  // found only once the box exists.
  fs.rmSync(path.join(root, 'shim', 'libkrunfw.so.5'))
  fs.mkdirSync(path.join(root, 'shim', 'libkrunfw.so.5'))
  const id = mintBoxId()
  linkTeardown(t, id)
  const r = await blx(['box', 'prepare', id, '--home', home, '--shim', shim, '--json'])
  t.is(r.code, 1, r.stderr)
  const doc = JSON.parse(r.stdout)
  conforms(t, 'box-prepare', doc)
  t.is(doc.boxes[0].error.reason, 'not-a-regular-file')
  t.false(fs.existsSync(path.join(home, 'boxes', id)), 'no boxes/ID')
  noLink(t, id)

  const kept = mintBoxId()
  linkTeardown(t, kept)
  t.is((await blx(['box', 'prepare', kept, '--home', home])).code, 0)
  t.is((await blx(['box', 'prepare', kept, '--home', home, '--shim', shim])).code, 1)
  t.true(fs.existsSync(path.join(home, 'boxes', kept)), 'a box this call did not make is left as it was')
  t.true(fs.lstatSync(path.join(socketLinkParent(), kept)).isSymbolicLink())
  t.is((await blx(['box', 'cleanup', kept, '--home', home])).code, 0)
})

privileged('box prepare --isolate-mounts --require-read-only: no read-only mount possible, nothing left; with mounts, every option works', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  linkTeardown(t, id)
  const refused = await blx(['box', 'prepare', id, '--home', home, '--isolate-mounts', '--require-read-only'], { BOXLITE_LAYOUT_NO_MOUNTS: '1' })
  t.is(refused.code, 1, refused.stderr)
  t.regex(refused.stderr, /read-only/)
  t.false(fs.existsSync(path.join(home, 'boxes', id)))
  noLink(t, id)

  const shim = writeShimSet(path.join(root, 'shim'))
  const r = await blx(['box', 'prepare', id, '--home', home, '--isolate-mounts', '--require-read-only', '--shim', shim, '--json'])
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout)
  conforms(t, 'box-prepare', doc)
  t.is(doc.boxes[0].shared.method, 'bind-ro')
  t.deepEqual(doc.boxes[0].shim.files.map((f: { name: string }) => f.name), ['boxlite-shim', 'libkrunfw.so.5'])
  t.is((await blx(['box', 'cleanup', id, '--home', home])).code, 0)
  t.deepEqual(mountsBelow(home), [])
})

test('box cleanup refuses a live shim (exit 1, EBUSY shim-alive) unless --force', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  linkTeardown(t, id)
  t.is((await blx(['box', 'prepare', id, '--home', home])).code, 0)
  const shim = spawn('sleep', ['1000'], { stdio: 'ignore' })
  t.teardown(() => { shim.kill('SIGKILL') })
  await new HomeLayout(home).box(id).pidFile.write(shim.pid!)
  const list = JSON.parse((await blx(['box', 'list', '--home', home, '--json'])).stdout)
  conforms(t, 'box-list', list)
  t.is(list.boxes[0].state, 'live')
  const r = await blx(['box', 'cleanup', id, '--home', home, '--json'])
  t.is(r.code, 1)
  const doc = JSON.parse(r.stdout)
  conforms(t, 'box-cleanup', doc)
  t.is(doc.boxes[0].error.code, 'EBUSY')
  t.is(doc.boxes[0].error.reason, 'shim-alive')
  t.true(fs.existsSync(path.join(home, 'boxes', id)))
  const forced = await blx(['box', 'cleanup', id, '--home', home, '--force'])
  t.is(forced.code, 0, forced.stderr)
  t.false(fs.existsSync(path.join(home, 'boxes', id)))
})

test('box list and gc on a missing home fail alike (exit 1, ENOENT not-prepared); gc options are checked', async (t) => {
  const missing = path.join(scratch(t), 'typo')
  for (const args of [['box', 'list'], ['gc']]) {
    const r = await blx([...args, '--home', missing, '--json'])
    t.is(r.code, 1, args.join(' '))
    const doc = JSON.parse(r.stdout)
    conforms(t, 'error', doc)
    t.is(doc.error.code, 'ENOENT')
    t.is(doc.error.reason, 'not-prepared')
  }
  t.false(fs.existsSync(missing))
  t.is((await blx(['gc', '--home', missing, '--exclude', '../x'])).code, 2)
  t.regex((await blx(['gc', '--home', missing, '--grace', 'soon'])).stderr, /--grace takes a number of seconds/)
  t.regex((await blx(['gc', '--dry-rum'])).stderr, /did you mean --dry-run\?/)
  t.regex((await blx(['gc', '--zzzzzzzz'])).stderr, /gc takes --dry-run, --exclude, --grace, --storage, --apply, --home/)
})

test('lock: a jailer script\'s calls run under one runtime lock; any other runtime is refused meanwhile', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  linkTeardown(t, id)
  t.is((await blx(['prepare', '--home', home])).code, 0)
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)}`
  const script = path.join(root, 'start-box.sh')
  fs.writeFileSync(script, [
    '#!/bin/sh',
    'set -e',
    `blx () { ${cmd} "$@"; }`,
    `H=${JSON.stringify(home)}`,
    'echo "fd=$BOXLITE_LAYOUT_LOCK_FD"',
    `blx box prepare ${id} --home "$H"`,
    'blx gc --home "$H" --grace 0 --json > "$1/gc.json"',
    'blx box list --home "$H" --json > "$1/list.json"',
    'blx lock --home "$H" -- true && echo nested=ok',
    // Another runtime (no inherited fd) is refused while we hold the lock.
    'if env -u BOXLITE_LAYOUT_LOCK_FD sh -c "$(command -v node) \\"$2\\" gc --home \\"$H\\"" 2>"$1/other.err"; then echo other=ran; else echo other=refused; fi',
    'if env -u BOXLITE_LAYOUT_LOCK_FD sh -c "$(command -v node) \\"$2\\" lock --home \\"$H\\" -- true" 2>>"$1/other.err"; then echo second=ran; else echo second=refused; fi',
    `blx box cleanup ${id} --home "$H"`,
    'exit 7',
    '',
  ].join('\n'), { mode: 0o755 })
  const r = await run(process.execPath, [cli, 'lock', '--home', home, '--', script, root, cli],
    { cwd: repoRoot, env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, BOXLITE_LAYOUT_LOCK_FD: '' } })
  t.is(r.code, 7, `CMD's status is lock's: ${r.stdout}${r.stderr}`)
  t.regex(r.stdout, /^fd=3$/m)
  t.regex(r.stdout, /^nested=ok$/m)
  t.regex(r.stdout, /^other=refused$/m)
  t.regex(r.stdout, /^second=refused$/m)
  t.regex(fs.readFileSync(path.join(root, 'other.err'), 'utf8'), /EBUSY: .*another BoxLite runtime \(pid \d+\)/)
  const gc = JSON.parse(fs.readFileSync(path.join(root, 'gc.json'), 'utf8'))
  conforms(t, 'gc', gc)
  conforms(t, 'box-list', JSON.parse(fs.readFileSync(path.join(root, 'list.json'), 'utf8')))
  t.false(fs.existsSync(path.join(home, 'boxes', id)))
  // Released when CMD ended: the next runtime gets it.
  t.is((await blx(['gc', '--home', home])).code, 0)
  const signalled = await blx(['lock', '--home', home, '--', 'sh', '-c', 'kill -TERM $$'])
  t.is(signalled.code, 128 + 15)
  t.is((await blx(['lock', '--home', home, '--wait', 'later', '--', 'true'])).code, 2)
  t.is((await blx(['lock', '--home', home])).code, 2, 'a command is required')
  const notThere = await blx(['lock', '--home', home, '--', path.join(root, 'no-such-cmd')])
  t.is(notThere.code, 1)
  t.regex(notThere.stderr, /ENOENT: cannot run/)
})

test('lock --wait: a holder that lets go within the wait hands the lock over; an inherited fd of something else is ignored', async (t) => {
  const home = path.join(scratch(t), 'home')
  t.is((await blx(['prepare', '--home', home])).code, 0)
  // The holder releases when told to (its stdin closes), not after a time.
  const holder = spawn(process.execPath, [cli, 'lock', '--home', home, '--', 'sh', '-c', 'echo held; cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { holder.kill('SIGKILL') })
  await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => { if (d.toString().includes('held')) resolve() }))
  const refused = await blx(['lock', '--home', home, '--', 'true'])
  t.is(refused.code, 1)
  t.regex(refused.stderr, /EBUSY/)
  const waiter = blx(['lock', '--home', home, '--wait', '600', '--', 'sh', '-c', 'echo got it'])
  holder.stdin.end()
  const got = await waiter
  t.is(got.code, 0, got.stderr)
  t.regex(got.stdout, /got it/)
  // fd 0 is not this home's .lock: gc takes the lock itself.
  t.is((await blx(['gc', '--home', home], { BOXLITE_LAYOUT_LOCK_FD: '0' })).code, 0)
  t.is((await blx(['gc', '--home', home], { BOXLITE_LAYOUT_LOCK_FD: 'three' })).code, 2)
})

testWith([needs.linux], 'box ca: writes cert.pem 0644 and key.pem 0600 in ca/ 0700; bad files are refused without a hang', async (t) => {
  const root = scratch(t)
  const home = path.join(root, 'home')
  const id = mintBoxId()
  linkTeardown(t, id)
  const cert = path.join(root, 'ca.pem')
  const key = path.join(root, 'ca.key')
  fs.writeFileSync(cert, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
  fs.writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n')
  const early = await blx(['box', 'ca', id, '--home', home, '--cert', cert, '--key', key])
  t.is(early.code, 1)
  t.regex(early.stderr, /prepare/)
  t.is((await blx(['box', 'prepare', id, '--home', home])).code, 0)
  const r = await blx(['box', 'ca', id, '--home', home, '--cert', cert, '--key', key, '--json'])
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout)
  conforms(t, 'box-ca', doc)
  const box = new HomeLayout(home).box(id)
  t.deepEqual(doc, { boxId: id, cert: box.caCertPath, key: box.caKeyPath })
  t.is(fs.readFileSync(box.caKeyPath, 'utf8'), fs.readFileSync(key, 'utf8'))
  t.is(fs.statSync(box.caDir).mode & 0o777, 0o700)
  t.is(fs.statSync(box.caCertPath).mode & 0o777, 0o644)
  t.is(fs.statSync(box.caKeyPath).mode & 0o777, 0o600)
  const fifo = path.join(root, 'fifo')
  execFileSync('mkfifo', [fifo])
  const refused = await blx(['box', 'ca', id, '--home', home, '--cert', fifo, '--key', key])
  t.is(refused.code, 2)
  t.regex(refused.stderr, /not a regular file/)
  t.is((await blx(['box', 'ca', id, '--home', home, '--cert', cert])).code, 2, '--key is required')
  t.is((await blx(['box', 'ca', id, '--home', home, '--cert', path.join(root, 'none'), '--key', key])).code, 2)
  t.is((await blx(['box', 'cleanup', id, '--home', home])).code, 0)
})

test('the --json types (lib/cli-json.ts) are generated from docs/cli-json/ and current', async (t) => {
  const check = await run(process.execPath, [path.join(repoRoot, 'scripts', 'cli-json-types.mjs'), '--check'], { cwd: repoRoot })
  t.is(check.code, 0, check.stderr)
  const types = fs.readFileSync(path.join(repoRoot, 'lib', 'cli-json.ts'), 'utf8')
  t.is([...types.matchAll(/^export type Cli\w+Json = /gm)].length, fs.readdirSync(path.join(repoRoot, 'docs', 'cli-json')).length, 'one type per schema')
})
