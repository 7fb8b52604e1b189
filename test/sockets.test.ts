// Sockets (docs/design.md, "Sockets"): BoxSockets links with /tmp squatting protection, and
// listen/connect that never truncate a socket path.
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {
  BoxSockets, connectUnix, fitsSunPath, HomeLayout, LayoutError, listenUnix, mintBoxId, socketLinkParent,
} from '../lib/index.ts'
import { privateLinkUid } from './helpers/boxes.ts'
import { isRoot, needs, testWith } from './helpers/env.ts'
import { fdsUnder, repoRoot, run, scratch, tsNode } from './helpers/fixtures.ts'

const uid = process.getuid!()

/** A deep home (the kind that breaks naive socket paths). */
function deepHome (t: ExecutionContext, bytes = 200): HomeLayout {
  let dir = scratch(t)
  while (Buffer.byteLength(dir) < bytes) dir = path.join(dir, 'a-long-directory-name-to-exceed-sun-path')
  return new HomeLayout({ home: path.join(dir, 'home') })
}

function echoServer (server: net.Server): void {
  server.on('connection', (c) => {
    // A client that hangs up before the echo (a probe, a test that is done)
    // makes the write fail with EPIPE: that is the client's business.
    c.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') throw e })
    c.on('data', (d) => c.end(Buffer.concat([Buffer.from('echo:'), d])))
  })
}

async function roundTrip (socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = ''
    socket.on('data', (d) => { got += d.toString() })
    socket.once('end', () => resolve(got))
    socket.once('error', reject)
    socket.write(text)
  })
}

testWith([needs.tool('socat', 'socat')], 'a 200+ byte deep home: listen on readySock through the link, socat talks to it', async (t) => {
  const home = deepHome(t)
  home.prepareSync()
  const box = home.box(mintBoxId())
  t.teardown(() => box.sockets.removeSync())
  t.true(Buffer.byteLength(path.join(box.socketsDir, 'ready.sock')) > 200)
  await box.prepare()
  t.true(fitsSunPath(box.readySocketPath))
  const server = await listenUnix(box.readySocketPath)
  echoServer(server)
  t.teardown(() => server.close())
  // A client that is not ours, connecting through the link.
  const socat = await new Promise<string>((resolve, reject) => {
    // -t 30: after our EOF socat waits for the server to hang up (it does,
    // right after the echo) instead of its default half a second.
    const c = spawn('socat', ['-t', '30', '-', `UNIX-CONNECT:${box.readySocketPath}`], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    c.stdout.on('data', (d: Buffer) => { out += d.toString() })
    c.once('close', () => resolve(out))
    c.once('error', reject)
    c.stdin.end('ping')
  })
  t.is(socat, 'echo:ping')
  // The socket inode lives in the real sockets/ dir.
  t.true(fs.lstatSync(path.join(box.socketsDir, 'ready.sock')).isSocket())
  const closed = new Promise((resolve) => server.close(resolve))
  await closed
  t.false(fs.existsSync(path.join(box.socketsDir, 'ready.sock')), 'close removes the socket file')
})

test('the dead zone: ready.sock fits but net.sock-krun.sock does not, so ensure() refuses', async (t) => {
  // /tmp/bl-{uid}/{id}/ready.sock < 104 bytes <= .../net.sock-krun.sock
  const prefix = `/tmp/bl-${uid}/`
  const idLen = 104 - Buffer.byteLength(prefix) - '/net.sock-krun.sock'.length
  const s = new BoxSockets('d'.repeat(idLen), path.join(scratch(t), 'sockets'))
  t.true(Buffer.byteLength(s.readySock) < 104)
  t.is(Buffer.byteLength(s.netKrunSock), 104)
  t.is(s.headroom(), -1)
  const e = await t.throwsAsync(s.ensure(), { instanceOf: LayoutError })
  t.is(e.code, 'ENAMETOOLONG')
  t.is(e.path, s.netKrunSock)
  t.false(fs.existsSync(s.bindingDir))
  const fits = new BoxSockets('d'.repeat(idLen - 1), path.join(scratch(t), 'sockets'))
  t.is(fits.headroom(), 0)
})

test('squatting: /tmp/bl-{uid} as a symlink to another dir is refused (ELOOP)', (t) => {
  const fake = privateLinkUid(t)
  const elsewhere = scratch(t)
  fs.symlinkSync(elsewhere, socketLinkParent(fake))
  const s = new BoxSockets('box1', path.join(elsewhere, 'sockets'), { uid: fake })
  const e = t.throws(() => s.ensureSync(), { instanceOf: LayoutError })
  t.is(e.code, 'ELOOP')
  t.is(e.path, socketLinkParent(fake))
  t.regex(e.message, /is a symlink.*remove it/)
  t.deepEqual(fs.readdirSync(elsewhere), [], 'nothing created through the symlink')
  fs.unlinkSync(socketLinkParent(fake))
})

test('squatting: /tmp/bl-{uid} as a file is refused (ENOTDIR)', (t) => {
  const fake = privateLinkUid(t)
  fs.writeFileSync(socketLinkParent(fake), 'squat')
  const e = t.throws(() => new BoxSockets('box1', '/x/sockets', { uid: fake }).ensureSync(), { instanceOf: LayoutError })
  t.is(e.code, 'ENOTDIR')
  t.is(fs.readFileSync(socketLinkParent(fake), 'utf8'), 'squat')
  fs.unlinkSync(socketLinkParent(fake))
})

test('squatting: /tmp/bl-{uid} owned by another uid is refused (EPERM, naming the owner)', (t) => {
  const fake = privateLinkUid(t)
  fs.mkdirSync(socketLinkParent(fake), { mode: 0o700 })
  // As root the dir is chowned to a stranger; otherwise it is simply ours, not fake's.
  if (uid === 0) fs.chownSync(socketLinkParent(fake), fake + 1, fake + 1)
  const s = new BoxSockets('box1', '/x/sockets', { uid: fake })
  const e = t.throws(() => s.ensureSync(), { instanceOf: LayoutError })
  t.is(e.code, 'EPERM')
  t.is(e.reason, 'foreign-owner')
  t.regex(e.message, new RegExp(`owned by uid ${uid === 0 ? fake + 1 : uid}\\b`))
  t.regex(e.message, /squatting/)
  t.deepEqual(fs.readdirSync(socketLinkParent(fake)), [])
})

testWith([needs.root], 'a looser mode on /tmp/bl-{uid} is repaired to 0700', async (t) => {
  const fake = privateLinkUid(t)
  fs.mkdirSync(socketLinkParent(fake))
  fs.chmodSync(socketLinkParent(fake), 0o755)
  fs.chownSync(socketLinkParent(fake), fake, fake)
  const s = new BoxSockets('box1', path.join(scratch(t), 'sockets'), { uid: fake })
  const r = await s.ensure()
  t.true(r.modeRepaired)
  t.is(r.link, 'created')
  t.is(fs.statSync(socketLinkParent(fake)).mode & 0o7777, 0o700)
})

testWith([needs.root], 'root preparing for another uid creates /tmp/bl-{uid} owned by that uid, 0700', async (t) => {
  const fake = privateLinkUid(t)
  const s = new BoxSockets('box1', path.join(scratch(t), 'sockets'), { uid: fake })
  await s.ensure()
  const st = fs.lstatSync(socketLinkParent(fake))
  t.true(st.isDirectory())
  t.is(st.uid, fake, 'the runtime running as that uid can use it')
  t.is(st.mode & 0o7777, 0o700)
  t.is(fs.readlinkSync(s.bindingDir), s.realDir)
})

test('/tmp/bl-{uid} is ours and 0700', (t) => {
  const mine = new BoxSockets(mintBoxId(), path.join(scratch(t), 'sockets'))
  t.teardown(() => mine.removeSync())
  mine.ensureSync()
  const st = fs.statSync(mine.parentDir)
  t.is(st.mode & 0o7777, 0o700)
  t.is(st.uid, uid)
})

test('the link: correct is kept, stale or dangling is replaced, a file or dir in its place is refused', async (t) => {
  const root = scratch(t)
  const real = path.join(root, 'sockets')
  fs.mkdirSync(real)
  // As root, a uid of its own: a gc of the real /tmp/bl-{uid} elsewhere
  // could remove the dangling link planted below before ensure() sees it.
  const s = new BoxSockets(mintBoxId(), real, isRoot ? { uid: privateLinkUid(t) } : {})
  t.teardown(() => { fs.rmSync(s.bindingDir, { recursive: true, force: true }) })
  t.is((await s.ensure()).link, 'created')
  t.is((await s.ensure()).link, 'kept')
  fs.unlinkSync(s.bindingDir)
  fs.symlinkSync(path.join(root, 'old-home-sockets'), s.bindingDir)
  const replaced = await s.ensure()
  t.is(replaced.link, 'replaced')
  t.is(replaced.previousTarget, path.join(root, 'old-home-sockets'))
  t.is(fs.readlinkSync(s.bindingDir), real)

  fs.unlinkSync(s.bindingDir)
  fs.writeFileSync(s.bindingDir, 'not a link')
  const asFile = await t.throwsAsync(s.ensure(), { instanceOf: LayoutError })
  t.is(asFile.code, 'EEXIST')
  t.is(asFile.reason, 'link-occupied')
  t.is(fs.readFileSync(s.bindingDir, 'utf8'), 'not a link')
  fs.unlinkSync(s.bindingDir)
  fs.mkdirSync(s.bindingDir)
  const asDir = t.throws(() => s.ensureSync(), { instanceOf: LayoutError })
  t.is(asDir.reason, 'link-occupied')
  t.false(s.removeSync(), 'remove() never deletes what is not our link')
  t.true(fs.statSync(s.bindingDir).isDirectory())
})

test('remove() is idempotent and only removes our own link', async (t) => {
  const root = scratch(t)
  // A live link: gc in other test files sweeps dangling ones from this /tmp/bl-{uid}.
  fs.mkdirSync(path.join(root, 'sockets'))
  const s = new BoxSockets(mintBoxId(), path.join(root, 'sockets'))
  t.teardown(() => fs.rmSync(s.bindingDir, { force: true }))
  t.false(await s.remove())
  s.ensureSync()
  const other = new BoxSockets(s.boxId, path.join(root, 'other-sockets'))
  t.false(other.removeSync(), 'points elsewhere: not ours')
  t.true(fs.lstatSync(s.bindingDir).isSymbolicLink())
  t.true(await s.remove())
  t.false(await s.remove())
})

test('two processes ensure() the same box at once: both succeed, one link', async (t) => {
  const root = scratch(t)
  const real = path.join(root, 'sockets')
  // A live link: gc in other test files sweeps dangling ones from this /tmp/bl-{uid}.
  fs.mkdirSync(real)
  const boxId = mintBoxId()
  t.teardown(() => fs.rmSync(`/tmp/bl-${uid}/${boxId}`, { force: true }))
  for (let round = 0; round < 3; round++) {
    fs.rmSync(`/tmp/bl-${uid}/${boxId}`, { force: true })
    const at = String(Date.now() + 1200)
    const runs = await Promise.all([0, 1, 2, 3].map(() =>
      run(process.execPath, tsNode('test/fixtures/ensure-link.ts', boxId, real, at), { cwd: repoRoot })))
    const results = runs.map((r) => JSON.parse(r.stdout) as { ok: boolean, result: { link: string } })
    t.true(results.every((r) => r.ok), JSON.stringify(results))
    t.true(results.filter((r) => r.result.link === 'created').length >= 1)
    t.is(fs.readlinkSync(`/tmp/bl-${uid}/${boxId}`), real)
  }
})

testWith([needs.root], 'sweepStale() removes only dangling links', async (t) => {
  const fake = privateLinkUid(t)
  const root = scratch(t)
  fs.mkdirSync(path.join(root, 'live'))
  const live = new BoxSockets('live1', path.join(root, 'live'), { uid: fake })
  const dead = new BoxSockets('dead1', path.join(root, 'gone'), { uid: fake })
  fs.mkdirSync(socketLinkParent(fake), { mode: 0o700 })
  fs.chownSync(socketLinkParent(fake), fake, fake)
  live.ensureSync()
  dead.ensureSync()
  fs.writeFileSync(path.join(socketLinkParent(fake), 'a-file'), 'x')
  t.deepEqual(await BoxSockets.sweepStale(fake), ['dead1'])
  t.deepEqual(fs.readdirSync(socketLinkParent(fake)).sort(), ['a-file', 'live1'])
  t.deepEqual(BoxSockets.sweepStaleSync(fake), [])
})

test('policyPaths: the real dir (rw), the link (rw), its parent (ro)', (t) => {
  const s = new BoxSockets('b1', '/h/boxes/b1/sockets', { uid: 1000 })
  t.deepEqual(s.policyPaths(), [
    { path: '/h/boxes/b1/sockets', access: 'rw' },
    { path: '/tmp/bl-1000/b1', access: 'rw' },
    { path: '/tmp/bl-1000', access: 'ro' },
  ])
})

test('BoxSockets is a pure value: computing paths touches nothing', (t) => {
  const s = new BoxSockets(mintBoxId(), '/nonexistent/boxes/x/sockets', { uid: 31337 })
  t.truthy(s.netKrunSock)
  t.false(fs.existsSync(s.parentDir))
  t.throws(() => new BoxSockets('b1', 'relative/sockets'), { code: 'ERR_INVALID_ARG' })
})

// ---------------------------------------------------------------------------
// listenUnix / connectUnix

/** A directory at least `bytes` long, in a scratch dir of its own (`top`). */
function longDir (t: ExecutionContext, bytes: number): { dir: string, top: string } {
  const top = scratch(t)
  let dir = top
  while (Buffer.byteLength(dir) < bytes - 20) dir = path.join(dir, 'x'.repeat(30))
  fs.mkdirSync(dir, { recursive: true })
  return { dir, top }
}

// Serial, and it checks only the fds into its own tree: a count of all this
// process's fds moves with other tests' child processes and pipes.
testWith([needs.linux], 'listenUnix on a 150-byte path works, connectUnix reaches it, close leaves nothing', async (t) => {
  const { dir, top } = longDir(t, 150)
  const p = path.join(dir, 'server.sock')
  t.true(Buffer.byteLength(p) >= 140)
  t.false(fitsSunPath(p))
  t.deepEqual(fdsUnder(top), [])
  const server = await listenUnix(p)
  echoServer(server)
  t.true(fs.lstatSync(p).isSocket(), 'the socket is at its real path')
  const client = await connectUnix(p)
  t.is(await roundTrip(client, 'hi'), 'echo:hi')
  client.destroy()
  await new Promise((resolve) => server.close(resolve))
  t.false(fs.existsSync(p), 'close removed the socket file')
  t.deepEqual(fs.readdirSync(dir), [])
  t.deepEqual(fdsUnder(top), [], 'the directory fds were closed')
}, true)

test('with long paths off, a 150-byte path fails ENAMETOOLONG and creates nothing', async (t) => {
  const { dir } = longDir(t, 150)
  const p = path.join(dir, 'server.sock')
  const e = await t.throwsAsync(listenUnix(p, { longPaths: false }), { instanceOf: LayoutError })
  t.is(e.code, 'ENAMETOOLONG')
  t.is(e.path, p)
  t.is(e.syscall, 'bind')
  await t.throwsAsync(connectUnix(p, { longPaths: false }), { code: 'ENAMETOOLONG' })
  t.deepEqual(fs.readdirSync(dir), [], 'nothing created (Node alone would bind a truncated path)')
  t.deepEqual(fs.readdirSync(path.dirname(dir)).filter((n) => n !== path.basename(dir)), [])
})

test('a path that fits is used as is', async (t) => {
  const p = path.join(scratch(t), 's.sock')
  const server = await listenUnix(p)
  t.is(server.address(), p)
  echoServer(server)
  const client = await connectUnix(p)
  t.is(await roundTrip(client, 'x'), 'echo:x')
  await new Promise((resolve) => server.close(resolve))
  t.false(fs.existsSync(p))
})

test('replaceStale: a dead socket file is replaced; a live one is not', async (t) => {
  const p = path.join(scratch(t), 's.sock')
  const first = await listenUnix(p)
  const busy = await t.throwsAsync(listenUnix(p, { replaceStale: true }), { instanceOf: LayoutError })
  t.is(busy.code, 'EADDRINUSE')
  // Simulate a crashed server: the socket file stays, nobody accepts.
  const { execFileSync } = await import('node:child_process')
  execFileSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(p + '2')}, () => process.exit(0))`])
  first.close()
  t.true(fs.existsSync(p + '2'), 'a stale socket file')
  await t.throwsAsync(listenUnix(p + '2'), { code: 'EADDRINUSE' })
  const server = await listenUnix(p + '2', { replaceStale: true })
  await new Promise((resolve) => server.close(resolve))
  t.false(fs.existsSync(p + '2'))
})

test('replaceStale never deletes what is not a socket', async (t) => {
  const p = path.join(scratch(t), 's.sock')
  fs.writeFileSync(p, 'data')
  const e = await t.throwsAsync(listenUnix(p, { replaceStale: true }), { instanceOf: LayoutError })
  t.is(e.code, 'EADDRINUSE')
  t.is(fs.readFileSync(p, 'utf8'), 'data')
})

test('connectUnix to nothing: ENOENT / ECONNREFUSED as LayoutError', async (t) => {
  const e = await t.throwsAsync(connectUnix(path.join(scratch(t), 'none.sock')), { instanceOf: LayoutError })
  t.is(e.code, 'ENOENT')
})

/** A python3 child that binds a Unix socket of kind at file and stays until its stdin closes (or exits: stale). */
async function pyBound (t: ExecutionContext, file: string, kind: 'SOCK_STREAM' | 'SOCK_DGRAM', stay: boolean): Promise<void> {
  const code = `import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.${kind})\ns.bind(sys.argv[1])\nprint('bound', flush=True)\n` +
    (stay ? 'sys.stdin.read()\n' : '')
  const child = spawn('python3', ['-c', code, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  // Held from the spawn: a child that prints and exits may be reaped before
  // its output is read, and an 'exit' listener added after that waits forever.
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve())
    child.once('error', reject)
    exited.then((c) => { if (c !== 0) reject(new Error(`python3 exited ${String(c)}`)) })
  })
  if (stay) t.teardown(() => { child.stdin.end() })
  else await exited
}

testWith([needs.linux, needs.root, needs.tool('python3', 'python3')],
  'inspect and box list report which sockets exist and accept connections; a planted symlink is never dialed', async (t) => {
    const home = new HomeLayout({ home: path.join(scratch(t), 'home') })
    home.prepareSync()
    const box = home.box(mintBoxId(), { uid: privateLinkUid(t) })
    await box.prepare()
    const listening = await listenUnix(box.socketPath)
    t.teardown(() => listening.close())
    await pyBound(t, path.join(box.socketsDir, 'ready.sock'), 'SOCK_STREAM', false) // bound, then gone: stale
    await pyBound(t, path.join(box.socketsDir, 'net.sock-krun.sock'), 'SOCK_DGRAM', true)
    // Someone else's listener outside the box, and a symlink to it planted as net.sock.
    const outsidePath = path.join(scratch(t), 'outside.sock')
    const outside = await listenUnix(outsidePath)
    t.teardown(() => outside.close())
    let dialed = 0
    outside.on('connection', (c) => { dialed++; c.destroy() })
    fs.symlinkSync(outsidePath, path.join(box.socketsDir, 'net.sock'))
    fs.writeFileSync(path.join(box.socketsDir, 'gvproxy-ctl.sock'), 'not a socket')
    const i = await box.inspect()
    t.deepEqual(i.sockets, [
      { name: 'box.sock', path: box.socketPath, state: 'listening' },
      { name: 'ready.sock', path: box.readySocketPath, state: 'refused' },
      { name: 'net.sock', path: box.netBackendSocketPath, state: 'not-a-socket' },
      { name: 'net.sock-krun.sock', path: box.netBackendPeerSocketPath, state: 'listening' },
      { name: 'gvproxy-ctl.sock', path: box.gvproxyControlSocketPath, state: 'not-a-socket' },
    ])
    fs.rmSync(path.join(box.socketsDir, 'gvproxy-ctl.sock'))
    const row = home.boxesSync().find((b) => b.name === box.boxId)
    t.deepEqual(row?.sockets, [
      { name: 'box.sock', state: 'listening' }, { name: 'ready.sock', state: 'refused' },
      { name: 'net.sock', state: 'not-a-socket' }, { name: 'net.sock-krun.sock', state: 'listening' },
    ], 'box list: the sockets present; a missing one is not listed')
    // Connections are accepted in order: once our own arrives, any the
    // probes made would have been counted before it.
    // A failed connect fails the test with its cause (it used to be
    // swallowed, leaving the wait for the connection without an end).
    const client = net.createConnection(outsidePath)
    const ours = new Promise<void>((resolve, reject) => {
      outside.once('connection', () => resolve())
      client.once('error', reject)
    })
    await ours
    client.destroy()
    t.is(dialed, 1, 'only our own connection: the symlink planted in sockets/ was never followed')
  })
