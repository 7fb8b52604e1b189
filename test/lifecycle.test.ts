// The box lifecycle: one native call per operation (counted), 1000 cycles
// that leave the mount table, /tmp/bl-{uid} and this process's fd count
// exactly at their baseline (serial: fd counts), and no mountinfo read.
import fs from 'node:fs'
import path from 'node:path'
import { mintBoxId, socketLinkParent, type LayoutError } from '../lib/index.ts'
import { binding } from '../lib/native.ts'
import { freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs, privilegedSerial, testWith } from './helpers/env.ts'
import { fdsUnder, repoRoot, run, scratch, writeShimSet } from './helpers/fixtures.ts'
import { mountsBelow } from './helpers/mounts.ts'

privilegedSerial('1000 lifecycles (prepare, ro mount, shim install, cleanup) leave no trace', async (t) => {
  t.timeout(600_000)
  const root = scratch(t)
  const shim = writeShimSet(path.join(root, 'dist'))
  const home = freshHome(t, root)
  // A uid of its own: /tmp/bl-{uid} is this test's alone.
  const uid = privateLinkUid(t)
  const linkDir = socketLinkParent(uid)

  // Warm up once: the baseline is taken with the addon loaded and a box's life behind it.
  const warm = home.box(mintBoxId(), { isolateMounts: true, uid })
  await warm.prepare(); await warm.mountShared(); await warm.installShim(shim); await warm.cleanup()
  const baseline = { mounts: mountsBelow(home.home).length, boxes: fs.readdirSync(home.boxesDir).length }

  for (let i = 0; i < 1000; i++) {
    const box = home.box(mintBoxId(), { isolateMounts: true, uid })
    if (i % 2 === 0) {
      await box.prepare()
      await box.mountShared()
      await box.installShim(shim)
      await box.cleanup()
    } else {
      box.prepareSync()
      box.mountSharedSync()
      box.installShimSync(shim)
      box.cleanupSync()
    }
  }
  t.is(mountsBelow(home.home).length, baseline.mounts, 'mount table at baseline')
  // Every fd the lifecycle opens is on the home, the shim set or the link dir.
  t.deepEqual([...fdsUnder(root), ...fdsUnder(linkDir)], [], 'no fd left open')
  t.deepEqual(fs.readdirSync(linkDir), [], '/tmp/bl-{uid} at baseline')
  t.is(fs.readdirSync(home.boxesDir).length, baseline.boxes)
})

privilegedSerial('one native crossing per public operation; the lifecycle is five, sync or async', async (t) => {
  const root = scratch(t)
  const shim = writeShimSet(path.join(root, 'dist'))
  const home = freshHome(t, root)
  const uid = privateLinkUid(t)
  const crossings = async (fn: () => unknown): Promise<number> => {
    const before = binding().crossings()
    await fn()
    return binding().crossings() - before
  }
  const box = home.box(mintBoxId(), { isolateMounts: true, uid })
  const lifecycle = await crossings(async () => {
    await home.prepare(); await box.prepare(); await box.mountShared(); await box.installShim(shim); await box.cleanup()
  })
  t.is(lifecycle, 5, 'async lifecycle')
  const sync = home.box(mintBoxId(), { isolateMounts: true, uid })
  t.is(await crossings(() => {
    home.prepareSync(); sync.prepareSync(); sync.mountSharedSync(); sync.installShimSync(shim); sync.cleanupSync()
  }), 5, 'sync lifecycle')
  const b = home.box(mintBoxId(), { isolateMounts: true, uid })
  await b.prepare()
  const each: Array<[string, () => unknown]> = [
    ['mountShared', () => b.mountShared()], ['sharedState', () => b.sharedState()], ['unmountShared', () => b.unmountShared()],
    ['installShim', () => b.installShim(shim)], ['writeCa', () => b.writeCa({ cert: 'c', key: 'k' })],
    ['container prepare', () => b.container('c1').prepare()], ['writeContainerExit', () => b.writeContainerExit('c1', { exitCode: 0 })],
    ['readContainerExit', () => b.readContainerExit('c1')], ['pid write', () => b.pidFile.write()], ['pid identity', () => b.pidFile.identity()],
    ['exit write', () => b.exitFile.write({ type: 'signal', exitCode: 137, signal: 'SIGKILL' })], ['exit read', () => b.exitFile.read()],
    ['rotateExit', () => b.rotateExit()], ['inspect', () => b.inspect()], ['validateSameFilesystem', () => home.validateSameFilesystem()],
    ['runtime lock', async () => (await home.acquireRuntimeLock()).release()], ['lock allocate', () => home.lockManager().allocate()],
    // shim.pid names this process (pid write above): only force removes it, in the same one crossing.
    ['cleanup refused', () => b.cleanup().catch((e: LayoutError) => { if (e.reason !== 'shim-alive') throw e })],
    ['cleanup', () => b.cleanup({ force: true })],
  ]
  for (const [name, fn] of each) t.is(await crossings(fn), 1, name)
})

// Cost must not grow with the mount table, so the lifecycle never reads
// /proc/self/mountinfo (statx mount ids instead). Watched from outside with
// strace, in a child running the built library (no TypeScript loader, whose
// esbuild helper reads mountinfo for reasons of its own) twice through.
testWith([needs.linux, needs.mount, needs.tool('strace', 'strace')], 'the box lifecycle never opens /proc/self/mountinfo', async (t) => {
  const root = scratch(t)
  const shim = writeShimSet(path.join(root, 'dist'))
  const home = freshHome(t, root)
  const uid = privateLinkUid(t)
  const trace = path.join(root, 'trace')
  const script = `
    const { HomeLayout } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))})
    const home = new HomeLayout({ home: process.argv[1] })
    const box = home.box('b1', { isolateMounts: true, uid: ${uid} })
    const methods = []
    for (let i = 0; i < 2; i++) {
      await box.prepare()
      methods.push((await box.mountShared()).method)
      await box.installShim(process.argv[2])
      methods.push((box.mountSharedSync()).method)
      await box.unmountShared()
      box.mountSharedSync()
      box.cleanupSync()
    }
    console.log(JSON.stringify(methods))`
  const r = await run('strace', ['-f', '-qq', '-e', 'trace=open,openat,openat2', '-o', trace,
    process.execPath, '--input-type=module', '-e', script, home.home, shim], { cwd: repoRoot })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), ['bind-ro', 'bind-ro', 'bind-ro', 'bind-ro'], 'real mounts were made')
  const opened = fs.readFileSync(trace, 'utf8')
  t.true(opened.includes('boxlite-shim'), 'strace saw the child open its files')
  t.deepEqual(opened.split('\n').filter((l) => l.includes('mountinfo')), [])
  t.deepEqual(mountsBelow(home.home), [])
})
