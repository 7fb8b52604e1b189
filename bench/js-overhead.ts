// The JavaScript cost per call: each public lifecycle operation against the
// raw binding called with the same arguments, the two sides alternating,
// many rounds, medians. Two modes:
//
//   real  the syscalls run (a scratch home under /tmp, a read-only bind
//         mount), box by box through the lifecycle, each call timed by the
//         clock; the figure is (public call) - (raw binding call) per op.
//   stub  the binding's functions answer a recorded result at once, so
//         only the JavaScript on each side runs: one op at a time, N calls
//         in a loop, timed by the CPU time they take. The library's own
//         cost per call, free of the kernel's noise and of preemption.
//
//   npm run bench:js -- [real|stub] [rounds] [boxes] [dist dir]
//
// To compare two builds (a copy of an older dist/, say), run one process per
// build, alternately: two module instances of the library in one process
// skew each other (the JIT favours the first). Relative figures only: on a
// loaded machine compare the columns of one run.
import { spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import type * as Api from '../lib/index.ts'
import type * as Native from '../lib/native.ts'

type BoxLayout = Api.BoxLayout

const mode = process.argv[2] ?? 'stub'
const ROUNDS = Number(process.argv[3] ?? (mode === 'stub' ? 7 : 31))
// A stub batch long enough (tens of ms) that a scheduler slice does not decide it.
const N = Number(process.argv[4] ?? (mode === 'stub' ? 20000 : 40))
const dist = path.resolve(process.argv[5] ?? path.join(import.meta.dirname, '..', 'dist'))
const api = await import(path.join(dist, 'index.js')) as typeof Api
const native = await import(path.join(dist, 'native.js')) as typeof Native
const raw = native.binding() as unknown as Record<string, (...a: unknown[]) => unknown>

const scratch = fs.mkdtempSync('/tmp/blx-jsov-')
const uid = 2_100_000_000 + (process.pid % 100_000)
const linkDir = `/tmp/bl-${uid}`
function teardown (): void {
  // Anything still mounted below the scratch dir, by exact path, deepest first.
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((m): m is string => m !== undefined && m.startsWith(scratch + '/')).reverse()
  for (const m of mounts) execFileSync('umount', ['-l', m])
  fs.rmSync(scratch, { recursive: true, force: true })
  fs.rmSync(linkDir, { recursive: true, force: true })
}
process.on('exit', teardown)

const shimDir = path.join(scratch, 'shim')
fs.mkdirSync(shimDir)
fs.writeFileSync(path.join(shimDir, 'boxlite-shim'), Buffer.alloc(64 << 10, 1), { mode: 0o755 })
fs.writeFileSync(path.join(shimDir, 'libkrunfw.so.5'), Buffer.alloc(16 << 10, 2))
const shim = path.join(shimDir, 'boxlite-shim')

const home = new api.HomeLayout({ home: path.join(scratch, 'home') })
home.prepareSync()

// A pid that is gone (a child that ran and was reaped): cleanup must not see a live shim.
const DEAD_PID = spawnSync('true').pid!
const EXIT_JSON = '{"type":"signal","exit_code":137,"signal":"SIGKILL"}'
const EXIT_RECORD = { type: 'signal', exitCode: 137, signal: 'SIGKILL' } as const
const SOCKETS = ['box.sock', 'ready.sock', 'net.sock', 'net.sock-krun.sock', 'gvproxy-ctl.sock']

/** One op: the public call, and the binding function and arguments that make the same native call. */
interface Op { name: string, native: string, lib: (b: BoxLayout, form: Form) => unknown, args: (h: string, b: BoxLayout) => unknown[] }
type Form = 'sync' | 'async'

const ops: Op[] = [
  { name: 'prepare', native: 'boxPrepare', lib: (b, f) => f === 'sync' ? b.prepareSync() : b.prepare(), args: (h, b) => [h, 'boxes', b.boxId, true, linkDir, uid, b.socketsDir] },
  { name: 'mountShared', native: 'sharedMount', lib: (b, f) => f === 'sync' ? b.mountSharedSync() : b.mountShared(), args: (h, b) => [h, 'boxes', b.boxId, false, false] },
  { name: 'installShim', native: 'shimInstall', lib: (b, f) => f === 'sync' ? b.installShimSync(shim) : b.installShim(shim), args: (h, b) => [h, 'boxes', b.boxId, shim, 'auto'] },
  { name: 'pidFile.write', native: 'pidWrite', lib: (b, f) => f === 'sync' ? b.pidFile.writeSync(DEAD_PID) : b.pidFile.write(DEAD_PID), args: (h, b) => [h, `boxes/${b.boxId}`, 'shim.pid', DEAD_PID, []] },
  { name: 'pidFile.read', native: 'pidRead', lib: (b, f) => f === 'sync' ? b.pidFile.readSync() : b.pidFile.read(), args: (h, b) => [h, `boxes/${b.boxId}`, 'shim.pid'] },
  { name: 'exitFile.write', native: 'fileWrite', lib: (b, f) => f === 'sync' ? b.exitFile.writeSync(EXIT_RECORD) : b.exitFile.write(EXIT_RECORD), args: (h, b) => [h, `boxes/${b.boxId}`, 'exit', EXIT_JSON, 0o644] },
  { name: 'inspect', native: 'boxInspect', lib: (b, f) => f === 'sync' ? b.inspectSync() : b.inspect(), args: (h, b) => [h, 'boxes', b.boxId, linkDir, uid, b.socketsDir, SOCKETS] },
  { name: 'cleanup', native: 'boxCleanup', lib: (b, f) => f === 'sync' ? b.cleanupSync() : b.cleanup(), args: (h, b) => [h, 'boxes', b.boxId, linkDir, uid, b.socketsDir, true] },
]

// In stub mode each binding function answers what it answered for real once.
if (mode === 'stub') {
  const b = home.box(api.mintBoxId(), { isolateMounts: true, uid })
  for (const op of ops) {
    const canned = raw[op.native]!(...op.args(home.home, b))
    // A fresh copy each call, as the binding builds a fresh value.
    raw[op.native] = () => structuredClone(canned)
    raw[op.native + 'Async'] = async () => structuredClone(canned)
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((x, y) => x - y); return s[s.length >> 1]! }
const us = (ns: number): string => (ns / 1000).toFixed(2)
const gc = (globalThis as { gc?: () => void }).gc
const forms: Form[] = ['sync', 'async']
const names = [...ops.map((o) => o.name), 'box()']
// ns per call, by form, side and op: one entry per round.
const samples = new Map<string, number[]>()
const key = (f: Form, s: string, op: string): string => `${f}|${s}|${op}`
const record = (f: Form, s: string, op: string, ns: number): void => {
  const arr = samples.get(key(f, s, op)) ?? []
  arr.push(ns)
  samples.set(key(f, s, op), arr)
}
const newBox = (): BoxLayout => home.box(api.mintBoxId(), { isolateMounts: true, uid })

/**
 * real: N boxes through the whole lifecycle, each call timed by the clock.
 * The raw side makes its boxes (for their paths) with the library too; only
 * the lib side's box() is timed.
 */
async function lifecycleBatch (form: Form, side: 'lib' | 'raw'): Promise<void> {
  const sum: number[] = Array(ops.length + 1).fill(0)
  const suffix = form === 'async' ? 'Async' : ''
  for (let i = 0; i < N; i++) {
    let t = process.hrtime.bigint()
    const b = newBox()
    let t1 = process.hrtime.bigint()
    sum[ops.length]! += side === 'raw' ? 0 : Number(t1 - t)
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!
      const a = side === 'raw' ? op.args(home.home, b) : undefined
      t = process.hrtime.bigint()
      const r = a === undefined ? op.lib(b, form) : raw[op.native + suffix]!(...a)
      if (form === 'async') await r
      t1 = process.hrtime.bigint()
      sum[k]! += Number(t1 - t)
    }
  }
  sum.forEach((ns, k) => record(form, side, names[k]!, ns / N))
}

/** CPU time (every thread) of fn, in ns. */
async function cpu (fn: () => unknown): Promise<number> {
  const c0 = process.cpuUsage()
  await fn()
  const c = process.cpuUsage(c0)
  return (c.user + c.system) * 1000
}

/**
 * stub: one op at a time, N calls in a loop, timed by the CPU time they
 * take (a loaded machine's preemption is not counted): the boxes are made
 * first, the raw side's arguments too.
 */
async function stubBatch (form: Form, side: 'lib' | 'raw', k: number): Promise<void> {
  const boxes = Array.from({ length: N }, newBox)
  if (k === ops.length) {
    if (side === 'lib') record(form, side, 'box()', await cpu(() => { for (let i = 0; i < N; i++) newBox() }) / N)
    else record(form, side, 'box()', 0)
    return
  }
  const op = ops[k]!
  const fn = raw[op.native + (form === 'async' ? 'Async' : '')]!
  const args = boxes.map((b) => op.args(home.home, b))
  const ns = side === 'lib'
    ? form === 'sync'
      ? await cpu(() => { for (const b of boxes) op.lib(b, form) })
      : await cpu(async () => { for (const b of boxes) await op.lib(b, form) })
    : form === 'sync'
      ? await cpu(() => { for (const a of args) fn(...a) })
      : await cpu(async () => { for (const a of args) await fn(...a) })
  record(form, side, op.name, ns / N)
}

async function round (r: number): Promise<void> {
  // Each round in another order, so no side always runs first.
  const sides = r % 2 === 0 ? ['lib', 'raw'] as const : ['raw', 'lib'] as const
  for (const f of forms) {
    for (const s of sides) {
      gc?.()
      if (mode === 'stub') for (let k = 0; k <= ops.length; k++) await stubBatch(f, s, k)
      else await lifecycleBatch(f, s)
    }
  }
}

await round(0) // warm up (JIT)
samples.clear()
for (let r = 0; r < ROUNDS; r++) await round(r)

console.log(`mode ${mode}, ${ROUNDS} rounds of ${N} boxes; ${mode === 'stub' ? 'CPU' : 'wall'} µs per call, medians over rounds; ` +
  'diff: median over rounds of (lib - raw) in the same round')
for (const f of forms) {
  console.log(`\n${f}:\n${'op'.padEnd(16)}${'lib'.padStart(9)}${'raw'.padStart(9)}${'diff'.padStart(9)}`)
  const totals = { lib: Array(ROUNDS).fill(0) as number[], raw: Array(ROUNDS).fill(0) as number[] }
  for (const op of names) {
    const l = samples.get(key(f, 'lib', op))!
    const rr = samples.get(key(f, 'raw', op))!
    l.forEach((x, i) => { totals.lib[i]! += x; totals.raw[i]! += rr[i]! })
    console.log(`${op.padEnd(16)}${us(median(l)).padStart(9)}${us(median(rr)).padStart(9)}${us(median(l.map((x, i) => x - rr[i]!))).padStart(9)}`)
  }
  const { lib, raw: rw } = totals
  console.log(`${'total'.padEnd(16)}${us(median(lib)).padStart(9)}${us(median(rw)).padStart(9)}${us(median(lib.map((x, i) => x - rw[i]!))).padStart(9)}`)
}
