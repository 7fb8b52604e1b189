// (g) disk usage: home.diskUsageSync() and the `df` CLI against `du -s` on
// the same tree: 1000 boxes × 20 files, each box's bin/ a reflink of one
// shim set. Used by run.ts (rows in BENCHMARKS.md); `npm run bench:df` runs
// these rows alone, on a loop XFS of their own, and prints them.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type * as Api from '../lib/index.ts'

export const W_DF = 'g. disk usage of 1000 boxes × 20 files + a reflinked shim set'
export const DF_OURS = 'this package, diskUsageSync()'
export const DF_CLI = 'CLI `df --json` (whole process)'
export const DF_DU = '`du -s` (whole process)'

export interface DfTree { home: string, boxes: number, files: number }

/**
 * The tree: a prepared home, boxes × filesPerBox small files in four subdirs each, and shim's set cloned into every
 * bin/. The socket links go to /tmp/bl-{linkUid}, the bench's own link dir, which its teardown removes: the loop
 * filesystem goes with the bench, and links left in the operator's /tmp/bl-{uid} would dangle.
 */
export function dfTree (api: typeof Api, dir: string, shim: string, boxes: number, linkUid: number, filesPerBox = 20): DfTree {
  const home = new api.HomeLayout({ home: dir })
  home.prepareSync()
  const data = Buffer.alloc(6000, 7)
  for (let i = 0; i < boxes; i++) {
    const box = home.box(`dfbench${String(i).padStart(5, '0')}`, { uid: linkUid })
    box.prepareSync()
    for (let f = 0; f < filesPerBox; f++) {
      const sub = path.join(box.root, 'logs', `d${f % 4}`)
      fs.mkdirSync(sub, { recursive: true })
      fs.writeFileSync(path.join(sub, `f${f}`), data)
    }
    for (const name of fs.readdirSync(path.dirname(shim))) {
      fs.mkdirSync(box.binDir, { recursive: true })
      api.cloneFileSync(path.join(path.dirname(shim), name), path.join(box.binDir, name), { mode: 'force' })
    }
  }
  return { home: dir, boxes, files: boxes * filesPerBox }
}

const now = (): bigint => process.hrtime.bigint()
const since = (t: bigint): number => Number(process.hrtime.bigint() - t)

/** One round: each implementation once, in an order that turns with the round; ns per full scan. */
export function dfRound (api: typeof Api, tree: DfTree, cli: string, round: number): Array<[string, number]> {
  const home = new api.HomeLayout({ home: tree.home })
  const runs: Array<[string, () => void]> = [
    [DF_OURS, () => { home.diskUsageSync() }],
    [DF_CLI, () => { execFileSync(process.execPath, [cli, 'df', '--home', tree.home, '--json'], { stdio: ['ignore', 'ignore', 'inherit'] }) }],
    [DF_DU, () => { execFileSync('du', ['-s', tree.home], { stdio: ['ignore', 'ignore', 'inherit'] }) }],
  ]
  const out: Array<[string, number]> = []
  for (let i = 0; i < runs.length; i++) {
    const [label, fn] = runs[(i + round) % runs.length]!
    const t = now()
    fn()
    out.push([label, since(t)])
  }
  return out
}

// Alone: npm run bench:df [-- ROUNDS]
if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const { ensureDist, lifecycleShimSet, linkUid, loopFs, teardown } = await import('./lib/fixtures.ts')
  const repo = path.join(path.dirname(new URL(import.meta.url).pathname), '..')
  ensureDist(repo)
  const api = await import(pathToFileURL(path.join(repo, 'dist', 'index.js')).href) as typeof Api
  const rounds = Number(process.argv[2] ?? 5)
  try {
    const xfs = loopFs('xfs-df', 'xfs', 2048)
    const shim = lifecycleShimSet(path.join(xfs, 'shim3'))
    const tree = dfTree(api, path.join(xfs, 'home-df'), shim, 1000, linkUid)
    execFileSync('sync', ['-f', xfs])
    const cli = path.join(repo, 'dist', 'cli.cjs')
    dfRound(api, tree, cli, 0) // warm-up: dentry and inode caches, JIT
    const samples = new Map<string, number[]>()
    for (let r = 0; r < rounds; r++) {
      for (const [label, ns] of dfRound(api, tree, cli, r)) samples.set(label, [...(samples.get(label) ?? []), ns])
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const du = median(samples.get(DF_DU)!)
    console.log(`| ${W_DF} | implementation | median | × du -s |`)
    for (const [label, xs] of samples) console.log(`| | ${label} | ${(median(xs) / 1e6).toFixed(1)} ms | ${(median(xs) / du).toFixed(2)}× |`)
    const r = new api.HomeLayout({ home: tree.home }).diskUsageSync()
    console.log(`files ${r.total.files}; physical ${r.total.physicalBytes}; du ${r.total.duBytes}; shared ${r.total.sharedBytes}`)
  } finally {
    teardown()
  }
}
