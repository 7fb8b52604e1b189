// Fault injection: every syscall of a box's life (prepare, mountShared,
// installShim, the pid and exit writes, inspect, cleanup) fails once, with
// EIO and with a realistic errno, in the sync and the Promise form. The
// step runs in a child (test/fixtures/fault-step.ts) in a private mount
// namespace; strace attaches to the one thread that runs the step (the JS
// thread, or the single libuv pool thread) only for that step, so the
// injection counts start at the attach and nothing else of Node is hit.
//
// First a traced round lists the step's syscalls (the injection points,
// numbered per syscall as strace's `when=` counts them); then one round per
// (point, errno). Each must give a LayoutError with a code, or a success
// that is true (EINTR retried); no fd leak and no mount left; a box that
// cleanup plus gc repair; and a next lifecycle that works. An injected
// close() never closes (strace skips the call; Linux always closes): there
// one fd stays open by strace's doing, which is allowed, once.
import type { ExecutionContext } from 'ava'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { repoRoot, scratch, tsNode } from './helpers/fixtures.ts'

/** What strace's injection skips or Node itself needs: never injected. */
const NOT_INJECTED = new Set([
  'futex', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'mmap', 'munmap', 'mprotect', 'madvise', 'brk', 'mremap',
  'rt_sigprocmask', 'rt_sigaction', 'rt_sigreturn', 'clock_gettime', 'gettid', 'getpid', 'getuid', 'geteuid',
  'getgid', 'getegid', 'sched_yield', 'getrandom', 'prctl', 'set_robust_list', 'rseq', 'exit', 'exit_group',
  'clone', 'clone3', 'nanosleep', 'clock_nanosleep', 'membarrier', 'restart_syscall',
])
/** The rotating realistic errno, beside EIO at every point. */
const REALISTIC = ['ENOSPC', 'EMFILE', 'EINTR', 'EPERM', 'EACCES', 'ENOMEM', 'EDQUOT', 'EAGAIN', 'ENFILE', 'EROFS']
const STEPS = ['prepare', 'mountShared', 'installShim', 'pidWrite', 'exitWrite', 'inspect', 'cleanup']

interface Point { syscall: string, n: number, example: string }

/** The child, in its own mount namespace, and a line reader over its stdout. */
class Child {
  readonly proc: ChildProcessWithoutNullStreams
  readonly #lines: string[] = []
  readonly #waiters: Array<() => void> = []
  stderr = ''

  constructor (spec: object) {
    this.proc = spawn('unshare', ['-m', '--propagation', 'private', process.execPath,
      ...tsNode('test/fixtures/fault-step.ts', JSON.stringify(spec))],
    // No tsx disk cache: its writes run on the one pool thread at moments of
    // their own, which would move the fd count and the injection counts.
    { cwd: repoRoot, env: { ...process.env, UV_THREADPOOL_SIZE: '1', TSX_DISABLE_CACHE: '1' } })
    let buf = ''
    this.proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        this.#lines.push(buf.slice(0, i))
        buf = buf.slice(i + 1)
        this.#waiters.shift()?.()
      }
    })
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d.toString() })
    this.proc.once('exit', () => { for (const w of this.#waiters.splice(0)) w() })
  }

  async next<T> (key: string): Promise<T> {
    while (this.#lines.length === 0) {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`the child died (${String(this.proc.exitCode ?? this.proc.signalCode)}): ${this.stderr.slice(-2000)}`)
      }
      // A guard against a hung child, not a timing assertion.
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve, reject) => {
        this.#waiters.push(resolve)
        timer = setTimeout(() => reject(new Error(`the child printed no ${key} in 60 s: ${this.stderr.slice(-2000)}`)), 60_000)
      }).finally(() => clearTimeout(timer))
    }
    const line = this.#lines.shift()!
    const o = JSON.parse(line) as Record<string, T>
    if (!(key in o)) throw new Error(`expected ${key}, got ${line}`)
    return o[key]!
  }

  send (word: string): void { this.proc.stdin.write(`${word}\n`) }
}

/** strace attached to tids; resolves once every one is attached. */
async function attach (tids: number[], extra: string[]): Promise<() => Promise<string>> {
  const s = spawn('strace', [...extra, ...tids.flatMap((t) => ['-p', String(t)])])
  let err = ''
  const exited = new Promise<void>((resolve) => s.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    s.stderr.on('data', (d: Buffer) => {
      err += d.toString()
      if ((err.match(/attached/g) ?? []).length >= tids.length) resolve()
    })
    s.once('exit', () => reject(new Error(`strace exited before attaching: ${err}`)))
  })
  return async () => {
    s.kill('SIGINT')
    await exited
    return err
  }
}

interface Round { step: { ok: boolean, error?: { layoutError: boolean, code?: string, message: string }, leaked: number, opened: string[] }, verdict: { lies: string[], problems: string[] } }

/**
 * One round under strace; `output` is strace's -o file. When it shows an
 * injected close(), the child closes that fd itself once strace is gone:
 * Linux releases the fd whatever close() returns, strace's injection
 * skips the call.
 */
async function round (child: Child, tids: number[], strace: string[], output: string): Promise<Round & { injected: boolean }> {
  const detach = await attach(tids, ['-o', output, ...strace])
  child.send('go')
  let step: Round['step']
  try {
    step = await child.next('step')
  } finally {
    await detach()
  }
  const injected = /^close\((\d+)\).*\(INJECTED\)$/m.exec(fs.readFileSync(output, 'utf8'))
  child.send(injected === null ? 'detached' : `detached ${injected[1]!}`)
  return { step, verdict: await child.next('verdict'), injected: /\(INJECTED\)$/m.test(fs.readFileSync(output, 'utf8')) }
}

/** The step's syscalls from a trace of every thread: the injection points and the thread that makes them. */
function pointsOf (trace: string, pid: number, mode: 'sync' | 'async', root: string): { tid: number, points: Point[] } {
  const entries = trace.split('\n').map((l) => /^(\d+) +([a-z_0-9]+)\((.*)$/.exec(l)).filter((m) => m !== null)
    .map((m) => ({ tid: Number(m[1]), name: m[2]!, rest: m[3]! }))
  const begin = entries.findIndex((e) => e.tid === pid && e.rest.includes('/blx-fault-begin'))
  const end = entries.findIndex((e) => e.tid === pid && e.rest.includes('/blx-fault-end'))
  if (begin < 0 || end < begin) throw new Error('the trace has no step markers')
  const inWindow = entries.slice(begin + 1, end)
  // The thread that works: the JS thread (sync), else the one that touched the home.
  const tid = mode === 'sync' ? pid : inWindow.find((e) => e.tid !== pid && e.rest.includes(root))?.tid
  if (tid === undefined) throw new Error('no pool thread touched the home in the window')
  const counts = new Map<string, number>()
  const points: Point[] = []
  for (const [i, e] of entries.entries()) {
    if (e.tid !== tid) continue
    const n = (counts.get(e.name) ?? 0) + 1
    counts.set(e.name, n)
    if (i <= begin || i >= end || NOT_INJECTED.has(e.name)) continue
    // libuv's wake-up of the loop (an eventfd write) is not the step's.
    if (e.name === 'write' && e.rest.includes('"\\1\\0\\0\\0\\0\\0\\0\\0", 8')) continue
    points.push({ syscall: e.name, n, example: `${e.name}(${e.rest.slice(0, 100)}` })
  }
  return { tid, points }
}

/** What a round says is wrong; [] when it is all right. */
function judge (r: Round, point: Point): string[] {
  const out: string[] = []
  const { step, verdict } = r
  if (!step.ok && (step.error?.layoutError !== true || step.error.code === undefined)) out.push(`not a LayoutError with a code: ${step.error?.message ?? '?'}`)
  const allowed = point.syscall === 'close' ? 1 : 0
  if (step.leaked > allowed || step.leaked < 0) out.push(`fd count changed by ${step.leaked} (new: ${step.opened.join(', ') || 'none'})`)
  out.push(...verdict.lies, ...verdict.problems)
  return out
}

for (const step of STEPS) {
  testWith([needs.linux, needs.mount, needs.tool('strace', 'strace')], `faults: every syscall of ${step} fails once, sync and async: a coded error or the truth, no leak, repaired, next lifecycle works`, async (t: ExecutionContext) => {
    const root = scratch(t, 'blx-fault-')
    const uid = privateLinkUid(t)
    const findings: string[] = []
    const tolerated = new Set<string>()
    let injections = 0
    for (const mode of ['sync', 'async'] as const) {
      const dir = path.join(root, mode)
      fs.mkdirSync(dir)
      const child = new Child({ root: dir, step, mode, uid })
      t.teardown(() => { child.proc.kill('SIGKILL') })
      const pid = await child.next<number>('ready')
      const traceFile = path.join(root, `${mode}.trace`)
      const roundFile = path.join(root, `${mode}.round`)
      const traced = await round(child, [pid], ['-f'], traceFile)
      t.deepEqual(judge(traced, { syscall: '', n: 0, example: '' }), [], `${step} ${mode} without a fault`)
      t.true(traced.step.ok, `${step} ${mode} succeeds without a fault: ${traced.step.error?.message ?? ''}`)
      const { tid, points } = pointsOf(fs.readFileSync(traceFile, 'utf8'), pid, mode, dir)
      t.log(`${step} ${mode}: ${points.length} injection points (${[...new Set(points.map((p) => p.syscall))].join(', ')})`)
      t.true(points.length > 0)
      for (const [i, point] of points.entries()) {
        for (const errno of ['EIO', REALISTIC[i % REALISTIC.length]!]) {
          let r: Round & { injected: boolean }
          try {
            child.send('next')
            await child.next('ready')
            r = await round(child, [tid], ['-e', `trace=${point.syscall}`, `--inject=${point.syscall}:error=${errno}:when=${point.n}`], roundFile)
          } catch (e) {
            // A child that dies is a finding too; say at which injection.
            const trace = fs.existsSync(roundFile) ? fs.readFileSync(roundFile, 'utf8').slice(-1500) : ''
            throw new Error(`${step} ${mode} ${point.syscall}#${point.n} ${errno} [${point.example}]: ${(e as Error).message}\nstrace: ${trace}`)
          }
          injections++
          if (r.step.ok) tolerated.add(`${point.syscall} ${errno}`)
          if (!r.injected) findings.push(`${step} ${mode} ${point.syscall}#${point.n} ${errno} [${point.example}]: the injection never fired (the step's syscalls differ from the traced round)`)
          for (const f of judge(r, point)) findings.push(`${step} ${mode} ${point.syscall}#${point.n} ${errno} [${point.example}]: ${f}`)
        }
      }
      child.send('exit')
    }
    t.log(`${step}: ${injections} injections, ${findings.length} findings; succeeded despite: ${[...tolerated].sort().join(', ') || 'none'}`)
    t.deepEqual(findings, [])
  })
}
