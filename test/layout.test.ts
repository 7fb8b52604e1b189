// The layout, path by path, and the reference module's own tests (BoxLite's
// layout.rs) re-expressed against this API. Literal expectations for unusual
// homes are in paths.test.ts.
import test from 'ava'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {
  BoxLayout, BoxSockets, HomeLayout, ImageLayout, LayoutError, SharedGuestLayout, SocketNames, mintBoxId, resolveHome,
} from '../lib/index.ts'
import { privileged } from './helpers/env.ts'
import { mountTmpfs, scratch } from './helpers/fixtures.ts'

function boxAt (dir: string, isolateMounts = false): BoxLayout {
  return new BoxLayout(dir, { isolateMounts })
}

// ---------------------------------------------------------------------------
// Reference: ImageFilesystemLayout::local_bundle_cache_dir

test('local bundle cache dir is local/{8 hex}-{8 chars}', (t) => {
  const images = new ImageLayout('/images')
  const dir = images.localBundleCacheDir('/my/bundle', 'sha256:abc123def456789')
  t.true(dir.startsWith('/images/local/'))
  const name = path.basename(dir)
  const parts = name.split('-')
  t.is(parts.length, 2)
  t.is(parts[0]!.length, 8, 'path hash should be 8 chars')
  t.is(parts[1]!.length, 8, 'manifest short should be 8 chars')
  t.is(parts[0], crypto.createHash('sha256').update('/my/bundle').digest('hex').slice(0, 8))
  t.is(parts[1], 'abc123de')
})

test('local bundle cache: a new manifest means a new cache dir, same path hash', (t) => {
  const images = new ImageLayout('/images')
  const v1 = images.localBundleCacheDir('/my/bundle', 'sha256:a1b2c3d4e5f6789012345678901234567890abcd')
  const v2 = images.localBundleCacheDir('/my/bundle', 'sha256:f9e8d7c6b5a4321098765432109876543210fedc')
  t.not(v1, v2)
  t.is(path.dirname(v1), path.dirname(v2))
  const [p1, m1] = path.basename(v1).split('-')
  const [p2, m2] = path.basename(v2).split('-')
  t.is(p1, p2, 'same path, same path hash')
  t.not(m1, m2, 'different manifest, different part')
})

test('local bundle cache: same inputs give the same dir', (t) => {
  const images = new ImageLayout('/images')
  t.is(images.localBundleCacheDir('/my/bundle', 'sha256:abc123'), images.localBundleCacheDir('/my/bundle', 'sha256:abc123'))
})

test('local bundle cache: different paths give different dirs', (t) => {
  const images = new ImageLayout('/images')
  t.not(images.localBundleCacheDir('/bundle1', 'sha256:same_manifest'), images.localBundleCacheDir('/bundle2', 'sha256:same_manifest'))
})

test('local bundle cache: short digests kept whole, no sha256: prefix kept as is', (t) => {
  const images = new ImageLayout('/images')
  t.true(images.localBundleCacheDir('/b', 'sha256:abc').endsWith('-abc'))
  t.true(images.localBundleCacheDir('/b', 'deadbeefcafe').endsWith('-deadbeef'))
})

test('local bundle cache: a digest that could escape images/local is refused', (t) => {
  const images = new ImageLayout('/images')
  for (const bad of ['sha256:../../etc', 'sha256:a/b', '', 'sha256:', '../x']) {
    const e = t.throws(() => images.localBundleCacheDir('/b', bad), { instanceOf: LayoutError })
    t.is(e.code, 'ERR_INVALID_ARG')
  }
})

// ---------------------------------------------------------------------------
// Reference: socket paths

test('different boxes get different net backend socket paths', (t) => {
  const a = boxAt('/home/user/.boxlite/boxes/box-aaa')
  const b = boxAt('/home/user/.boxlite/boxes/box-bbb')
  t.not(a.netBackendSocketPath, b.netBackendSocketPath)
  t.true(path.dirname(a.netBackendSocketPath).endsWith('box-aaa'))
  t.true(path.dirname(b.netBackendSocketPath).endsWith('box-bbb'))
  t.not(a.socketsDir, b.socketsDir)
  t.is(path.basename(a.netBackendSocketPath), 'net.sock')
  t.is(path.basename(b.netBackendSocketPath), 'net.sock')
})

test('a long home routes sockets through the binding symlink', (t) => {
  const dir = scratch(t)
  const deepBoxes = path.join(dir, 'a_very_long_segment_to_push_paths_over_the_limit', 'and_one_more_for_good_measure', 'boxes')
  const boxDir = path.join(deepBoxes, mintBoxId())
  const box = boxAt(boxDir)
  t.teardown(() => box.sockets.removeSync())
  t.true(Buffer.byteLength(path.join(box.socketsDir, 'net.sock-krun.sock')) >= 104, 'test setup must exceed sun_path')

  box.prepareSync()
  const binding = box.sockets.bindingDir
  const bound = box.netBackendSocketPath
  t.true(bound.startsWith(binding + '/'), `expected binding path under ${binding}, got ${bound}`)
  t.true(Buffer.byteLength(bound) + '-krun.sock'.length < 104)
  t.is(box.socketsDir, path.join(boxDir, 'sockets'))
  t.is(fs.readlinkSync(binding), box.socketsDir)

  box.cleanupSync()
  t.throws(() => fs.lstatSync(binding), { code: 'ENOENT' })
})

// ---------------------------------------------------------------------------
// Reference: home layout

test('bases dir is {home}/bases', (t) => {
  t.is(new HomeLayout({ home: '/home/user/.boxlite' }).basesDir, '/home/user/.boxlite/bases')
})

test('prepare creates bases, tmp and boxes', (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  t.true(fs.statSync(home.basesDir).isDirectory())
  t.true(fs.statSync(home.tmpDir).isDirectory())
  t.true(fs.statSync(home.boxesDir).isDirectory())
})

test('prepare validates same filesystem (all under one dir passes)', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const r = await home.prepare()
  t.true(r.sameFilesystem.same)
  t.is(r.sameFilesystem.odd, null)
  t.true(home.validateSameFilesystemSync().same)
})

privileged('prepare fails with EXDEV when tmp is a tmpfs on another device, naming paths and devices', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  await home.prepare()
  mountTmpfs(t, home.tmpDir)
  const e = await t.throwsAsync(home.prepare(), { instanceOf: LayoutError })
  t.is(e.code, 'EXDEV')
  t.is(e.errno, -18)
  t.is(e.path, home.tmpDir, 'the odd one out is tmp')
  for (const p of [home.tmpDir, home.basesDir, home.images.diskImagesDir]) t.true(e.message.includes(p), p)
  t.regex(e.message, /device \d+:\d+/)
  t.regex(e.message, /rename/)
  const sync = t.throws(() => home.validateSameFilesystemSync(), { instanceOf: LayoutError })
  t.is(sync.code, 'EXDEV')
})

// ---------------------------------------------------------------------------
// Reference: jailer paths

const MYBOX = '/home/.boxlite/boxes/mybox'

test('box logs, bin, tmp, disks, disk and guest rootfs paths', (t) => {
  const box = boxAt(MYBOX)
  t.is(box.logsDir, `${MYBOX}/logs`)
  t.is(box.binDir, `${MYBOX}/bin`)
  t.is(box.tmpDir, `${MYBOX}/tmp`)
  t.is(box.guestRootfsDiskPath, `${MYBOX}/disks/guest-rootfs.qcow2`)
  t.is(box.disksDir, `${MYBOX}/disks`)
  t.is(box.diskPath, `${MYBOX}/disks/disk.qcow2`)
})

test('all jailer paths are inside the box dir', (t) => {
  const box = boxAt('/home/.boxlite/boxes/test')
  const paths = box.jailerPaths()
  for (const p of [box.logsDir, box.binDir, box.socketsDir, box.tmpDir, box.guestRootfsDiskPath,
    box.exitFilePath, box.consoleOutputPath, box.diskPath]) {
    t.true(paths.includes(p), `${p} granted`)
  }
  for (const p of paths) t.true(p.startsWith('/home/.boxlite/boxes/test/'), `${p} inside the box dir`)
})

test('box prepare creates tmp', (t) => {
  const box = boxAt(path.join(scratch(t), mintBoxId()))
  t.teardown(() => box.sockets.removeSync())
  box.prepareSync()
  t.true(fs.statSync(box.tmpDir).isDirectory())
})

// ---------------------------------------------------------------------------
// The layout, name by name

test('home paths: every name', (t) => {
  const home = new HomeLayout({ home: '/srv/bl' })
  t.is(home.home, '/srv/bl')
  t.is(home.runtimeLockPath, '/srv/bl/.lock')
  t.is(home.dbDir, '/srv/bl/db')
  t.is(home.dbPath, '/srv/bl/db/boxlite.db')
  t.is(home.imagesDir, '/srv/bl/images')
  t.is(home.boxesDir, '/srv/bl/boxes')
  t.is(home.basesDir, '/srv/bl/bases')
  t.is(home.locksDir, '/srv/bl/locks')
  t.is(home.logsDir, '/srv/bl/logs')
  t.is(home.tmpDir, '/srv/bl/tmp')
  const images = home.images
  t.is(images.root, '/srv/bl/images')
  t.is(images.layersDir, '/srv/bl/images/layers')
  t.is(images.extractedDir, '/srv/bl/images/extracted')
  t.is(images.diskImagesDir, '/srv/bl/images/disk-images')
  t.is(images.manifestsDir, '/srv/bl/images/manifests')
  t.is(images.configsDir, '/srv/bl/images/configs')
  t.is(images.localDir, '/srv/bl/images/local')
  t.is(home.box('b1').root, '/srv/bl/boxes/b1')
})

test('box paths: every name', (t) => {
  const b = '/srv/bl/boxes/b1'
  const box = new HomeLayout({ home: '/srv/bl' }).box('b1', { isolateMounts: true })
  t.is(box.boxId, 'b1')
  t.is(box.socketsDir, `${b}/sockets`)
  t.is(box.tmpDir, `${b}/tmp`)
  t.is(box.mountsDir, `${b}/mounts`)
  t.is(box.sharedDir, `${b}/shared`)
  t.is(box.binDir, `${b}/bin`)
  t.is(box.bootDir, `${b}/boot`)
  t.is(box.caDir, `${b}/ca`)
  t.is(box.caCertPath, `${b}/ca/cert.pem`)
  t.is(box.caKeyPath, `${b}/ca/key.pem`)
  t.is(box.logsDir, `${b}/logs`)
  t.is(box.consoleOutputPath, `${b}/logs/console.log`)
  t.is(box.shimLogPath, `${b}/logs/boxlite-shim.log`)
  t.is(box.disksDir, `${b}/disks`)
  t.is(box.diskPath, `${b}/disks/disk.qcow2`)
  t.is(box.guestRootfsDiskPath, `${b}/disks/guest-rootfs.qcow2`)
  t.is(box.pidFilePath, `${b}/shim.pid`)
  t.is(box.exitFilePath, `${b}/exit`)
  t.is(box.exitPreviousPath, `${b}/exit.previous`)
  t.is(box.stderrFilePath, `${b}/shim.stderr`)
  t.is(box.containerExitPath('c1'), `${b}/shared/containers/c1/exit.json`)
  t.false(box.caDir.startsWith(box.sharedDir), 'ca never under shared/')
  t.false(box.caDir.startsWith(box.mountsDir), 'ca never under mounts/')
})

test('socket names: box.sock, ready.sock, net.sock, net.sock-krun.sock, gvproxy-ctl.sock under /tmp/bl-{uid}/{id}', (t) => {
  const s = new BoxSockets('b1', '/srv/bl/boxes/b1/sockets', { uid: 1234 })
  t.is(s.parentDir, '/tmp/bl-1234')
  t.is(s.bindingDir, '/tmp/bl-1234/b1')
  t.is(s.boxSock, '/tmp/bl-1234/b1/box.sock')
  t.is(s.readySock, '/tmp/bl-1234/b1/ready.sock')
  t.is(s.netSock, '/tmp/bl-1234/b1/net.sock')
  t.is(s.netKrunSock, '/tmp/bl-1234/b1/net.sock-krun.sock')
  t.is(s.gvproxyControlSock, '/tmp/bl-1234/b1/gvproxy-ctl.sock')
  const box = new HomeLayout({ home: '/srv/bl' }).box('b1', { uid: 1234 })
  t.is(box.socketPath, s.boxSock)
  t.is(box.readySocketPath, s.readySock)
  t.is(box.netBackendSocketPath, s.netSock)
  t.is(box.netBackendPeerSocketPath, '/tmp/bl-1234/b1/net.sock-krun.sock')
  t.is(box.gvproxyControlSocketPath, '/tmp/bl-1234/b1/gvproxy-ctl.sock')
  // The length rule is held to the longest name, which is still net.sock-krun.sock.
  const longest = Object.values(SocketNames).reduce((a, b) => (Buffer.byteLength(b) > Buffer.byteLength(a) ? b : a))
  t.is(longest, SocketNames.NET_KRUN)
})

test('mountsDir is mounts/ only when bind mounts are on and the box isolates', (t) => {
  const on = new HomeLayout({ home: '/h' })
  const off = new HomeLayout({ home: '/h', bindMounts: false })
  t.is(on.box('b', { isolateMounts: true }).mountsDir, '/h/boxes/b/mounts')
  t.is(on.box('b', { isolateMounts: false }).mountsDir, '/h/boxes/b/shared')
  t.is(off.box('b', { isolateMounts: true }).mountsDir, '/h/boxes/b/shared')
  t.false(off.box('b', { isolateMounts: true }).isolateMounts)
  t.is(on.box('b', { isolateMounts: true }).sharedLayout.base, '/h/boxes/b/mounts')
  t.is(on.box('b').sharedLayout.base, '/h/boxes/b/mounts', 'BoxLite roots the container tree at mounts/ always')
  t.is(off.box('b').container('c1').root, '/h/boxes/b/mounts/containers/c1')
})

test('shared guest layout: containers/{cid} with overlayfs, rootfs, volumes, layers, exit.json', (t) => {
  const guest = SharedGuestLayout.guest()
  t.is(guest.base, '/run/boxlite/shared')
  const c = guest.container('c1')
  t.is(c.root, '/run/boxlite/shared/containers/c1')
  t.is(c.overlayfsDir, '/run/boxlite/shared/containers/c1/overlayfs')
  t.is(c.upperDir, '/run/boxlite/shared/containers/c1/overlayfs/upper')
  t.is(c.workDir, '/run/boxlite/shared/containers/c1/overlayfs/work')
  t.is(c.diffDir, '/run/boxlite/shared/containers/c1/overlayfs/diff')
  t.is(c.rootfsDir, '/run/boxlite/shared/containers/c1/rootfs')
  t.is(c.volumesDir, '/run/boxlite/shared/containers/c1/volumes')
  t.is(c.volumeDir('data'), '/run/boxlite/shared/containers/c1/volumes/data')
  t.is(c.layersDir, '/run/boxlite/shared/containers/c1/layers')
  t.is(c.exitFilePath, '/run/boxlite/shared/containers/c1/exit.json')
})

test('container prepare creates upper, work, rootfs and volumes only, under mounts/', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const box = home.box(mintBoxId())
  t.teardown(() => box.sockets.removeSync())
  await box.prepare()
  const c = box.container('c1')
  t.is(c.root, path.join(box.root, 'mounts', 'containers', 'c1'), 'mounts/ even without isolation, as BoxLite')
  await c.prepare()
  for (const d of [c.upperDir, c.workDir, c.rootfsDir, c.volumesDir]) t.true(fs.statSync(d).isDirectory(), d)
  t.false(fs.existsSync(c.diffDir))
  t.false(fs.existsSync(c.layersDir))
})

// ---------------------------------------------------------------------------
// prepare: exact order and contents

test('home prepare creates exactly the home directories (no db, locks, logs)', (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  home.prepareSync()
  t.deepEqual(fs.readdirSync(home.home).sort(), ['bases', 'boxes', 'images', 'tmp'])
  t.deepEqual(fs.readdirSync(home.imagesDir).sort(), ['disk-images', 'layers', 'manifests'])
})

test('image prepare creates layers, extracted, disk-images, manifests, configs', async (t) => {
  const images = new ImageLayout(path.join(scratch(t), 'images'))
  await images.prepare()
  t.deepEqual(fs.readdirSync(images.root).sort(), ['configs', 'disk-images', 'extracted', 'layers', 'manifests'])
})

test('box prepare creates box dir, sockets, link, tmp, disks, mounts dir, logs; not shared/ when isolating', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const box = home.box(mintBoxId(), { isolateMounts: true })
  t.teardown(() => box.sockets.removeSync())
  const r = await box.prepare()
  t.is(r.socketLink.link, 'created')
  t.deepEqual(fs.readdirSync(box.root).sort(), ['disks', 'logs', 'mounts', 'sockets', 'tmp'])
  t.is(fs.readlinkSync(box.sockets.bindingDir), box.socketsDir)
  const again = box.prepareSync()
  t.is(again.socketLink.link, 'kept')
})

test('box prepare without isolation makes shared/ the mounts dir', (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const box = home.box(mintBoxId())
  t.teardown(() => box.sockets.removeSync())
  box.prepareSync()
  t.deepEqual(fs.readdirSync(box.root).sort(), ['disks', 'logs', 'shared', 'sockets', 'tmp'])
})

test('box prepare repairs a partly prepared box', (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const box = home.box(mintBoxId(), { isolateMounts: true })
  t.teardown(() => box.sockets.removeSync())
  box.prepareSync()
  fs.rmSync(box.logsDir, { recursive: true })
  fs.rmSync(box.mountsDir, { recursive: true })
  box.sockets.removeSync()
  t.is(box.prepareSync().socketLink.link, 'created')
  t.true(fs.statSync(box.logsDir).isDirectory())
  t.true(fs.statSync(box.mountsDir).isDirectory())
})

test('writeCa: ca/ 0700, cert.pem 0644, key.pem 0600, outside shared/', async (t) => {
  const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
  const box = home.box(mintBoxId())
  t.teardown(() => box.sockets.removeSync())
  const early = await t.throwsAsync(box.writeCa({ cert: 'C', key: 'K' }), { instanceOf: LayoutError })
  t.is(early.code, 'ENOENT')
  t.is(early.reason, 'not-prepared')
  t.regex(early.message, /prepare\(\) the box first/)
  await box.prepare()
  await box.writeCa({ cert: 'CERT', key: 'KEY' })
  t.is(fs.statSync(box.caDir).mode & 0o777, 0o700)
  t.is(fs.statSync(box.caCertPath).mode & 0o777, 0o644)
  t.is(fs.statSync(box.caKeyPath).mode & 0o777, 0o600)
  t.is(fs.readFileSync(box.caKeyPath, 'utf8'), 'KEY')
  box.writeCaSync({ cert: 'CERT2', key: 'KEY2' })
  t.is(fs.readFileSync(box.caCertPath, 'utf8'), 'CERT2')
  t.deepEqual(fs.readdirSync(box.caDir).sort(), ['cert.pem', 'key.pem'])
})

// ---------------------------------------------------------------------------
// Home resolution

test('home: BOXLITE_HOME wins, else $HOME/.boxlite', (t) => {
  t.is(resolveHome({ BOXLITE_HOME: '/data/bl', HOME: '/home/u' }), '/data/bl')
  t.is(resolveHome({ HOME: '/home/u' }), '/home/u/.boxlite')
  t.is(resolveHome({ HOME: '/home/u/' }), '/home/u/.boxlite')
  t.is(new HomeLayout({ env: { BOXLITE_HOME: '/data/bl/' } }).home, '/data/bl/', 'kept as given, as BoxLite does')
})

test('home: a relative BOXLITE_HOME or home is ERR_INVALID_ARG', (t) => {
  for (const make of [
    () => resolveHome({ BOXLITE_HOME: 'relative/home' }),
    () => new HomeLayout({ home: 'rel' }),
    () => new HomeLayout({ env: { BOXLITE_HOME: './x' } }),
    () => resolveHome({ BOXLITE_HOME: '', HOME: '/home/u' }),
  ]) {
    const e = t.throws(make, { instanceOf: LayoutError })
    t.is(e.code, 'ERR_INVALID_ARG')
    t.regex(e.message, /absolute/)
  }
})
