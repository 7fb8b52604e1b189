// shim.pid (SPEC §6): line 1 the pid, line 2 an optional start-time
// fingerprint (Linux: field 22 of /proc/PID/stat), then optional capability
// lines. The fingerprint is what tells a live shim from a recycled pid.
import fs from 'node:fs'
import { invalidArg, layoutError, fromNodeError } from './errors.ts'
import { fsReadFile, fsWriteFileAtomic } from './fs-effects.ts'
import { perform, runAsync, runSync, type Plan } from './native.ts'

export interface PidRecord {
  pid: number
  /** Start time in clock ticks since boot (Linux); absent in legacy files. */
  startTime?: string
  /** Further lines, as written (e.g. capabilities the shim announced). */
  capabilities: string[]
}

export type ProcessIdentityKind = 'verified' | 'legacy' | 'absent'

export interface ProcessIdentity {
  identity: ProcessIdentityKind
  pid?: number
  /** Why, for 'absent' and 'legacy'. */
  reason: string
}

/** Field 22 of /proc/PID/stat (starttime), or undefined if PID is gone. */
export function processStartTime (pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // comm (field 2) is in parentheses and may itself hold spaces and ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return rest[22 - 3]
}

function checkPid (pid: unknown): number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > 0x7fffffff) {
    throw invalidArg(`pid must be a positive integer; got ${String(pid)}`)
  }
  return pid
}

export function formatPidFile (record: PidRecord): string {
  checkPid(record.pid)
  const lines = [String(record.pid)]
  if (record.startTime !== undefined) {
    if (!/^[0-9]+$/.test(record.startTime)) throw invalidArg(`start time must be decimal; got ${JSON.stringify(record.startTime)}`)
    lines.push(record.startTime)
  } else if (record.capabilities.length > 0) {
    lines.push('')
  }
  for (const cap of record.capabilities) {
    if (/[\n\r]/.test(cap)) throw invalidArg('a capability line cannot contain a newline')
    lines.push(cap)
  }
  return lines.join('\n') + '\n'
}

export function parsePidFile (text: string, file = 'shim.pid'): PidRecord {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const first = (lines[0] ?? '').trim()
  if (!/^[1-9][0-9]{0,9}$/.test(first) || Number(first) > 0x7fffffff) {
    throw layoutError('EINVAL', `${file} does not start with a pid (line 1 is ${JSON.stringify(first.slice(0, 40))})`, { path: file })
  }
  const second = (lines[1] ?? '').trim()
  if (second !== '' && !/^[0-9]+$/.test(second)) {
    throw layoutError('EINVAL', `${file} line 2 is not a start-time fingerprint (${JSON.stringify(second.slice(0, 40))})`, { path: file })
  }
  return {
    pid: Number(first),
    ...(second === '' ? {} : { startTime: second }),
    capabilities: lines.slice(2).filter((l) => l !== ''),
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' // exists, not ours
  }
}

/** Judge a pid record against the live process table. */
export function identityOf (record: PidRecord): ProcessIdentity {
  const { pid } = record
  if (!alive(pid)) return { identity: 'absent', pid, reason: 'process is gone' }
  if (record.startTime === undefined) return { identity: 'legacy', pid, reason: 'no start-time fingerprint; pid is alive' }
  const now = processStartTime(pid)
  if (now === undefined) {
    return process.platform === 'linux'
      ? { identity: 'absent', pid, reason: 'process is gone' }
      : { identity: 'legacy', pid, reason: 'fingerprint cannot be checked on this platform; pid is alive' }
  }
  if (now !== record.startTime) {
    return { identity: 'absent', pid, reason: `pid ${pid} was reused (start time ${now}, recorded ${record.startTime})` }
  }
  return { identity: 'verified', pid, reason: 'alive, same start time' }
}

export function * readPidPlan (file: string): Plan<PidRecord | null> {
  try {
    return parsePidFile(yield * perform(fsReadFile([file], { doing: 'cannot read the pid file' })), file)
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null
    throw e
  }
}

export function * identityPlan (file: string): Plan<ProcessIdentity> {
  let record: PidRecord | null
  try {
    record = yield * readPidPlan(file)
  } catch (e) {
    if ((e as { code?: string }).code === 'EINVAL') return { identity: 'absent', reason: (e as Error).message }
    throw e
  }
  if (record === null) return { identity: 'absent', reason: 'no pid file' }
  return identityOf(record)
}

export function * writePidPlan (file: string, pid: number, capabilities: string[]): Plan<PidRecord> {
  const startTime = processStartTime(checkPid(pid))
  const record: PidRecord = { pid, ...(startTime === undefined ? {} : { startTime }), capabilities: [...capabilities] }
  yield * perform(fsWriteFileAtomic([file, formatPidFile(record), 0o644], { doing: 'cannot write the pid file' }))
  return record
}

/** Pid file of one box (or any path in the same format). */
export class PidFile {
  readonly path: string

  constructor (file: string) {
    this.path = file
  }

  /** Write pid (default: this process) with its fingerprint, atomically. */
  write (pid: number = process.pid, capabilities: string[] = []): Promise<PidRecord> {
    return runAsync(writePidPlan(this.path, pid, capabilities))
  }

  writeSync (pid: number = process.pid, capabilities: string[] = []): PidRecord {
    return runSync(writePidPlan(this.path, pid, capabilities))
  }

  /** The record, or null when there is no file; EINVAL if malformed. */
  read (): Promise<PidRecord | null> {
    return runAsync(readPidPlan(this.path))
  }

  readSync (): PidRecord | null {
    return runSync(readPidPlan(this.path))
  }

  /** verified (alive, same start time) | legacy (alive, no fingerprint) | absent. */
  identity (): Promise<ProcessIdentity> {
    return runAsync(identityPlan(this.path))
  }

  identitySync (): ProcessIdentity {
    return runSync(identityPlan(this.path))
  }

  removeSync (): void {
    try {
      fs.unlinkSync(this.path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromNodeError(e, { doing: 'cannot remove the pid file' })
    }
  }
}
