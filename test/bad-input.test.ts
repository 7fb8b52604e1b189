// Bad input everywhere: every public function, constructor and method,
// given a wrong type, NUL, an empty or 1 MiB string, an out-of-range number,
// a proxy whose traps throw or an object whose getters throw, throws (sync
// forms) or rejects with (Promise forms) LayoutError ERR_INVALID_ARG naming
// the argument, and touches nothing: the scratch home's tree (types, modes,
// sizes, mtimes, contents), its mounts, the socket-link dir and this
// process's fds are the same after each case. The table is driven by the
// README's export table: an export or a method without a row fails.
import test, { type ExecutionContext } from 'ava'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import * as api from '../lib/index.ts'
import {
  BoxLayout, BoxSockets, ExitFile, HomeLayout, ImageLayout, type JailedShim, LayoutError, LockManager, PidFile, RuntimeLock,
  SharedContainerLayout, SharedGuestLayout, mintBoxId, socketLinkParent,
} from '../lib/index.ts'
import { testLinkUid } from './helpers/boxes.ts'
import { fdCount, scratch } from './helpers/fixtures.ts'
import { readmeExportNames } from './helpers/readme.ts'

// ---------------------------------------------------------------------------
// Argument kinds and their bad values

const MiB = 'a'.repeat(1 << 20)
const throwingGetter = (keys: string[]): object => {
  const o = {}
  for (const k of keys) Object.defineProperty(o, k, { enumerable: true, get () { throw new Error(`getter ${k} ran`) } })
  return o
}
/** A proxy every trap of which throws: nothing may run it. */
const hostile = new Proxy({}, new Proxy({}, { get: () => () => { throw new Error('a proxy trap ran') } }))
/** An object whose conversions throw: nothing may stringify it. */
const unconvertible = { toString () { throw new Error('toString ran') }, toJSON () { throw new Error('toJSON ran') }, valueOf () { throw new Error('valueOf ran') } }
const sparseGetter = (): unknown[] => { const a: unknown[] = []; Object.defineProperty(a, 0, { get () { throw new Error('element getter ran') } }); return a }

const NOT_STRINGS: Array<[string, unknown]> = [
  ['null', null], ['a number', 42], ['a bigint', 10n ** 30n], ['a symbol', Symbol('s')], ['a boolean', true],
  ['an object', {}], ['an array', []], ['a function', () => 'x'], ['a proxy', hostile], ['unconvertible', unconvertible],
]
const BAD_NUMBERS: Array<[string, unknown]> = [
  ['NaN', NaN], ['Infinity', Infinity], ['a fraction', 1.5], ['2^53', 2 ** 53], ['a string', '1'], ['a bigint', 1n],
  ['null', null], ['an object', {}], ['a proxy', hostile], ['unconvertible', unconvertible],
]

interface Kind {
  valid: () => unknown
  /** Bad values with labels; `under` names the argument the message must name (default the slot's). */
  bad: () => Array<[string, unknown, string?]>
  optional?: boolean
}

const required = (k: Kind): Kind => ({ ...k, bad: () => [['undefined', undefined], ...k.bad()] })
const optional = (k: Kind): Kind => ({ ...k, optional: true })

function pathKind (valid: () => string, { absolute = true } = {}): Kind {
  return {
    valid,
    bad: () => [
      ...NOT_STRINGS, ['empty', ''], ['NUL', `${valid()}\0x`], ['1 MiB', `/${MiB}`], ['a lone surrogate', `${valid()}\ud800`],
      ...(absolute ? [['relative', 'relative/x'] as [string, unknown]] : []),
    ],
  }
}
function idKind (valid = 'b1'): Kind {
  return { valid: () => valid, bad: () => [...NOT_STRINGS, ['empty', ''], ['dot-dot', '..'], ['slash', 'a/b'], ['NUL', 'a\0b'], ['129 bytes', 'x'.repeat(129)], ['1 MiB', MiB]] }
}
function stringKind (valid: string, maxBytes = 4095, { text = false, nonEmpty = true } = {}): Kind {
  return {
    valid: () => valid,
    bad: () => [...NOT_STRINGS, ...(nonEmpty ? [['empty', ''] as [string, unknown]] : []), ['over the bound', 'a'.repeat(maxBytes + 1)],
      ...(text ? [] : [['NUL', 'a\0b'] as [string, unknown]])],
  }
}
const boolKind = (valid = true): Kind => ({ valid: () => valid, bad: () => [['null', null], ['empty string', ''], ['0', 0], ['a string', 'true'], ['an object', {}], ['a proxy', hostile]] })
function intKind (valid: number, min: number, max: number): Kind {
  return { valid: () => valid, bad: () => [...BAD_NUMBERS, ['below', min - 1], ['above', max + 1]] }
}
function oneOfKind (valid: string): Kind {
  return { valid: () => valid, bad: () => [['unknown', 'sideways'], ['empty', ''], ['null', null], ['a number', 1], ['a symbol', Symbol('m')], ['a proxy', hostile]] }
}
function instanceKind (valid: () => unknown): Kind {
  return { valid, bad: () => [['null', null], ['a plain object', {}], ['a string', 'x'], ['a proxy', hostile], ['getters', throwingGetter(['held'])]] }
}
/** An options object: itself bad, or one key bad at a time (named `${slot}.${key}`). */
function optionsKind (keys: Record<string, Kind>, { strings = true } = {}): Kind {
  return {
    valid: () => Object.fromEntries(Object.entries(keys).map(([k, kind]) => [k, kind.valid()])),
    bad: () => {
      const valid = Object.fromEntries(Object.entries(keys).map(([k, kind]) => [k, kind.valid()]))
      const out: Array<[string, unknown, string?]> = [
        ['null', null], ['a number', 42], ...(strings ? [['a string', 'x'] as [string, unknown]] : []), ['an array', []], ['a bigint', 1n],
        ['a proxy', hostile], ['every getter throws', throwingGetter(Object.keys(keys))],
      ]
      for (const [k, kind] of Object.entries(keys)) {
        for (const [label, value, under] of kind.bad()) {
          out.push([`.${k} ${label}`, { ...valid, [k]: value }, `.${k}${under ?? ''}`])
        }
      }
      return out
    },
  }
}
function arrayKind (element: Kind, { nonEmpty = false } = {}): Kind {
  return {
    valid: () => [element.valid()],
    bad: () => [
      ['null', null], ['a string', 'x'], ['an object', {}], ['a proxy', hostile], ['a throwing element getter', sparseGetter(), '[0]'],
      ...(nonEmpty ? [['empty', []] as [string, unknown]] : []),
      ...element.bad().map(([label, value, under]): [string, unknown, string] => [`[0] ${label}`, [value], `[0]${under ?? ''}`]),
    ],
  }
}

// ---------------------------------------------------------------------------
// The world each case runs against: a prepared home and box, and files

interface World {
  root: string
  home: HomeLayout
  box: BoxLayout
  uid: number
  shim: string
  plain: string
  /**
   * A new open fd (of /dev/null) for each call. A RuntimeLock takes it over
   * and closes it on release, so no two rows may share one: the number
   * freed by one would name whatever the next open got.
   */
  freshFd: () => number
  /** The fds freshFd() made that nothing has taken over: closed at teardown. */
  spareFds: Set<number>
}

function makeWorld (t: ExecutionContext): World {
  const root = scratch(t, 'blx-bad-input-')
  // As root, a link dir of its own; otherwise our own uid's, shared with
  // other tests, of which only this box's link is compared.
  const uid = testLinkUid(t)
  const home = new HomeLayout({ home: path.join(root, 'home') })
  home.prepareSync()
  const box = home.box(mintBoxId(), { isolateMounts: true, uid })
  box.prepareSync()
  box.pidFile.writeSync(process.pid)
  box.exitFile.writeSync({ type: 'signal', exitCode: 137, signal: 'SIGKILL' })
  const shim = path.join(root, 'dist', 'boxlite-shim')
  fs.mkdirSync(path.dirname(shim))
  fs.writeFileSync(shim, '#!/bin/sh\n', { mode: 0o755 })
  const plain = path.join(root, 'plain')
  fs.writeFileSync(plain, 'plain')
  t.teardown(() => { try { box.cleanupSync() } catch { /* scratch() removes the rest */ } })
  const spareFds = new Set<number>()
  t.teardown(() => { for (const fd of spareFds) fs.closeSync(fd) })
  const freshFd = () => {
    const fd = fs.openSync('/dev/null', 'r')
    spareFds.add(fd)
    return fd
  }
  return { root, home, box, uid, shim, plain, freshFd, spareFds }
}

/** What "touched" would change: the tree under root, the link dir, the mounts, our fds. */
function snapshot (w: World): string {
  const lines: string[] = []
  const walk = (p: string): void => {
    const st = fs.lstatSync(p, { bigint: true })
    let extra = ''
    if (st.isSymbolicLink()) extra = fs.readlinkSync(p)
    else if (st.isFile()) extra = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')
    lines.push(`${p} ${st.mode} ${st.uid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${extra}`)
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e))
  }
  walk(w.root)
  const links = socketLinkParent(w.uid)
  if (process.getuid?.() === 0 && fs.existsSync(links)) walk(links)
  else if (fs.existsSync(w.box.sockets.bindingDir)) walk(w.box.sockets.bindingDir)
  lines.push(...fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(w.root)))
  lines.push(`fds ${fdCount()}`)
  return lines.join('\n')
}

// ---------------------------------------------------------------------------
// The table: one row per function, constructor or method that takes input

interface Row {
  /** `export`, `Export#method`, `Export.static` or `new Export`. */
  name: string
  async?: boolean
  slots: Array<[name: string, kind: Kind]>
  call: (w: World, ...a: unknown[]) => unknown
}

const P = (w: () => string) => required(pathKind(w))
const abs = (rel: string) => () => `/tmp/blx-bad-input-valid/${rel}`
const uidKind = (valid = 40000) => intKind(valid, 0, 0xfffffffe)
const cloneOptions = optional(optionsKind({ mode: optional(oneOfKind('auto')) }))

function rows (w: World): Row[] {
  const { home, box } = w
  const sync = (name: string, slots: Row['slots'], call: Row['call']): Row => ({ name, slots, call })
  const both = (name: string, slots: Row['slots'], call: (sync: boolean, ...a: unknown[]) => unknown): Row[] => [
    { name, async: true, slots, call: (_w, ...a) => call(false, ...a) },
    { name: `${name}Sync`, slots, call: (_w, ...a) => call(true, ...a) },
  ]
  const any = (x: unknown) => x as any
  const pidRecord = optionsKind({ pid: required(intKind(1, 1, 0x7fffffff)), startTime: optional(stringKind('123', 4096)) })
  const record = optionsKind({ type: required(oneOfKind('signal')), exitCode: required(intKind(137, -(2 ** 31), 2 ** 31 - 1)), signal: required(stringKind('SIGKILL', 65536, { text: true, nonEmpty: false })) })
  const policyKeys = {
    volumes: optional(arrayKind(optionsKind({ path: required(pathKind(() => w.root)), readOnly: optional(boolKind()) }))),
    backingRoots: optional(arrayKind(pathKind(() => w.root))),
    nestedVirtualization: optional(boolKind(false)),
  }
  // Bytes a disk usage report gives, or null where they cannot be known (macOS).
  const nullableBytes: Kind = { valid: () => 0, bad: () => intKind(0, 0, Number.MAX_SAFE_INTEGER).bad().filter(([label]) => label !== 'null') }
  const policyOptions = optional(optionsKind(policyKeys))
  const sha = stringKind(`sha256:${'0'.repeat(64)}`, 71)
  const seatbeltKeys = { network: optional(boolKind()), networkBackend: optional(boolKind()), shim: optional(pathKind(() => w.shim)) }
  const seatbeltOptions = optional(optionsKind({ ...policyKeys, ...seatbeltKeys }))
  const stdio = optional(oneOfKind('ignore'))
  const jailKeys = {
    ...policyKeys,
    ...seatbeltKeys,
    detached: optional(boolKind(false)),
    stdin: stdio,
    stdout: stdio,
    env: optional({ valid: () => ({ A: 'b' }), bad: () => [['null', null], ['a string', 'x'], ['an array', []], ['a proxy', hostile], ['a getter', throwingGetter(['A']), '.A'], ['a number value', { A: 1 }, '.A'], ['a NUL value', { A: 'a\0b' }, '.A'], ['a name with =', { 'A=B': 'c' }, '.A=B']] }),
    capabilities: optional(arrayKind(stringKind('cap'))),
  }
  const fdKind: Kind = { valid: w.freshFd, bad: () => intKind(0, 0, 0x7fffffff).bad() }
  const command = required(arrayKind(stringKind('/bin/true', 128 * 1024 - 1), { nonEmpty: true }))
  return [
    sync('new LayoutError', [['init', required(optionsKind({ code: required(stringKind('EIO', 64)), reason: required(stringKind('syscall-failed', 64)), message: required(stringKind('m', 65536, { text: true })), errno: optional(intKind(-5, -(2 ** 31), 2 ** 31 - 1)) }))]],
      (_w, init) => new LayoutError(any(init))),
    sync('validateBoxId', [['boxId', required(idKind())]], (_w, v) => api.validateBoxId(any(v))),
    sync('validateContainerId', [['containerId', required(idKind())]], (_w, v) => api.validateContainerId(any(v))),
    sync('validateVolumeName', [['volumeName', required(idKind())]], (_w, v) => api.validateVolumeName(any(v))),
    sync('BoxId.validate', [['boxId', required(idKind())]], (_w, v) => api.BoxId.validate(any(v))),
    sync('new HomeLayout', [['options', optional(optionsKind({ home: optional(pathKind(abs('h'))), bindMounts: optional(boolKind()) }, { strings: false }))]],
      (_w, o) => new HomeLayout(any(o))),
    sync('new HomeLayout(options.env)', [['options', optional(optionsKind({ env: optional(optionsKind({ BOXLITE_HOME: optional(pathKind(abs('h'))) })) }, { strings: false }))]],
      (_w, o) => new HomeLayout(any(o))),
    sync('new HomeLayout(home)', [['home', { valid: abs('h'), bad: () => pathKind(abs('h')).bad().filter(([, v]) => typeof v === 'string') }]], (_w, h) => new HomeLayout(any(h))),
    sync('resolveHome', [['env', optional(optionsKind({ BOXLITE_HOME: optional(pathKind(abs('h'))) }))]], (_w, e) => api.resolveHome(any(e))),
    // An empty HOME is an unset one (the user database's home is used), as a shell does.
    sync('resolveHome(HOME)', [['env', optional(optionsKind({ HOME: optional({ valid: abs('u'), bad: () => pathKind(abs('u')).bad().filter(([l]) => l !== 'empty') }) }))]], (_w, e) => api.resolveHome(any(e))),
    sync('HomeLayout#box', [['boxId', required(idKind())], ['options', optional(optionsKind({ isolateMounts: optional(boolKind()), uid: optional(uidKind(w.uid)) }))]],
      (_w, id, o) => home.box(any(id), any(o))),
    ...both('HomeLayout#gc', [['options', optional(optionsKind({ dryRun: optional(boolKind()), uid: optional(uidKind(w.uid)), runtimeLock: optional(instanceKind(() => undefined)) }))]],
      (s, o) => s ? home.gcSync(any(o)) : home.gc(any(o))),
    ...both('HomeLayout#gcStorage', [['options', optional(optionsKind({ apply: optional(boolKind()), graceSeconds: optional(intKind(600, 0, 2 ** 31 - 1)), runtimeLock: optional(instanceKind(() => undefined)) }))]],
      (s, o) => s ? home.gcStorageSync(any(o)) : home.gcStorage(any(o))),
    {
      name: 'HomeLayout#metrics',
      async: true,
      slots: [['options', optional(optionsKind({ usage: optional(optionsKind({ areas: required(arrayKind(optionsKind({ name: required(stringKind('bases', 256)), physicalBytes: required(nullableBytes), sharedBytes: required(nullableBytes) }))) })) }))]],
      call: (_w, o) => home.metrics(any(o))
    },
    sync('new ImageLayout', [['imagesDir', P(abs('images'))]], (_w, d) => new ImageLayout(any(d))),
    sync('ImageLayout#localBundleCacheDir', [['bundlePath', required(stringKind('/b'))], ['manifestDigest', required(stringKind('sha256:abcdef0123', 1024))]],
      (_w, b, m) => home.images.localBundleCacheDir(any(b), any(m))),
    sync('new BoxLayout', [['boxDir', P(() => box.root)], ['options', optional(optionsKind({ isolateMounts: optional(boolKind()), bindMounts: optional(boolKind()), uid: optional(uidKind(w.uid)) }))]],
      (_w, d, o) => new BoxLayout(any(d), any(o))),
    sync('BoxLayout#container', [['containerId', required(idKind('c1'))]], (_w, c) => box.container(any(c))),
    sync('BoxLayout#containerExitPath', [['containerId', required(idKind('c1'))]], (_w, c) => box.containerExitPath(any(c))),
    ...both('BoxLayout#readContainerExit', [['containerId', required(idKind('c1'))]], (s, c) => s ? box.readContainerExitSync(any(c)) : box.readContainerExit(any(c))),
    ...both('BoxLayout#writeContainerExit', [['containerId', required(idKind('c1'))], ['exit', required(optionsKind({ exitCode: required(intKind(0, -(2 ** 31), 2 ** 31 - 1)) }))]],
      (s, c, e) => s ? box.writeContainerExitSync(any(c), any(e)) : box.writeContainerExit(any(c), any(e))),
    ...both('BoxLayout#mountShared', [['options', optional(optionsKind({ require: optional(oneOfKind('any')), api: optional(oneOfKind('auto')) }))]],
      (s, o) => s ? box.mountSharedSync(any(o)) : box.mountShared(any(o))),
    ...both('BoxLayout#installShim', [['shimPath', P(() => w.shim)], ['options', cloneOptions]],
      (s, p, o) => s ? box.installShimSync(any(p), any(o)) : box.installShim(any(p), any(o))),
    ...both('BoxLayout#writeCa', [['ca', required(optionsKind({ cert: required(stringKind('CERT', 65536, { text: true })), key: required(stringKind('KEY', 65536, { text: true })) }))]],
      (s, c) => s ? box.writeCaSync(any(c)) : box.writeCa(any(c))),
    ...both('BoxLayout#sandboxPolicy', [['options', policyOptions]], (s, o) => s ? box.sandboxPolicySync(any(o)) : box.sandboxPolicy(any(o))),
    ...both('BoxLayout#bwrapArgs', [['command', required(arrayKind(stringKind('/bin/true', 128 * 1024 - 1), { nonEmpty: true }))], ['options', policyOptions]],
      (s, c, o) => s ? box.bwrapArgsSync(any(c), any(o)) : box.bwrapArgs(any(c), any(o))),
    sync('new SharedGuestLayout', [['base', P(abs('mounts'))]], (_w, b) => new SharedGuestLayout(any(b))),
    sync('SharedGuestLayout#container', [['containerId', required(idKind('c1'))]], (_w, c) => box.sharedLayout.container(any(c))),
    sync('new SharedContainerLayout', [['root', P(abs('containers/c1'))]], (_w, r) => new SharedContainerLayout(any(r))),
    sync('SharedContainerLayout#volumeDir', [['name', required(idKind('v1'))]], (_w, n) => box.sharedLayout.container('c1').volumeDir(any(n))),
    sync('new BoxSockets', [['boxId', required(idKind())], ['realSocketsDir', P(abs('sockets'))], ['options', optional(optionsKind({ uid: optional(uidKind(w.uid)) }))]],
      (_w, i, d, o) => new BoxSockets(any(i), any(d), any(o))),
    sync('BoxSockets#ensureResult', [['r', required(optionsKind({ state: required(oneOfKind('kept')), modeRepaired: required(boolKind(false)) }))]], (_w, r) => box.sockets.ensureResult(any(r))),
    ...both('BoxSockets.sweepStale', [['uid', optional(uidKind(w.uid))]], (s, u) => s ? BoxSockets.sweepStaleSync(any(u)) : BoxSockets.sweepStale(any(u))),
    sync('socketLinkParent', [['uid', optional(uidKind(w.uid))]], (_w, u) => api.socketLinkParent(any(u))),
    { name: 'listenUnix', async: true, slots: [['p', required(pathKind(() => path.join(w.root, 'l.sock'), { absolute: false }))], ['options', optional(optionsKind({ longPaths: optional(boolKind()), backlog: optional(intKind(8, 0, 0x7fffffff)), replaceStale: optional(boolKind()), server: optional(instanceKind(() => undefined)) }))]], call: (_w, p, o) => api.listenUnix(any(p), any(o)) },
    { name: 'connectUnix', async: true, slots: [['p', required(pathKind(() => path.join(w.root, 'c.sock'), { absolute: false }))], ['options', optional(optionsKind({ longPaths: optional(boolKind()) }))]], call: (_w, p, o) => api.connectUnix(any(p), any(o)) },
    sync('fitsSunPath', [['p', required(stringKind('/x'))]], (_w, p) => api.fitsSunPath(any(p))),
    ...both('probe', [['path', required(pathKind(() => w.root, { absolute: false }))]], (s, p) => s ? api.probeSync(any(p)) : api.probe(any(p))),
    ...both('sameFilesystem', [['paths', required(arrayKind(pathKind(() => w.root, { absolute: false }), { nonEmpty: true }))]], (s, p) => s ? api.sameFilesystemSync(any(p)) : api.sameFilesystem(any(p))),
    ...both('sharesExtents', [['path', required(pathKind(() => w.plain, { absolute: false }))]], (s, p) => s ? api.sharesExtentsSync(any(p)) : api.sharesExtents(any(p))),
    ...both('cloneFile', [['src', required(pathKind(() => w.plain, { absolute: false }))], ['dst', required(pathKind(() => path.join(w.root, 'copy'), { absolute: false }))], ['options', cloneOptions]],
      (s, a, b, o) => s ? api.cloneFileSync(any(a), any(b), any(o)) : api.cloneFile(any(a), any(b), any(o))),
    sync('new RuntimeLock', [['home', P(() => home.home)], ['fd', required(fdKind)]], (_w, h, fd) => new RuntimeLock(any(h), any(fd))),
    ...both('RuntimeLock.acquire', [['home', P(() => path.join(w.root, 'no-home'))]], (s, h) => s ? RuntimeLock.acquireSync(any(h)) : RuntimeLock.acquire(any(h))),
    sync('new LockManager', [['locksDir', P(() => home.locksDir)]], (_w, d) => new LockManager(any(d))),
    ...(['pathFor', 'isHeld', 'unlock'] as const).map((m) => sync(`LockManager#${m}`, [['id', required(intKind(7, 0, 0xffffffff))]], (_w, id) => home.lockManager()[m](any(id)))),
    ...(['lock', 'tryLock', 'free'] as const).flatMap((m) => both(`LockManager#${m}`, [['id', required(intKind(7, 0, 0xffffffff))]],
      (s, id) => { const lm = home.lockManager(); return s ? lm[`${m}Sync`](any(id)) : lm[m](any(id)) })),
    sync('new PidFile', [['file', P(() => path.join(w.root, 'pid'))]], (_w, f) => new PidFile(any(f))),
    ...both('PidFile#write', [['pid', optional(intKind(process.pid, 1, 0x7fffffff))], ['capabilities', optional(arrayKind(stringKind('cap', 4096 - 32)))]],
      (s, p, c) => s ? box.pidFile.writeSync(any(p), any(c)) : box.pidFile.write(any(p), any(c))),
    sync('parsePidFile', [['text', required(stringKind('1\n', 4096, { text: true, nonEmpty: false }))], ['file', optional(stringKind('shim.pid'))]], (_w, x, f) => api.parsePidFile(any(x), any(f))),
    sync('judgeIdentity', [['record', required(pidRecord)], ['now', required(optionsKind({ alive: required(boolKind()), startTime: required(stringKind('123', 20, { nonEmpty: false })) }))]],
      (_w, r, n) => api.judgeIdentity(any(r), any(n))),
    sync('new ExitFile', [['file', P(() => path.join(w.root, 'exit'))], ['previousFile', P(() => path.join(w.root, 'exit.previous'))]], (_w, a, b) => new ExitFile(any(a), any(b))),
    ...both('ExitFile#write', [['record', required(record)]], (s, r) => s ? box.exitFile.writeSync(any(r)) : box.exitFile.write(any(r))),
    sync('parseExitRecord', [['text', required(stringKind('{}', 65536, { text: true, nonEmpty: false }))], ['file', optional(stringKind('exit'))]], (_w, x, f) => api.parseExitRecord(any(x), any(f))),
    sync('formatExitRecord', [['record', required(record)]], (_w, r) => api.formatExitRecord(any(r))),
    sync('signalExit', [['signal', required({ valid: () => 'SIGKILL', bad: () => [...NOT_STRINGS, ['unknown', 'SIGNOPE'], ['inherited', 'toString'], ['proto', '__proto__']] })]], (_w, s) => api.signalExit(any(s))),
    sync('parseContainerExit', [['text', required(stringKind('{}', 65536, { text: true, nonEmpty: false }))], ['file', optional(stringKind('exit.json'))]], (_w, x, f) => api.parseContainerExit(any(x), any(f))),
    {
      name: 'HomeLayout#diskUsage',
      async: true,
      slots: [['options', optional(optionsKind({ onProgress: optional({ valid: () => () => undefined, bad: () => [['null', null], ['a string', 'f'], ['an object', {}], ['a proxy', hostile]] }), progressIntervalMs: optional(intKind(200, 1, 0x7fffffff)) }))]],
      call: (_w, o) => home.diskUsage(any(o))
    },
    { name: 'diskUsage', async: true, slots: [['home', P(() => home.home)], ['options', optional(optionsKind({ progressIntervalMs: optional(intKind(200, 1, 0x7fffffff)) }))]], call: (_w, h, o) => api.diskUsage(any(h), any(o)) },
    sync('diskUsageSync', [['home', P(() => home.home)]], (_w, h) => api.diskUsageSync(any(h))),
    ...both('BoxLayout#publishBoot', [['options', required(optionsKind({ kernel: optional(pathKind(() => w.plain)), initramfs: optional(pathKind(() => w.plain)), format: required(oneOfKind('raw')) }))]],
      (s, o) => s ? box.publishBootSync(any(o)) : box.publishBoot(any(o))),
    ...both('BoxLayout#stageVolumeFile', [['src', P(() => w.plain)], ['options', required(optionsKind({ index: required(intKind(0, 0, 0xffffffff)), readOnly: optional(boolKind()) }))]],
      (s, f, o) => s ? box.stageVolumeFileSync(any(f), any(o)) : box.stageVolumeFile(any(f), any(o))),
    ...both('BoxLayout#seatbeltProfile', [['options', seatbeltOptions]], (s, o) => s ? box.seatbeltProfileSync(any(o)) : box.seatbeltProfile(any(o))),
    { name: 'BoxLayout#jailArgv', async: true, slots: [['command', command], ['options', optional(optionsKind({ ...jailKeys, platform: optional(oneOfKind('linux')) }))]], call: (_w, c, o) => box.jailArgv(any(c), any(o)) },
    // Valid arguments jail a shell that exits at once: the jail fails (no shim.pid), never as ERR_INVALID_ARG.
    { name: 'BoxLayout#jail', async: true, slots: [['command', command], ['options', optional(optionsKind(jailKeys))]], call: (_w, c, o) => box.jail(any(c), any(o)) },
    sync('formatBootManifest', [['manifest', required(optionsKind({ version: required(intKind(1, 1, 1)), generation: required(stringKind('g1', 64)), format: required(oneOfKind('raw')), kernelSha256: required(sha), initramfsSha256: optional(sha) }))]],
      (_w, m) => api.formatBootManifest(any(m))),
    sync('parseBootManifest', [['text', required(stringKind('{}', 65536, { text: true, nonEmpty: false }))], ['file', required(stringKind('current.json'))]], (_w, x, f) => api.parseBootManifest(any(x), any(f))),
    ...both('RuntimeLock.adopt', [['home', P(() => home.home)], ['fd', required(fdKind)]], (s, h, fd) => s ? RuntimeLock.adoptSync(any(h), any(fd)) : RuntimeLock.adopt(any(h), any(fd))),
    sync('inheritedLockFd', [['env', optional(optionsKind({ [api.LOCK_FD_ENV]: optional({ valid: () => '', bad: () => [...NOT_STRINGS, ['not a number', '3a'], ['negative', '-1'], ['10 digits', '1234567890'], ['NUL', '3\0']] }) }))]],
      (_w, e) => api.inheritedLockFd(any(e))),
    sync('exitRecordOf', [['code', required({ valid: () => 1, bad: () => BAD_NUMBERS.filter(([l]) => l !== 'null').concat([['below', -1], ['above', 256]]) })],
      ['signal', optional({ valid: () => null, bad: () => [...NOT_STRINGS.filter(([l]) => l !== 'null'), ['unknown', 'SIGNOPE'], ['inherited', 'toString']] })]],
    (_w, c, sig) => api.exitRecordOf(any(c), any(sig))),
    sync('formatContainerExit', [['exit', required(optionsKind({ exitCode: required(intKind(0, -(2 ** 31), 2 ** 31 - 1)) }))]], (_w, e) => api.formatContainerExit(any(e))),
  ]
}

/** Members that take no input (nothing to refuse), and the constants. */
const NO_INPUT = new Set([
  'mintBoxId', 'newMountApiAvailable', 'isValidId', 'BoxId.mint', 'BoxId.isValid',
  ...['boxEntries', 'boxIds', 'prepare', 'validateSameFilesystem', 'acquireRuntimeLock'].flatMap((m) => [`HomeLayout#${m}`, `HomeLayout#${m}Sync`]),
  'HomeLayout#lockManager', 'HomeLayout#boxes', 'HomeLayout#boxesSync', 'HomeLayout#diskUsageSync', 'ImageLayout#prepare', 'ImageLayout#prepareSync',
  ...['rotateExit', 'prepare', 'unmountShared', 'sharedState', 'cleanup', 'inspect'].flatMap((m) => [`BoxLayout#${m}`, `BoxLayout#${m}Sync`]),
  'BoxLayout#readBoot', 'BoxLayout#readBootSync', 'BoxLayout#netBackendPeerSocketPath', 'BoxLayout#gvproxyControlSocketPath',
  // A predicate: any value is an answer (false), never an error, as with isValidId.
  'isGenerationName',
  'BoxLayout#jailerPaths', 'BoxLayout#socketPath', 'BoxLayout#readySocketPath', 'BoxLayout#netBackendSocketPath',
  'BoxLayout#sharedLayout', 'BoxLayout#pidFile', 'BoxLayout#exitFile',
  'SharedGuestLayout.guest', 'SharedContainerLayout#prepare', 'SharedContainerLayout#prepareSync',
  'BoxSockets#headroom', 'BoxSockets#policyPaths', 'BoxSockets#checkLength', 'BoxSockets#ensure', 'BoxSockets#ensureSync', 'BoxSockets#remove', 'BoxSockets#removeSync',
  'RuntimeLock#held', 'RuntimeLock#release', 'RuntimeLock#fd',
  'LockManager#allocate', 'LockManager#allocateSync', 'LockManager#releaseAll',
  ...['read', 'identity', 'remove'].flatMap((m) => [`PidFile#${m}`, `PidFile#${m}Sync`]),
  ...['read', 'readPrevious', 'rotate'].flatMap((m) => [`ExitFile#${m}`, `ExitFile#${m}Sync`]),
])
const CONSTANTS = new Set(['ID_MAX_BYTES', 'DEFAULT_STORAGE_GRACE_SECONDS', 'HomeDirs', 'BoxFiles', 'SHIM_LIBRARY_PREFIX', 'CA_STORES', 'SYSTEM_RO_BINDS', 'DEVICE_BINDS',
  'SharedDirs', 'GUEST_SHARED_ROOT', 'SocketNames', 'SOCKET_PATH_LIMIT', 'SUN_PATH_MAX', 'SIGNAL_EXIT_BASE', 'PANIC_EXIT_CODE', 'EXIT_RECORD_CAP',
  'BootFiles', 'KERNEL_FORMATS', 'BOOT_MANIFEST_VERSION', 'NESTED_VIRT_PROBES', 'LOCK_FD_ENV', 'ERRNO_CODES', 'DEFAULT_GC_GRACE_SECONDS'])

/** Every member an export offers: itself, its constructor, methods, accessors, statics, function-valued properties. */
function members (name: string, value: unknown): string[] {
  if (typeof value !== 'function') {
    if (value !== null && typeof value === 'object' && Object.values(value).some((v) => typeof v === 'function')) {
      return Object.entries(value).filter(([, v]) => typeof v === 'function').map(([k]) => `${name}.${k}`)
    }
    return [name]
  }
  const proto = Object.getOwnPropertyNames(value.prototype ?? {}).filter((k) => k !== 'constructor')
  const statics = Object.getOwnPropertyNames(value).filter((k) => !['length', 'name', 'prototype'].includes(k))
  if (proto.length === 0 && statics.length === 0 && !/^class\b/.test(Function.prototype.toString.call(value))) return [name]
  return [`new ${name}`, ...proto.map((k) => `${name}#${k}`), ...statics.map((k) => `${name}.${k}`)]
}

test('every export and member named in the README has a row (or is listed as taking no input)', (t) => {
  const w = { root: '/x', uid: 1 } as unknown as World
  const covered = new Set([...rows({ ...w, home: new HomeLayout('/x/h'), box: new HomeLayout('/x/h').box('b1') }).map((r) => r.name), ...NO_INPUT, ...CONSTANTS])
  const names = readmeExportNames()
  t.deepEqual([...names].sort(), Object.keys(api).sort(), 'the README export table is the list of runtime exports')
  const missing = names.flatMap((n) => members(n, (api as Record<string, unknown>)[n])).filter((m) => !covered.has(m))
  t.deepEqual(missing, [], 'members without a bad-input row: add one to rows() (or to NO_INPUT if they take no arguments)')
  const rowNames = rows({ ...w, home: new HomeLayout('/x/h'), box: new HomeLayout('/x/h').box('b1') }).map((r) => r.name)
  t.is(new Set(rowNames).size, rowNames.length, 'row names are unique')
})

/** One case: the error it gave (or how it failed to give one). */
async function outcome (row: Row, w: World, a: unknown[]): Promise<{ error?: unknown, problem?: string, value?: unknown }> {
  let r: unknown
  try {
    r = row.call(w, ...a)
  } catch (e) {
    return row.async === true ? { problem: `threw synchronously: ${String((e as Error)?.message)}` } : { error: e }
  }
  if (row.async !== true) return { problem: 'returned', value: r }
  if (!(r instanceof Promise)) return { problem: 'did not return a Promise' }
  try {
    return { problem: 'resolved', value: await r }
  } catch (e) {
    return { error: e }
  }
}

async function dispose (w: World, value: unknown): Promise<void> {
  if (value instanceof net.Server) value.close()
  else if (value instanceof net.Socket) value.destroy()
  else if (value instanceof RuntimeLock) {
    w.spareFds.delete(value.fd!)
    value.release()
  } else if (value !== null && typeof value === 'object' && 'exit' in value && 'kill' in value) {
    // A jailed shim: ended, and its exit settled, before the world is removed.
    const shim = value as JailedShim
    shim.kill('SIGKILL')
    await shim.exit.catch(() => undefined)
  }
}

test.serial('every bad argument of every row is ERR_INVALID_ARG naming it, and touches nothing', async (t) => {
  const w = makeWorld(t)
  let cases = 0
  const failures: string[] = []
  for (const row of rows(w)) {
    for (const [i, [slot, kind]] of row.slots.entries()) {
      for (const [label, value, under] of kind.bad()) {
        const a = row.slots.map(([, k], j) => j === i ? value : k.valid())
        // Trailing optional slots may be left out entirely.
        const before = snapshot(w)
        const got = await outcome(row, w, a)
        const after = snapshot(w)
        cases++
        const what = `${row.name} ${slot} ${label}`
        const e = got.error as LayoutError | undefined
        const argument = `"${slot}${under ?? ''}`
        if (got.problem !== undefined) {
          await dispose(w, got.value)
          failures.push(`${what}: ${got.problem}`)
        } else if (!(e instanceof LayoutError) || e.code !== 'ERR_INVALID_ARG' || e.reason !== 'invalid-argument') {
          failures.push(`${what}: ${e instanceof Error ? `${e.constructor.name} ${String((e as LayoutError).code)}: ${e.message}` : String(e)}`)
        } else if (!e.message.includes(argument)) {
          failures.push(`${what}: the message does not name ${argument}: ${e.message}`)
        } else if (/expected a (string|number|boolean|string or)|expected an (array|integer)|a path contains a NUL byte|is not a function|serialize a BigInt|Cannot read/.test(e.message)) {
          failures.push(`${what}: an internal message came through: ${e.message}`)
        }
        if (before !== after) failures.push(`${what}: touched the disk, the mounts or the fds`)
      }
    }
  }
  t.log(`${cases} bad-input cases`)
  t.true(cases > 1000)
  t.deepEqual(failures, [])
})

test.serial('every row\'s valid arguments are accepted (the bad value is what each case refuses), Promise forms return Promises', async (t) => {
  const w = makeWorld(t)
  const failures: string[] = []
  for (const row of rows(w)) {
    const got = await outcome(row, w, row.slots.map(([, k]) => k.valid()))
    await dispose(w, got.value)
    if (row.async === true && got.problem !== undefined && got.problem !== 'resolved') failures.push(`${row.name}: ${got.problem}`)
    const e = got.error as LayoutError | undefined
    if (e !== undefined && (!(e instanceof LayoutError) || e.code === 'ERR_INVALID_ARG')) failures.push(`${row.name}: ${String(e?.message ?? e)}`)
  }
  t.deepEqual(failures, [])
})

test('an argument the addon refuses itself is ERR_INVALID_ARG naming the operation, its internal message only in cause', async (t) => {
  const { nativeCall } = await import('../lib/native.ts')
  const check = (e: unknown) => {
    t.true(e instanceof LayoutError)
    const err = e as LayoutError
    t.is(err.code, 'ERR_INVALID_ARG')
    t.is(err.reason, 'invalid-argument')
    t.regex(err.message, /refused an argument of probe/)
    t.notRegex(err.message, /expected a|NUL byte/)
    t.true(err.cause instanceof TypeError)
  }
  const call = nativeCall('probe', ['/tmp\0x'], { doing: 'cannot probe' })
  check(t.throws(() => call.sync()))
  check(await t.throwsAsync(call.async()))
})
