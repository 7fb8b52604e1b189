// The examples in examples/ run and do what the README says they do, each
// in a private mount namespace: they use this uid's real /tmp/bl-{uid}.
// (test/readme.test.ts checks that the README shows them verbatim.)
import fs from 'node:fs'
import path from 'node:path'
import { needs, testWith } from './helpers/env.ts'
import { repoRoot, scratch } from './helpers/fixtures.ts'
import { runInPrivateNamespace } from './helpers/private-ns.ts'

const inNamespace = [needs.linux, needs.root, needs.tool('unshare', 'util-linux')]

testWith(inNamespace, 'examples/lifecycle.mjs: mount read-only, install, socket round trip, clean up', async (t) => {
  const r = await runInPrivateNamespace([process.execPath, 'examples/lifecycle.mjs'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^shared\/: bind-ro \(read-only\)$/m)
  t.regex(r.stdout, /^bin\/: boxlite-shim by \S+, libkrunfw\.so\.5 by \S+$/m)
  t.regex(r.stdout, /^ready\.sock says: ready$/m)
  t.regex(r.stdout, /^cleanup: \d+ entries removed, 1 unmounted$/m)
})

testWith(inNamespace, 'examples/runtime-start.mjs: lock, prepare, gc of a crashed predecessor\'s leftovers', async (t) => {
  const home = path.join(scratch(t), 'home')
  fs.mkdirSync(path.join(home, 'tmp'), { recursive: true, mode: 0o700 })
  fs.writeFileSync(path.join(home, 'tmp', 'staging-leftover'), '')
  const r = await runInPrivateNamespace([process.execPath, 'examples/runtime-start.mjs', home], {}, [path.dirname(home)])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^done: remove-tmp .*staging-leftover$/m)
  t.regex(r.stdout, /^1 repairs; live boxes: none; boxes: 0$/m)
})

testWith([...inNamespace, needs.tool('bwrap', 'bubblewrap')], 'examples/runtime-start.mjs with a shim: box.jail() restarts a failing shim, stops at a clean exit', async (t) => {
  const home = path.join(scratch(t), 'home')
  const failing = await runInPrivateNamespace([process.execPath, 'examples/runtime-start.mjs', home, '/bin/sh', '-c', 'exit 66'], {}, [path.dirname(home)])
  t.is(failing.code, 0, failing.stderr)
  for (const run of [1, 2, 3]) t.regex(failing.stdout, new RegExp(`^run ${run}: pid \\d+ ended: error, exit code 66 \\(recorded by the jail\\)$`, 'm'))
  const clean = await runInPrivateNamespace([process.execPath, 'examples/runtime-start.mjs', home, '/bin/sh', '-c', 'exit 0'], {}, [path.dirname(home)])
  t.is(clean.code, 0, clean.stderr)
  t.regex(clean.stdout, /^run 1: pid \d+ exited cleanly$/m)
  t.notRegex(clean.stdout, /^run 2/m)
  t.deepEqual(fs.readdirSync(path.join(home, 'boxes')), [], 'the box was cleaned up')
})

testWith([...inNamespace, needs.tool('bwrap', 'bubblewrap')], 'examples/jailer.sh: prepare, jail the shim, clean up; the shim\'s exit code is the script\'s', async (t) => {
  const root = scratch(t)
  const bin = path.join(root, 'bin')
  fs.mkdirSync(bin)
  fs.writeFileSync(path.join(bin, 'boxlite-layout'), `#!/bin/sh\nexec ${process.execPath} ${path.join(repoRoot, 'dist', 'cli.cjs')} "$@"\n`, { mode: 0o755 })
  const env = { PATH: `${bin}:${process.env.PATH ?? ''}` }
  const home = path.join(root, 'home')
  const ok = await runInPrivateNamespace(['sh', 'examples/jailer.sh', home, '/usr/bin/true'], env, [root])
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /^shared\s+bind-ro \(read-only\)$/m)
  t.regex(ok.stdout, /^shim process\s+absent \(pid \d+\): process is gone$/m, 'the jail wrote shim.pid')
  const failing = await runInPrivateNamespace(['sh', 'examples/jailer.sh', home, '/usr/bin/false'], env, [root])
  t.is(failing.code, 1)
  t.regex(failing.stdout, /^exit\s+\{"type":"error","exitCode":1/m, 'the exit record of the failed shim')
  t.deepEqual(fs.readdirSync(path.join(home, 'boxes')), [], 'the trap cleaned up both boxes')
})
