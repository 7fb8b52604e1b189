// "Same syscalls", checked rather than claimed: strace one run of the public
// API (bench/trace/lifecycle.mjs, through dist/) and one run of the raw C
// replay (blx_bench trace), cut both at their markers, normalize each call
// (fd numbers, pointers, sizes, random names and timestamps dropped; names,
// flags, modes, path strings and outcomes kept) and compare step by step.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

/** Calls made by the runtime around the work, not by the work: V8, libuv, the allocator. */
const RUNTIME = new Set([
  'futex', 'mmap', 'munmap', 'mprotect', 'madvise', 'brk', 'mremap', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2',
  'rt_sigprocmask', 'rt_sigaction', 'rt_sigreturn', 'clock_gettime', 'clock_nanosleep', 'getpid', 'gettid',
  'sched_yield', 'membarrier', 'getrusage', 'prctl',
])

export interface StepCompare {
  step: string
  library: string[]
  c: string[]
  same: boolean
  /** First differing position, with both sides, when not the same. */
  diff?: { at: number, library: string, c: string }
}

export interface TraceCompare {
  steps: StepCompare[]
  /** The per-box calls of a steady-state lifecycle (prepare+mount+shim+cleanup), library side. */
  lifecycleCalls: number
  /** Distinct syscall names of the lifecycle, by count. */
  lifecycleMix: Array<[string, number]>
}

/** Replace "..." strings with placeholders so structure parsing cannot trip on their content. */
function normalizeLine (line: string, subst: Array<[RegExp, string]>): string | undefined {
  const m = /^(\w+)\((.*)\)\s+=\s+(.*)$/.exec(line)
  if (m === null) return undefined
  const [, name, rawArgs, rawRet] = m as unknown as [string, string, string, string]
  if (RUNTIME.has(name)) return undefined
  // libuv's wakeup of its loop (uv_async_send: 8 bytes to an eventfd), whenever some thread posts to it.
  if (name === 'write' && /^\d+, "(\\[01]){8}", 8$/.test(rawArgs)) return undefined
  let args = rawArgs
  // Random bytes (getrandom's buffer) and escaped data are not part of the shape.
  args = args.replace(/"(?:[^"\\]|\\.)*"(\.\.\.)?/g, (s) => {
    if (/\\x/.test(s)) return '"<bytes>"'
    let t = s
    for (const [re, to] of subst) t = t.replace(re, to)
    return t
  })
  args = args.replace(/\/\*.*?\*\//g, '')
  // Numbers: modes (0755) stay, everything else (fds, pointers, sizes, times) goes.
  args = args.replace(/\b0x[0-9a-f]+\b/g, 'N').replace(/(^|[^\w"])(?!0[0-7]{2,})\d+\b/g, '$1N')
  args = args.replace(/\s+/g, ' ').trim()
  let ret = rawRet.trim()
  const err = /^-1 (E[A-Z]+)/.exec(ret)
  if (err !== null) ret = err[1]!
  else if (/^0\b/.test(ret)) ret = '0'
  else if (/^\d+/.test(ret)) ret = 'n'
  return `${name}(${args}) = ${ret}`
}

/** One thread's strace, cut into steps at its /blx-mark-NAME markers. */
function steps (file: string, subst: Array<[RegExp, string]>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const marker = /"\/blx-mark-([\w-]+)"/.exec(line)
    if (marker !== null) {
      current = []
      out.set(marker[1]!, current)
      continue
    }
    if (current === undefined) continue
    const n = normalizeLine(line, subst)
    if (n !== undefined) current.push(n)
  }
  return out
}

export interface TraceInputs {
  /** A prepared home on XFS, with no boxes named tracebox000N. */
  home: string
  shim: string
  linkDir: string
  uid: number
  cBin: string
  scratch: string
  /** A prepared home and a shim set on ext4 (no reflink): installShim's copy fallback. */
  ext4?: { home: string, shim: string }
}

const LIFECYCLE = ['box-prepare', 'box-mount', 'box-shim', 'box-cleanup']

/** Trace the library, then the C replay, on the same home and ids; compare. */
export function compareTraces (t: TraceInputs): TraceCompare {
  const here = path.dirname(new URL(import.meta.url).pathname)
  const script = path.join(here, '..', 'trace', 'lifecycle.mjs')
  const libOut = path.join(t.scratch, 'trace-lib')
  const cOut = path.join(t.scratch, 'trace-c')
  // -ff: one file per thread, so the main thread's calls are never interleaved with others.
  const ext4 = t.ext4 === undefined ? [] : [t.ext4.home, t.ext4.shim]
  execFileSync('strace', ['-ff', '-qq', '-o', libOut, process.execPath, script, t.home, t.shim, String(t.uid), ...ext4],
    { stdio: ['ignore', 'ignore', 'inherit'] })
  const ext4Dir = t.ext4 === undefined ? [] : [t.ext4.home, path.dirname(t.ext4.shim)]
  execFileSync('strace', ['-qq', '-o', cOut, t.cBin, 'trace', t.home, path.dirname(t.shim), t.linkDir, String(t.uid), 'tracebox0003', ...ext4Dir],
    { stdio: ['ignore', 'ignore', 'inherit'] })
  const main = fs.readdirSync(t.scratch).filter((f) => f.startsWith('trace-lib.'))
    .map((f) => path.join(t.scratch, f))
    .find((f) => fs.readFileSync(f, 'utf8').includes('/blx-mark-'))
  if (main === undefined) throw new Error('bench: no marked thread in the library strace')
  const subst: Array<[RegExp, string]> = [
    [/\.trash-(\w+)-[0-9a-f]+/g, '.trash-$1-R'], // the box dir's inode: differs per run
    [/\.blx-[0-9a-f]{16}/g, '.blx-R'],
  ]
  const lib = steps(main, subst)
  const c = steps(cOut, subst)
  const out: StepCompare[] = []
  for (const step of [...LIFECYCLE, 'box-unmount', 'box-remount', 'samefs', 'sockbox', 'sock',
    ...(t.ext4 === undefined ? [] : ['ext4-prepare', 'ext4-shim', 'ext4-cleanup'])]) {
    const a = lib.get(step) ?? []
    const b = c.get(step) ?? []
    const at = a.findIndex((x, i) => x !== b[i])
    const first = at >= 0 ? at : a.length !== b.length ? Math.min(a.length, b.length) : -1
    out.push({
      step,
      library: a,
      c: b,
      same: first < 0,
      ...(first < 0 ? {} : { diff: { at: first, library: a[first] ?? '(end)', c: b[first] ?? '(end)' } }),
    })
  }
  const mix = new Map<string, number>()
  let calls = 0
  for (const s of out.filter((x) => LIFECYCLE.includes(x.step))) {
    for (const call of s.library) {
      const name = call.slice(0, call.indexOf('('))
      mix.set(name, (mix.get(name) ?? 0) + 1)
      calls++
    }
  }
  for (const f of fs.readdirSync(t.scratch).filter((x) => x.startsWith('trace-'))) fs.rmSync(path.join(t.scratch, f))
  return { steps: out, lifecycleCalls: calls, lifecycleMix: [...mix].sort((x, y) => y[1] - x[1]) }
}

/** Calls per box of one syscall: how many, and how many of them failed. */
export interface PerBoxCall { name: string, calls: number, errors: number }
export interface PerBoxCount { total: number, calls: PerBoxCall[], boxes: [number, number] }

/** `strace -c -f` summary: calls and errors by syscall name. */
function straceSummary (file: string): Map<string, { calls: number, errors: number }> {
  const out = new Map<string, { calls: number, errors: number }>()
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    // % time, seconds, usecs/call, calls, [errors,] syscall
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$/.exec(line)
    if (m === null || m[3] === 'total') continue
    out.set(m[3]!, { calls: Number(m[1]), errors: Number(m[2] ?? 0) })
  }
  return out
}

/**
 * Syscalls per box of a batch command: `strace -c -f` of it at two batch
 * sizes, the difference divided by the difference in boxes, so start-up,
 * loading and warm-up cancel out. Names under 0.05 calls per box are dropped.
 */
export function countPerBox (sizes: [number, number], scratch: string, argvFor: (boxes: number) => string[]): PerBoxCount {
  const [small, large] = sizes
  const runs = sizes.map((n, i) => {
    const out = path.join(scratch, `strace-count-${i}`)
    const [cmd, ...args] = argvFor(n)
    execFileSync('strace', ['-c', '-f', '-o', out, cmd!, ...args], { cwd: path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..'), stdio: ['ignore', 'ignore', 'inherit'] })
    const summary = straceSummary(out)
    fs.rmSync(out)
    return summary
  })
  const calls: PerBoxCall[] = []
  for (const name of new Set([...runs[0]!.keys(), ...runs[1]!.keys()])) {
    const a = runs[0]!.get(name) ?? { calls: 0, errors: 0 }
    const b = runs[1]!.get(name) ?? { calls: 0, errors: 0 }
    const per = (b.calls - a.calls) / (large - small)
    if (Math.abs(per) >= 0.05) calls.push({ name, calls: per, errors: (b.errors - a.errors) / (large - small) })
  }
  calls.sort((x, y) => y.calls - x.calls || x.name.localeCompare(y.name))
  return { total: calls.reduce((t, c) => t + c.calls, 0), calls, boxes: sizes }
}
