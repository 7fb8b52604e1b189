// SPEC §10: 1000 box lifecycles leave the mount table, /tmp/bl-{uid} and
// this process's fd count exactly at their baseline. Serial: fd counts.
import fs from 'node:fs'
import path from 'node:path'
import { mintBoxId, socketLinkParent } from '../lib/index.ts'
import { freshHome, parseBoxOpSteps } from './helpers/boxes.ts'
import { needs, privilegedSerial, testWith } from './helpers/env.ts'
import { fdCount, mountsBelow, repoRoot, run, scratch, tsNode } from './helpers/fixtures.ts'

/** root/dist with a 64 KiB shim and one libkrunfw sibling. */
function tinyShimSet (root: string): string {
  const dist = path.join(root, 'dist')
  fs.mkdirSync(dist)
  fs.writeFileSync(path.join(dist, 'boxlite-shim'), Buffer.alloc(64 << 10, 1), { mode: 0o755 })
  fs.writeFileSync(path.join(dist, 'libkrunfw.so.5'), Buffer.alloc(16 << 10, 2))
  return dist
}

privilegedSerial('1000 lifecycles (prepare, ro mount, shim install, cleanup) leave no trace', async (t) => {
  t.timeout(180_000)
  const root = scratch(t)
  const dist = tinyShimSet(root)
  const home = freshHome(t, root)
  const linkDir = socketLinkParent()
  const ours = () => (fs.existsSync(linkDir) ? fs.readdirSync(linkDir) : []).filter((n) => ids.has(n))
  const ids = new Set<string>()
  t.teardown(() => { for (const id of ids) fs.rmSync(path.join(linkDir, id), { force: true }) })

  // Warm up once so lazily opened fds (the addon, tsx) are in the baseline.
  const warm = home.box(mintBoxId(), { isolateMounts: true })
  await warm.prepare(); await warm.mountShared(); await warm.installShim(path.join(dist, 'boxlite-shim')); await warm.cleanup()
  const baseline = { mounts: mountsBelow(home.home).length, fds: fdCount(), boxes: fs.readdirSync(home.boxesDir).length }

  for (let i = 0; i < 1000; i++) {
    const box = home.box(mintBoxId(), { isolateMounts: true })
    ids.add(box.boxId)
    if (i % 2 === 0) {
      await box.prepare()
      await box.mountShared()
      await box.installShim(path.join(dist, 'boxlite-shim'))
      await box.cleanup()
    } else {
      box.prepareSync()
      box.mountSharedSync()
      box.installShimSync(path.join(dist, 'boxlite-shim'))
      box.cleanupSync()
    }
  }
  t.is(mountsBelow(home.home).length, baseline.mounts, 'mount table at baseline')
  t.is(fdCount(), baseline.fds, 'fd count at baseline')
  t.deepEqual(ours(), [], '/tmp/bl-{uid} at baseline')
  t.is(fs.readdirSync(home.boxesDir).length, baseline.boxes)
})

// SPEC §9/§10: cost must not grow with the mount table, so the lifecycle
// never reads /proc/self/mountinfo (statx mount ids instead). Watched from
// outside with strace, in a child that does the whole lifecycle twice.
testWith([needs.linux, needs.mount, needs.tool('strace', 'strace')], 'the box lifecycle never opens /proc/self/mountinfo', async (t) => {
  const root = scratch(t)
  const dist = tinyShimSet(root)
  const home = freshHome(t, root)
  const boxId = mintBoxId()
  t.teardown(() => fs.rmSync(path.join(socketLinkParent(), boxId), { force: true }))
  const trace = path.join(root, 'trace')
  const ops = ['prepare', 'mountShared', 'installShim', 'mountShared', 'unmountShared', 'mountShared', 'cleanup']
  const spec = { home: home.home, boxId, isolateMounts: true, ops: [...ops, ...ops], shim: path.join(dist, 'boxlite-shim') }
  const r = await run('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace,
    process.execPath, ...tsNode('test/fixtures/box-op.ts', JSON.stringify(spec))], { cwd: repoRoot })
  const steps = parseBoxOpSteps(r.stdout)
  t.is(steps.length, spec.ops.length, r.stderr)
  t.true(steps.every((s) => s.ok), JSON.stringify(steps))
  t.is(steps[1]!.result.method, 'bind-ro', 'a real mount was made')
  const opened = fs.readFileSync(trace, 'utf8')
  t.true(opened.includes('box-op.ts'), 'strace saw the child open its files')
  t.deepEqual(opened.split('\n').filter((l) => l.includes('mountinfo')), [])
  t.deepEqual(mountsBelow(home.home), [])
})
