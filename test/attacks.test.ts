// Hostile box contents: what a guest, a jailed shim or a careless operator
// can plant must not steer a root write, chmod, rename, delete or unmount
// outside what the library meant to touch, nor make it hang. Each scenario
// (test/fixtures/attack.ts) runs in a private mount namespace with a private
// /tmp and checks a sentinel outside the home byte for byte, mode for mode.
import test from 'ava'
import { needs, testWith, type Requirement } from './helpers/env.ts'
import { inPrivateNamespace, lastJson } from './helpers/private-ns.ts'

interface Outcome {
  scenario: string
  violations: string[]
  errors: Record<string, string[]>
  counts: Record<string, number>
  sentinelIntact: boolean
}

const unshare: Requirement = needs.tool('unshare', 'util-linux')

type Check = (t: import('ava').ExecutionContext, o: Outcome) => void

function scenario (name: string, title: string, check: Check = () => {}, env: NodeJS.ProcessEnv = {}): void {
  const variant = env.BOXLITE_LAYOUT_RESOLVE === 'walk' ? ' (component walk, as without openat2)' : ''
  testWith([needs.linux, needs.root, unshare], `${name}: ${title}${variant}`, async (t) => {
    t.timeout(600_000)
    const r = await inPrivateNamespace('test/fixtures/attack.ts', [name], env)
    const o = lastJson<Outcome>(t, r)
    t.deepEqual(o.violations, [], r.stderr)
    t.true(o.sentinelIntact, 'the sentinel outside the home is untouched')
    check(t, o)
  })
}

const guestSymlinkCheck: Check = (t, o) => {
  for (const [op, tags] of Object.entries(o.errors)) t.deepEqual(tags, ['ELOOP/symlink'], op)
  t.is(Object.keys(o.errors).length, 6)
}
scenario('guest-container-symlink', 'a guest\'s containers/c1 -> elsewhere: no write, read or mkdir through it', guestSymlinkCheck)
scenario('guest-container-symlink', 'a guest\'s containers/c1 -> elsewhere: no write, read or mkdir through it', guestSymlinkCheck,
  { BOXLITE_LAYOUT_RESOLVE: 'walk' })

scenario('container-exit-temp-race', 'temporaries of writeContainerExit swapped for symlinks, 200 tries sync and async')

scenario('bin-and-ca-symlinks', 'bin/ and ca/ symlinks: installShim, writeCa refused; gc removes nothing in the target', (t, o) => {
  for (const op of ['installShim', 'installShim sync', 'writeCa', 'writeCa sync']) t.deepEqual(o.errors[op], ['ELOOP/symlink'], op)
})

scenario('bin-and-ca-flip-race', 'bin/, ca/ and mounts/ flipped to symlinks in a loop, 200 tries each, sync and async')
scenario('bin-and-ca-flip-race', 'bin/, ca/ and mounts/ flipped to symlinks in a loop, 200 tries each, sync and async', () => {},
  { BOXLITE_LAYOUT_RESOLVE: 'walk' })

scenario('box-dir-symlink', 'boxes/{id} a symlink: prepare refused, cleanup unlinks it; flipped while preparing', (t, o) => {
  t.deepEqual(o.errors.prepare?.[0], 'ELOOP/symlink')
})

scenario('home-tmp-symlink', '{home}/tmp a symlink: prepare and gc refuse, nothing emptied', (t, o) => {
  for (const op of ['home prepare', 'gc', 'gc sync', 'gc dry run']) t.deepEqual(o.errors[op], ['ELOOP/symlink'], op)
})

scenario('home-boxes-symlink', '{home}/boxes a symlink: cleanup and gc refuse; nothing deleted or detached outside', (t, o) => {
  for (const op of ['box cleanup', 'box cleanup sync', 'gc', 'box prepare']) t.deepEqual(o.errors[op], ['ELOOP/symlink'], op)
})

scenario('fifos', 'FIFOs and a device at shim.pid, exit, exit.json, a lock, a libkrunfw.*: errors, never a hang', (t, o) => {
  for (const op of ['pid identity', 'readExit', 'readContainerExit', 'lock', 'installShim']) {
    t.deepEqual(o.errors[op], ['EINVAL/not-a-regular-file'], op)
  }
})

scenario('prepare-cleanup-race', '1000 prepares racing a cleaner: each returns a complete box or ENOENT/ESTALE', (t, o) => {
  t.true((o.counts['prepare ok'] ?? 0) > 0, 'some prepares won')
  t.true((o.counts.cleanups ?? 0) > 0, 'the cleaner ran')
  t.is(o.counts.incomplete, 0)
})

scenario('stray-file-in-boxes', 'a stray file and link in boxes/: gc reports and skips them, and still detaches leaks')

scenario('umask-000', 'under umask 000 every directory and file has its documented mode')

scenario('hardlinked-lock', 'a hard-linked or symlinked .lock is refused, its target never truncated', (t, o) => {
  t.deepEqual(o.errors['runtime lock'], ['EMLINK/hard-linked'])
  t.deepEqual(o.errors['runtime lock (symlink)'], ['ELOOP/symlink'])
})

scenario('no-home', 'gc on a missing home: ENOENT, nothing created', (t, o) => {
  for (const op of ['gc', 'gc sync', 'gc dry run']) t.deepEqual(o.errors[op], ['ENOENT/not-prepared'], op)
})

scenario('quoted-contents', 'pid and exit files pointing at or holding secrets are never quoted back')

scenario('loose-and-foreign-home', 'group/other-writable or foreign-owned home dirs: refused; prepare tightens what we own', (t, o) => {
  t.deepEqual(o.errors['gc (loose)'], ['EPERM/loose-mode'])
  t.deepEqual(o.errors['prepare (foreign)'], ['EPERM/foreign-owner'])
})

scenario('shim-files-symlinks', 'shim.stderr, logs/ or logs/console.log a symlink: box.jail() refuses before spawning; exit rotated as a link', (t, o) => {
  for (const op of ['jail (shim.stderr)', 'jail (console.log)', 'jail (logs/)']) t.deepEqual(o.errors[op], ['ELOOP/symlink'], op)
})

test('every scenario of the fixture has a test here', async (t) => {
  const fs = await import('node:fs')
  const src = fs.readFileSync(new URL('./fixtures/attack.ts', import.meta.url), 'utf8')
  const names = [...src.matchAll(/^ {2}async '?([a-z0-9-]+)'? \(\)/gm)].map((m) => m[1])
  const mine = fs.readFileSync(new URL(import.meta.url), 'utf8')
  for (const name of names) t.true(mine.includes(`scenario('${name!}'`), name!)
})
