// box.jail(): a shim's start and end as BoxLite's runtime does them around
// its jailer. Before the policy is computed, one native call under the box
// lock makes what the policy must be able to grant (sockets/ and the link, a
// fresh empty exit after rotating the last one to exit.previous,
// logs/console.log) and opens shim.stderr for appending beneath the box.
// Then the shim runs under bubblewrap (Linux) or sandbox-exec with a
// seatbelt profile (macOS). On Linux the jailed process is held by bwrap's
// --block-fd until shim.pid names it (from --info-fd, not bwrap's own pid)
// with its start-time fingerprint, so the record is complete before the
// shim runs a single instruction. At the end the exit record is written
// only if the shim wrote none.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import * as args from './args.ts'
import { LayoutError, type ErrorContext } from './errors.ts'
import { exitRecordOf, type ExitRecord } from './exit-record.ts'
import { binding, type BoxOpArgs, type BoxOpName, type NativeCall, type NativePolicyFacts, type NativeOps } from './native.ts'
import type { PidRecord } from './pid-file.ts'
import { bwrapArgsOf, policyHostPaths, POLICY_CONTEXT, type BwrapOptions, type PolicyBox } from './policy.ts'
import { sandboxExecArgs, SEATBELT_OPTION_KEYS, seatbeltHostPaths, seatbeltOptionsOf, seatbeltProfileOf, type SeatbeltOptions } from './seatbelt.ts'

export type JailPlatform = 'linux' | 'darwin'
export type JailStdio = 'ignore' | 'inherit' | 'pipe'

export interface JailOptions extends BwrapOptions, SeatbeltOptions {
  /** The shim's stdin. Default 'ignore'. (Its stderr always goes to shim.stderr.) */
  stdin?: JailStdio
  /** The shim's stdout. Default 'inherit'. */
  stdout?: JailStdio
  /** Added to the environment (macOS; bubblewrap clears it, as BoxLite's jail does). */
  env?: Record<string, string>
  /** Capability lines for shim.pid after the fingerprint, e.g. 'services-mux-v1'. Default none. */
  capabilities?: string[]
}

/** How a jailed shim ended. */
export interface ShimExit {
  /** The jail's exit status (bubblewrap reports a signalled shim as 128 + n), or null. */
  code: number | null
  /** The signal that ended the jail process itself, or null. */
  signal: NodeJS.Signals | null
  /** The record in exit now: the shim's own, or the one written for it; null for a clean exit. */
  record: ExitRecord | null
  /** Who wrote it: the shim, the jail (the shim wrote none), or nobody (status 0, no record). */
  recordBy: 'shim' | 'jail' | 'none'
  /** The shim's record did not parse (left as it is, never overwritten). */
  error?: LayoutError
}

/** A running jailed shim. */
export interface JailedShim {
  /** The jailed process (the shim itself, not bubblewrap). */
  readonly pid: number
  /** What shim.pid says: the pid and its start-time fingerprint. */
  readonly pidRecord: PidRecord
  /** The command run, jail program first. */
  readonly argv: readonly string[]
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  /** Settles once the shim ended and its exit record is in place. */
  readonly exit: Promise<ShimExit>
  /** Signal the shim (not the jail); false once it is gone. */
  kill (signal?: NodeJS.Signals): boolean
}

/** What jail.ts needs of a BoxLayout: its paths, its pid and exit files. */
export interface JailBox extends PolicyBox {
  readonly sockets: PolicyBox['sockets'] & { readonly uid: number }
  readonly tmpDir: string
  readonly stderrFilePath: string
  readonly pidFile: { write (pid: number, capabilities: string[]): Promise<PidRecord> }
  readonly exitFile: { read (): Promise<ExitRecord | null>, write (record: ExitRecord): Promise<void> }
}

/** One native operation on the box, its address prepended (BoxLayout's own). */
export type BoxCall = <K extends BoxOpName, R>(name: K, args: BoxOpArgs<K>, ctx: ErrorContext,
  shape: (raw: ReturnType<NativeOps[K]>) => R) => NativeCall<R>

const STDIO = ['ignore', 'inherit', 'pipe'] as const

/** The keys of JailOptions, and jailArgv()'s platform, for args.options(). */
const JAIL_OPTION_KEYS = [...SEATBELT_OPTION_KEYS, 'stdin', 'stdout', 'env', 'capabilities', 'platform'] as const

/** The checked copy jail() and jailArgv() work from, each key read once. */
function checkOptions (options: unknown): JailOptions & { platform?: JailPlatform } {
  const o = args.options(options, 'options', JAIL_OPTION_KEYS)
  const checked: JailOptions & { platform?: JailPlatform } = seatbeltOptionsOf(o)
  if (o.stdin !== undefined) checked.stdin = args.oneOf(o.stdin, 'options.stdin', STDIO)
  if (o.stdout !== undefined) checked.stdout = args.oneOf(o.stdout, 'options.stdout', STDIO)
  if (o.env !== undefined) {
    checked.env = Object.fromEntries(args.entries(o.env, 'options.env').map(([k, v]) => {
      const name = `options.env.${k}`
      if (k === '' || k.includes('=') || k.includes('\0')) throw args.refuse(name, 'named without "=" or NUL', k)
      return [k, args.string(v, name, { nonEmpty: false, maxBytes: ARG_BYTES_MAX })]
    }))
  }
  if (o.capabilities !== undefined) {
    checked.capabilities = args.array(o.capabilities, 'options.capabilities').map((c, i) => {
      const cap = args.string(c, `options.capabilities[${i}]`)
      if (/[\n\r]/.test(cap)) throw args.refuse(`options.capabilities[${i}]`, 'a line (no newline)', cap)
      return cap
    })
  }
  if (o.platform !== undefined) checked.platform = args.oneOf(o.platform, 'options.platform', ['linux', 'darwin'] as const)
  return checked
}

/** execve's bound on one argument (MAX_ARG_STRLEN). */
const ARG_BYTES_MAX = 128 * 1024 - 1

export function checkCommand (command: unknown): string[] {
  return args.array(command, 'command', { nonEmpty: true }).map((a, i) =>
    args.string(a, `command[${i}]`, { maxBytes: ARG_BYTES_MAX }))
}

export function checkPlatform (platform: unknown): JailPlatform {
  if (platform !== 'linux' && platform !== 'darwin') {
    throw new LayoutError({
      code: 'ERR_UNSUPPORTED_PLATFORM',
      reason: 'unsupported-platform',
      message: `ERR_UNSUPPORTED_PLATFORM: a shim is jailed with bubblewrap (linux) or sandbox-exec (darwin), not on ${String(platform)}`,
    })
  }
  return platform
}

/** The facts a jail is computed from, for one platform. */
function factsCall (box: JailBox, call: BoxCall, options: JailOptions, platform: JailPlatform): NativeCall<NativePolicyFacts> {
  const darwin = platform === 'darwin'
  const hosts = [...policyHostPaths(box, options), ...(darwin ? seatbeltHostPaths(box, options) : [])]
  return call('boxPolicyFacts', [hosts, options.backingRoots ?? [], darwin], POLICY_CONTEXT(box), (f) => f)
}

/**
 * The facts as they will be once the jail prepared the box (for a printed
 * command): sockets/, its link, logs/ and exit exist then.
 */
function asPrepared (box: JailBox, facts: NativePolicyFacts): NativePolicyFacts {
  const entries = { ...facts.entries }
  for (const [rel, kind] of [['sockets', 'directory'], ['logs', 'directory'], ['exit', 'file']] as const) {
    if (entries[rel] === 'missing' || entries[rel] === undefined) entries[rel] = kind
  }
  const hosts = facts.hosts.map((h) => {
    if (h.path === box.sockets.bindingDir && h.kind === 'missing') return { ...h, kind: 'symlink' as const, exists: true, isDir: true, linkTarget: box.sockets.realDir }
    if (h.path === box.sockets.parentDir && h.kind === 'missing') return { ...h, kind: 'directory' as const, exists: true, isDir: true }
    return h
  })
  return { ...facts, entries, hosts }
}

/**
 * The options with the shim named: options.shim, else command[0]. The
 * seatbelt profile grants the shim's directory, so on darwin a command[0]
 * standing for the shim must be an absolute path (refused as command[0]).
 */
function withShim (options: JailOptions, command: string[], platform: JailPlatform): JailOptions {
  if (options.shim !== undefined || platform !== 'darwin') return { ...options, shim: options.shim ?? command[0] }
  return { ...options, shim: args.path(command[0], 'command[0]', { why: 'The seatbelt profile grants the shim\'s directory: run it by its absolute path, or pass options.shim' }) }
}

function argvOf (box: JailBox, facts: NativePolicyFacts, command: string[], options: JailOptions, platform: JailPlatform): string[] {
  if (platform === 'linux') return bwrapArgsOf(box, facts, command, options)
  const profile = seatbeltProfileOf(box, facts, { ...options, shim: options.shim ?? command[0] })
  return sandboxExecArgs(profile, process.platform === 'darwin' ? binding().darwinUserCacheDir() : '', command)
}

/**
 * The command box.jail() would run for command on platform, computed
 * without changing anything (as if the jail had prepared the box).
 */
export async function jailArgv (box: JailBox, call: BoxCall, unchecked: unknown, uncheckedOptions: unknown): Promise<string[]> {
  const command = checkCommand(unchecked)
  const { platform: given, ...options } = checkOptions(uncheckedOptions)
  const platform = given ?? checkPlatform(process.platform)
  const facts = await factsCall(box, call, withShim(options, command, platform), platform).async()
  return argvOf(box, asPrepared(box, facts), command, options, platform)
}

function spawnFailed (argv0: string, e: NodeJS.ErrnoException): LayoutError {
  const missing = e.code === 'ENOENT'
  return new LayoutError({
    code: missing ? 'ENOENT' : (e.code as 'EACCES' | undefined) ?? 'EINVAL',
    reason: 'syscall-failed',
    syscall: 'spawn',
    path: argv0,
    message: `${e.code ?? 'EINVAL'}: cannot start the jail ${argv0}: ${e.message}` +
      (missing ? (argv0 === 'bwrap' ? '; install bubblewrap (the distribution package "bubblewrap")' : '; sandbox-exec ships with macOS') : ''),
    cause: e,
  })
}

function jailFailed (box: JailBox, code: number | null, signal: NodeJS.Signals | null): LayoutError {
  return new LayoutError({
    code: 'ERR_JAIL_FAILED',
    reason: 'jail-failed',
    path: box.stderrFilePath,
    message: `ERR_JAIL_FAILED: the jail ended (${signal ?? `status ${String(code)}`}) before it started the shim of box ` +
      `${box.boxId}; its own message is at the end of ${box.stderrFilePath}. No exit record was written`,
  })
}

/** After the shim ended: its own record, else the one its status means. */
async function settleExit (box: JailBox, code: number | null, signal: NodeJS.Signals | null): Promise<ShimExit> {
  let own: ExitRecord | null
  try {
    own = await box.exitFile.read()
  } catch (e) {
    if (e instanceof LayoutError && e.reason === 'malformed-record') return { code, signal, record: null, recordBy: 'shim', error: e }
    throw e
  }
  if (own !== null) return { code, signal, record: own, recordBy: 'shim' }
  const record = signal === null ? exitRecordOf(code) : exitRecordOf(null, signal)
  if (record === null) return { code, signal, record: null, recordBy: 'none' }
  await box.exitFile.write(record)
  return { code, signal, record, recordBy: 'jail' }
}

function exited (child: ChildProcess): Promise<[number | null, NodeJS.Signals | null]> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode])
    else child.once('exit', (code, signal) => resolve([code, signal]))
  })
}

/** Whether the jail process has been reaped (its 'exit' came), known synchronously. */
function reaped (child: ChildProcess): () => boolean {
  return () => child.exitCode !== null || child.signalCode !== null
}

/** bwrap's --info-fd JSON: {"child-pid": N, …}; null when it closed without one. */
function childPidOf (info: Readable): Promise<number | null> {
  return new Promise((resolve) => {
    let text = ''
    let done = false
    const finish = (pid: number | null) => { if (!done) { done = true; resolve(pid) } }
    info.on('data', (d: Buffer) => {
      text += d.toString()
      try {
        const pid = (JSON.parse(text) as { 'child-pid'?: unknown })['child-pid']
        finish(typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : null)
      } catch {
        // Not all of it yet.
      }
    })
    info.once('end', () => finish(null))
    info.once('error', () => finish(null))
  })
}

export async function jail (box: JailBox, call: BoxCall, unchecked: unknown, uncheckedOptions: unknown): Promise<JailedShim> {
  const command = checkCommand(unchecked)
  const options = checkOptions(uncheckedOptions)
  delete options.platform
  const platform = checkPlatform(process.platform)
  // Made (and its paths checked) now, run once the box is prepared.
  const facts = factsCall(box, call, withShim(options, command, platform), platform)
  const prepared = await call('shimPrepare', [box.sockets.parentDir, box.sockets.uid, box.sockets.realDir], {
    doing: `cannot prepare box ${box.boxId} for its shim`,
    hints: {
      'not-prepared': 'prepare() the box first',
      symlink: 'a symlink where the shim\'s files go was not made by the layout; remove it',
      'not-a-regular-file': 'remove it; exit, logs/console.log and shim.stderr must be regular files',
    },
  }, (r) => r).async()
  let child: ChildProcess
  let argv: string[]
  try {
    argv = argvOf(box, await facts.async(), command, options, platform)
    const linux = platform === 'linux'
    const args = linux ? ['--info-fd', '3', '--block-fd', '4', ...argv.slice(1)] : argv.slice(1)
    child = spawn(argv[0]!, args, {
      stdio: [options.stdin ?? 'ignore', options.stdout ?? 'inherit', prepared.stderrFd, ...(linux ? ['pipe', 'pipe'] as const : [])],
      env: { ...process.env, BOXLITE_BOX_ID: box.boxId, TMPDIR: box.tmpDir, TMP: box.tmpDir, TEMP: box.tmpDir, ...options.env },
      detached: options.detached === true,
    })
  } finally {
    fs.closeSync(prepared.stderrFd)
  }
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (e) => reject(spawnFailed(argv[0]!, e)))
  })
  await started
  const end = exited(child)
  // The status pipes close under us when bwrap is done with them (a reset,
  // not a failure): what matters is read from them or from its exit.
  for (const fd of [3, 4]) (child.stdio[fd] as Readable | Writable | undefined)?.on('error', () => {})
  let pid: number
  if (platform === 'linux') {
    const found = await childPidOf(child.stdio[3] as Readable)
    if (found === null) {
      const [code, signal] = await end
      throw jailFailed(box, code, signal)
    }
    pid = found
  } else {
    pid = child.pid!
  }
  let pidRecord: PidRecord
  try {
    // Held by --block-fd on Linux: alive, so the fingerprint is its own.
    pidRecord = await box.pidFile.write(pid, options.capabilities ?? [])
  } catch (e) {
    // Never released: the shim must not run without its record. Detached,
    // it would outlive bwrap, so it goes first.
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    child.kill('SIGKILL')
    await end
    throw e
  }
  if (platform === 'linux') (child.stdio[4] as Writable).end('go')
  const over = reaped(child)
  const exit = end.then(async ([code, signal]) => await settleExit(box, code, signal))
  return {
    pid,
    pidRecord,
    argv,
    stdin: child.stdin,
    stdout: child.stdout,
    exit,
    // While the jail has not been reaped, the shim's pid cannot have been
    // reused: bubblewrap waits for it before it exits itself.
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (over()) return false
      try {
        process.kill(pid, signal)
        return true
      } catch {
        return false
      }
    },
  }
}
