// BoxLite's sandbox policy for a box, rule by rule, and the bubblewrap argv
// built from it: only paths that exist, in BoxLite's order, never a symlink,
// never mounts/, shim.pid or shim.stderr, every per-box grant inside the box.
import test, { type ExecutionContext } from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import {
  CA_STORES, HomeLayout, LayoutError, mintBoxId, NESTED_VIRT_PROBES, SYSTEM_RO_BINDS, type BoxLayout, type PolicyGrant,
} from '../lib/index.ts'
import type { NativePolicyFacts } from '../lib/native.ts'
import { grantsOf, policyHostPaths, type PolicyBox } from '../lib/policy.ts'
import { freshHome, privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { qcow2, scratch } from './helpers/fixtures.ts'

async function preparedBox (t: ExecutionContext): Promise<{ box: BoxLayout, root: string }> {
  const root = scratch(t)
  const home = freshHome(t, root)
  const box = home.box(mintBoxId(), { uid: privateLinkUid(t) })
  await box.prepare()
  return { box, root }
}

const ro = (p: string): PolicyGrant => ({ path: p, writable: false })
const rw = (p: string): PolicyGrant => ({ path: p, writable: true })
const systemCas = () => CA_STORES.filter((p) => fs.existsSync(p)).map(ro)

test('a freshly prepared box: tmp, logs, sockets with link and its parent, shared, bases, CA stores, in order', async (t) => {
  const { box } = await preparedBox(t)
  t.deepEqual(await box.sandboxPolicy(), [
    rw(box.tmpDir), rw(box.logsDir),
    rw(box.socketsDir), rw(box.sockets.bindingDir), ro(box.sockets.parentDir),
    rw(box.sharedDir),
    ro(path.join(box.home!, 'bases')),
    ...systemCas(),
  ])
})

test('exit and both disks (rw) after the sockets, bin and boot (ro) before shared; never mounts/, shim.pid, shim.stderr', async (t) => {
  const { box } = await preparedBox(t)
  for (const f of [box.exitFilePath, box.pidFilePath, box.stderrFilePath]) fs.writeFileSync(f, '')
  qcow2(box.diskPath)
  qcow2(box.guestRootfsDiskPath)
  fs.mkdirSync(box.binDir)
  fs.mkdirSync(box.bootDir)
  fs.mkdirSync(path.join(box.root, 'mounts'))
  const grants = box.sandboxPolicySync()
  t.deepEqual(grants.slice(0, 11), [
    rw(box.tmpDir), rw(box.logsDir), rw(box.socketsDir), rw(box.sockets.bindingDir), ro(box.sockets.parentDir),
    rw(box.exitFilePath), rw(box.diskPath), rw(box.guestRootfsDiskPath), ro(box.binDir), ro(box.bootDir), rw(box.sharedDir),
  ])
  for (const never of [path.join(box.root, 'mounts'), box.pidFilePath, box.stderrFilePath]) {
    t.false(grants.some((g) => g.path === never), never)
  }
})

test('without sockets/ there are no socket grants', async (t) => {
  const { box } = await preparedBox(t)
  fs.rmdirSync(box.socketsDir)
  const grants = await box.sandboxPolicy()
  for (const p of [box.socketsDir, box.sockets.bindingDir, box.sockets.parentDir]) t.false(grants.some((g) => g.path === p), p)
})

test('every per-box grant lies inside the box dir; the others are exactly link, its parent, bases, CA stores, volumes', async (t) => {
  const { box, root } = await preparedBox(t)
  fs.writeFileSync(box.exitFilePath, '')
  fs.mkdirSync(box.binDir)
  const volume = path.join(root, 'volume')
  fs.mkdirSync(volume)
  const grants = await box.sandboxPolicy({ volumes: [{ path: volume }] })
  const outside = grants.filter((g) => !g.path.startsWith(`${box.root}/`)).map((g) => g.path)
  t.deepEqual(outside, [box.sockets.bindingDir, box.sockets.parentDir, path.join(box.home!, 'bases'), ...systemCas().map((g) => g.path), volume])
})

test('a symlink where a grant would be is refused: bwrap would bind its target', async (t) => {
  const { box, root } = await preparedBox(t)
  fs.rmdirSync(box.logsDir)
  fs.symlinkSync(root, box.logsDir)
  const e = await t.throwsAsync(box.sandboxPolicy(), { instanceOf: LayoutError })
  t.is(e.code, 'ELOOP')
  t.is(e.reason, 'symlink')
  t.is(e.path, box.logsDir)
})

test('shared/ as this package\'s own link to mounts/ (no bind mounts, as on macOS) grants mounts/, reached via shared/', async (t) => {
  const { box, root } = await preparedBox(t)
  const mounts = path.join(box.root, 'mounts')
  fs.rmdirSync(box.sharedDir)
  fs.mkdirSync(mounts)
  fs.symlinkSync('mounts', box.sharedDir) // what mountShared() makes where it cannot mount
  const grants = await box.sandboxPolicy()
  t.deepEqual(grants.find((g) => g.path === mounts), { path: mounts, writable: true, via: box.sharedDir })
  t.false(grants.some((g) => g.path === box.sharedDir))
  const argv = await box.bwrapArgs(['/bin/true'])
  const at = (flag: string, a: string, b: string) => argv.some((x, i) => x === flag && argv[i + 1] === a && argv[i + 2] === b)
  t.true(at('--bind', mounts, mounts))
  t.true(at('--symlink', 'mounts', box.sharedDir), 'the link is made again inside the jail')
  // Any other link at shared/ is someone else's: refused.
  for (const target of [root, `${mounts}/`, '../mounts']) {
    fs.unlinkSync(box.sharedDir)
    fs.symlinkSync(target, box.sharedDir)
    const e = await t.throwsAsync(box.sandboxPolicy(), { instanceOf: LayoutError, code: 'ELOOP' }, target)
    t.is(e.path, box.sharedDir)
  }
  fs.unlinkSync(box.sharedDir)
  fs.symlinkSync('mounts', box.sharedDir)
  fs.rmdirSync(mounts)
  fs.symlinkSync(root, mounts)
  const e = await t.throwsAsync(box.sandboxPolicy(), { instanceOf: LayoutError, code: 'ELOOP' }, 'mounts/ itself a link')
  t.is(e.path, box.sharedDir)
})

test('backing chains, three deep (relative and absolute names): parent then file, read-only, in chain order', async (t) => {
  const { box, root } = await preparedBox(t)
  const bases = path.join(box.home!, 'bases')
  const elsewhere = path.join(root, 'elsewhere')
  qcow2(path.join(elsewhere, 'c.qcow2'))
  qcow2(path.join(elsewhere, 'b.qcow2'), 'c.qcow2')
  qcow2(path.join(bases, 'a.qcow2'), path.join(elsewhere, 'b.qcow2'))
  qcow2(box.diskPath, '../../../bases/a.qcow2')
  qcow2(box.guestRootfsDiskPath, path.join(bases, 'a.qcow2'))
  const grants = await box.sandboxPolicy()
  const start = grants.findIndex((g) => g.path === box.guestRootfsDiskPath) + 1
  t.deepEqual(grants.slice(start, start + 7), [
    // disk.qcow2: a relative name, resolved against disks/ (a string the kernel resolves)
    ro(`${box.disksDir}/../../../bases`), ro(`${box.disksDir}/../../../bases/a.qcow2`),
    ro(elsewhere), ro(path.join(elsewhere, 'b.qcow2')),
    ro(path.join(elsewhere, 'c.qcow2')), // its parent is granted already
    // guest-rootfs.qcow2: an absolute name; b and c are granted already
    ro(bases), ro(path.join(bases, 'a.qcow2')),
  ])
  t.deepEqual(grants[start + 7], rw(box.sharedDir))
  t.is(grants.filter((g) => g.path === path.join(elsewhere, 'c.qcow2')).length, 1, 'a file two chains share is granted once')
})

test('a backing chain that loops, or is deeper than 16, is an error naming the chain', async (t) => {
  const { box, root } = await preparedBox(t)
  const d = path.join(root, 'chain')
  qcow2(path.join(d, 'x.qcow2'), path.join(d, 'y.qcow2'))
  qcow2(path.join(d, 'y.qcow2'), path.join(d, 'x.qcow2'))
  qcow2(box.diskPath, path.join(d, 'x.qcow2'))
  const loop = await t.throwsAsync(box.sandboxPolicy(), { instanceOf: LayoutError })
  t.is(loop.code, 'ELOOP')
  t.is(loop.reason, 'backing-chain')
  t.true(loop.message.includes(`loops: ${box.diskPath} -> ${d}/x.qcow2 -> ${d}/y.qcow2 -> ${d}/x.qcow2`), loop.message)
  for (let i = 0; i < 20; i++) qcow2(path.join(d, `${i}.qcow2`), `${i + 1}.qcow2`)
  qcow2(path.join(d, '20.qcow2'))
  qcow2(box.diskPath, path.join(d, '0.qcow2'))
  const deep = t.throws(() => box.sandboxPolicySync(), { instanceOf: LayoutError })
  t.is(deep.code, 'EINVAL')
  t.is(deep.reason, 'backing-chain')
  t.regex(deep.message, /deeper than 16 images/)
  t.regex(deep.dest!, /\/15\.qcow2 -> [^ ]*\/16\.qcow2$/)
})

testWith([needs.linux], 'a backing name that is a FIFO or a device is refused without being opened: a FIFO\'s writer keeps waiting', async (t) => {
  const { box, root } = await preparedBox(t)
  const fifo = path.join(root, 'base.fifo')
  execFileSync('mkfifo', [fifo])
  qcow2(box.diskPath, fifo)
  // A writer blocks in its open until someone opens the FIFO to read: an
  // open that acts, as a device's open may (a watchdog arms on open).
  const writer = spawn('sh', ['-c', `echo opened > ${fifo}`], { stdio: 'ignore' })
  const exited = new Promise<number | null>((resolve) => writer.once('exit', resolve))
  t.teardown(() => { writer.kill('SIGKILL') })
  const waiting = () => fs.readFileSync(`/proc/${writer.pid!}/wchan`, 'utf8') === 'wait_for_partner'
  while (!waiting()) await new Promise((resolve) => setTimeout(resolve, 5))

  for (const call of [() => box.sandboxPolicySync(), () => box.sandboxPolicySync({ backingRoots: [root] })]) {
    const e = t.throws(call, { instanceOf: LayoutError })
    t.is(e.code, 'EINVAL')
    t.is(e.reason, 'not-a-regular-file')
    t.is(e.path, fifo)
  }
  t.true(waiting(), 'nobody opened the FIFO: its writer is still waiting for a reader')
  // A character device likewise (opening /dev/null acts on nothing, but is refused the same way).
  qcow2(box.diskPath, '/dev/null')
  t.is(t.throws(() => box.sandboxPolicySync(), { instanceOf: LayoutError }).reason, 'not-a-regular-file')
  // And the box's own image is never a symlink, whatever it points at.
  fs.rmSync(box.diskPath)
  fs.symlinkSync(fifo, box.diskPath)
  t.is(t.throws(() => box.sandboxPolicySync(), { instanceOf: LayoutError }).code, 'ELOOP')
  t.true(waiting())

  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  t.is(await exited, 0, 'our own open let the writer go')
  t.is(fs.readFileSync(reader, 'utf8'), 'opened\n')
  fs.closeSync(reader)
})

test('backingRoots confines the chain to the places a runtime stores bases', async (t) => {
  const { box, root } = await preparedBox(t)
  qcow2(path.join(root, 'stray.qcow2'))
  qcow2(box.diskPath, path.join(root, 'stray.qcow2'))
  const bases = path.join(box.home!, 'bases')
  const e = await t.throwsAsync(box.sandboxPolicy({ backingRoots: [bases] }), { instanceOf: LayoutError })
  t.is(e.reason, 'backing-chain')
  t.is(e.dest, path.join(root, 'stray.qcow2'))
  qcow2(path.join(bases, 'ok.qcow2'))
  qcow2(box.diskPath, path.join(bases, 'ok.qcow2'))
  t.true((await box.sandboxPolicy({ backingRoots: [bases] })).some((g) => g.path === path.join(bases, 'ok.qcow2')))
})

test('backingRoots judges where a backing file really is: ".." and symlinks cannot climb out', async (t) => {
  const { box, root } = await preparedBox(t)
  const bases = path.join(box.home!, 'bases')
  const outside = path.join(root, 'outside.qcow2')
  qcow2(outside)
  const refused = async (name: string) => {
    qcow2(box.diskPath, name)
    const e = await t.throwsAsync(box.sandboxPolicy({ backingRoots: [bases] }), { instanceOf: LayoutError })
    t.is(e.reason, 'backing-chain')
    t.is(e.dest, name)
    t.true(e.message.includes(`really ${outside}`), e.message)
  }
  await refused(`${bases}/${path.relative(bases, outside)}`) // bases/../../outside.qcow2
  fs.symlinkSync(root, path.join(bases, 'link'))
  await refused(path.join(bases, 'link', 'outside.qcow2')) // through a symlinked directory
  fs.symlinkSync(outside, path.join(bases, 'file-link.qcow2'))
  await refused(path.join(bases, 'file-link.qcow2')) // a symlink as the file itself
  // A relative name that climbs from disks/ into bases/ is inside, as the kernel resolves it.
  qcow2(path.join(bases, 'ok.qcow2'))
  qcow2(box.diskPath, '../../../bases/ok.qcow2')
  const grants = await box.sandboxPolicy({ backingRoots: [bases] })
  t.true(grants.some((g) => g.path === `${box.disksDir}/../../../bases/ok.qcow2`))
})

test('volumes last: directories as given, writable unless read-only; missing ones and single files left out', async (t) => {
  const { box, root } = await preparedBox(t)
  for (const v of ['a', 'b']) fs.mkdirSync(path.join(root, v))
  fs.writeFileSync(path.join(root, 'file'), 'a single-file volume is staged into shared/')
  const grants = await box.sandboxPolicy({
    volumes: [
      { path: path.join(root, 'a') }, { path: path.join(root, 'b'), readOnly: true }, { path: path.join(root, 'gone') },
      { path: path.join(root, 'file') },
    ],
  })
  t.deepEqual(grants.slice(-2), [rw(path.join(root, 'a')), ro(path.join(root, 'b'))])
  t.false(grants.some((g) => g.path.startsWith(path.join(root, 'file'))), 'a staged file is reached through shared/, not granted')
})

/** Run argv (bwrap's) to completion; its status and output. */
function runJail (argv: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const bwrap = [needs.linux, needs.root, needs.tool('bwrap', 'bubblewrap')]

test('CA stores: five, never a bundle file inside a directory already granted', (t) => {
  t.deepEqual([...CA_STORES], [
    '/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/ca-certificates', '/etc/ssl/cert.pem',
    '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  ])
  for (const store of CA_STORES) {
    t.false(CA_STORES.some((dir) => dir !== store && store.startsWith(`${dir}/`)), `${store} lies inside another store`)
  }
})

testWith(bwrap, 'CA stores under the real bwrap: the bundle files are read through their directory grant', async (t) => {
  const bundle = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'].find((f) => fs.existsSync(f))
  if (bundle === undefined) return t.fail('no CA bundle on this host (apt-get install ca-certificates)')
  const { box } = await preparedBox(t)
  const argv = await box.bwrapArgs(['/bin/sh', '-c', `cat ${bundle}`])
  t.false(argv.some((a, i) => a === '--ro-bind' && argv[i + 1] === bundle), 'the file is not bound by itself')
  const r = runJail(argv)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, fs.readFileSync(bundle, 'utf8'), 'the jailed reader sees the host bundle byte for byte')
})

testWith(bwrap, 'bases/ of a home reached through a symlink is granted by its canonical path, readable in the jail', async (t) => {
  const root = scratch(t)
  fs.mkdirSync(path.join(root, 'real'))
  freshHome(t, path.join(root, 'real'))
  const link = path.join(root, 'link')
  fs.symlinkSync(path.join(root, 'real'), link)
  const box = new HomeLayout({ home: path.join(link, 'home') }).box(mintBoxId(), { uid: privateLinkUid(t) })
  await box.prepare()
  const bases = path.join(box.home!, 'bases')
  const canonical = fs.realpathSync(bases)
  t.not(canonical, bases)
  fs.writeFileSync(path.join(canonical, 'base.ext4'), 'base bytes')
  const grants = await box.sandboxPolicy()
  t.true(grants.some((g) => g.path === canonical && !g.writable), 'granted by its real path')
  t.false(grants.some((g) => g.path === bases), 'not by the symlinked name')
  const r = runJail(await box.bwrapArgs(['/bin/cat', path.join(canonical, 'base.ext4')]))
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, 'base bytes')
})

testWith([...bwrap, needs.tool('losetup', 'mount')],
  'a disk backed by a block device under /dev grants that node alone, --dev-bind, never /dev', async (t) => {
    const { box, root } = await preparedBox(t)
    const image = path.join(root, 'backing.img')
    fs.writeFileSync(image, Buffer.concat([Buffer.from('DEVICE-BACKED'), Buffer.alloc(1024 * 1024 - 13)]))
    const loop = execFileSync('losetup', ['--find', '--show', '--read-only', image], { encoding: 'utf8' }).trim()
    t.teardown(() => { execFileSync('losetup', ['-d', loop]) })
    qcow2(box.diskPath, loop)
    const grants = await box.sandboxPolicy()
    t.deepEqual(grants.filter((g) => g.path.startsWith('/dev')), [{ path: loop, writable: false, device: true }])
    const argv = await box.bwrapArgs(['/bin/sh', '-c', `head -c 13 ${loop}; test -e /dev/loop-control && echo ' leaked'`])
    t.true(argv.some((a, i) => a === '--dev-bind' && argv[i + 1] === loop && argv[i + 2] === loop))
    t.false(argv.some((a, i) => (a === '--ro-bind' || a === '--bind') && argv[i + 1] === '/dev'))
    const r = runJail(argv)
    t.is(r.stdout, 'DEVICE-BACKED', 'the jailed VMM opens and reads its backing device; no other device is there')
  })

test('nestedVirtualization asks about the KVM nesting probes and grants (read-only) the ones that exist', (t) => {
  const sockets = { realDir: '/h/boxes/b1/sockets', bindingDir: '/tmp/bl-0/b1', parentDir: '/tmp/bl-0' }
  const box: PolicyBox = { boxId: 'b1', root: '/h/boxes/b1', home: undefined, sockets }
  t.false(policyHostPaths(box, {}).some((p) => (NESTED_VIRT_PROBES as readonly string[]).includes(p)))
  t.deepEqual(policyHostPaths(box, { nestedVirtualization: true }).filter((p) => p.startsWith('/sys/')), [...NESTED_VIRT_PROBES])
  const host = (p: string, exists: boolean) => ({ path: p, kind: exists ? 'file' as const : 'missing' as const, exists, isDir: false, linkTarget: '', real: '' })
  const hosts = [host(NESTED_VIRT_PROBES[0], false), host(NESTED_VIRT_PROBES[1], true)]
  const facts: NativePolicyFacts = { entries: {}, links: {}, chains: [], roots: [], canonical: [], hosts }
  t.deepEqual(grantsOf(box, facts, { nestedVirtualization: true }), [ro(NESTED_VIRT_PROBES[1])])
  t.deepEqual(grantsOf(box, facts, {}), [], 'not without the option')
})

test('bwrapArgs: BoxLite\'s jailer flags, system ro binds that exist, devices, grants rw then ro, clean env', async (t) => {
  const { box } = await preparedBox(t)
  const argv = await box.bwrapArgs(['/bin/true', 'x'])
  t.deepEqual(argv.slice(0, 3), ['bwrap', '--die-with-parent', '--new-session'])
  for (const p of SYSTEM_RO_BINDS) {
    const at = argv.findIndex((a, i) => a === '--ro-bind' && argv[i + 1] === p)
    t.is(at >= 0, fs.existsSync(p), p)
  }
  const pairs = (flag: string) => argv.flatMap((a, i) => a === flag ? [argv[i + 1]!] : [])
  const grants = await box.sandboxPolicy()
  t.deepEqual(pairs('--bind'), grants.filter((g) => g.writable).map((g) => g.path))
  t.deepEqual(pairs('--ro-bind').filter((p) => !(SYSTEM_RO_BINDS as readonly string[]).includes(p)), grants.filter((g) => !g.writable).map((g) => g.path))
  t.true(argv.lastIndexOf('--ro-bind') < argv.indexOf('--remount-ro'), 'the root is made read-only after every bind')
  t.true(argv.indexOf('--tmpfs') < argv.indexOf('--bind'), '/tmp is a tmpfs before the link is rebuilt on it')
  for (const dev of ['/dev/kvm', '/dev/net/tun']) t.is(pairs('--dev-bind').includes(dev), fs.existsSync(dev), dev)
  t.deepEqual(argv.slice(argv.indexOf('--clearenv')), [
    '--clearenv', '--setenv', 'PATH', '/usr/bin:/bin:/usr/sbin:/sbin', '--setenv', 'HOME', '/root',
    '--setenv', 'LD_LIBRARY_PATH', box.binDir, '--chdir', '/', '--', '/bin/true', 'x',
  ])
  t.false(box.bwrapArgsSync(['/bin/true'], { detached: true }).includes('--die-with-parent'))
  t.throws(() => box.bwrapArgsSync([]), { code: 'ERR_INVALID_ARG' })
})

test('bad volumes or backing roots are refused before anything is read', async (t) => {
  const { box } = await preparedBox(t)
  for (const options of [{ backingRoots: ['relative/bases'] }, { backingRoots: [42 as unknown as string] }, { volumes: [{ path: 'vol' }] }]) {
    const e = await t.throwsAsync(box.sandboxPolicy(options), { instanceOf: LayoutError })
    t.is(e.code, 'ERR_INVALID_ARG')
    t.is(e.reason, 'invalid-argument')
  }
})
