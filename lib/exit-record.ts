// The shim's exit record (SPEC §6), byte-compatible with BoxLite's ExitInfo:
// JSON tagged by "type", the tag first, as serde writes an internally tagged
// enum:
//   {"type":"signal","exit_code":134,"signal":"SIGABRT"}
//   {"type":"panic","exit_code":101,"message":"…","location":"main.rs:42:5"}
//   {"type":"error","exit_code":1,"message":"…"[,"error_kind":"unsupported"]}
// error_kind is omitted for "engine" (the historical record), and a kind this
// version does not know reads as "engine" so a newer shim's record stays
// readable. Plus the container's exit.json: {"exit_code":N}.
import os from 'node:os'
import { layoutError, LayoutError, invalidArg } from './errors.ts'
import { fsReadFile, fsRename, fsWriteFileAtomic } from './fs-effects.ts'
import { perform, runAsync, runSync, type Plan } from './native.ts'

export const SIGNAL_EXIT_BASE = 128
export const PANIC_EXIT_CODE = 101

export type ExitErrorKind = 'engine' | 'unsupported'

export type ExitRecord =
  | { type: 'signal', exitCode: number, signal: string }
  | { type: 'panic', exitCode: number, message: string, location: string }
  | { type: 'error', exitCode: number, message: string, errorKind: ExitErrorKind }

export interface ContainerExit {
  exitCode: number
}

const KNOWN_KINDS = new Set<ExitErrorKind>(['engine', 'unsupported'])

function malformed (file: string, why: string): LayoutError {
  return layoutError('EINVAL', `${file} is not a valid exit record: ${why}`, { path: file })
}

function int32 (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31
}

/** Parse an exit record; a malformed one is EINVAL (typed), never a crash. */
export function parseExitRecord (text: string, file = 'exit'): ExitRecord {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw malformed(file, `not JSON (${(e as Error).message})`)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw malformed(file, 'not a JSON object')
  const r = raw as Record<string, unknown>
  if (!int32(r.exit_code)) throw malformed(file, 'exit_code is missing or not an integer')
  const str = (key: string): string => {
    if (typeof r[key] !== 'string') throw malformed(file, `${String(r.type)} record without a string "${key}"`)
    return r[key] as string
  }
  switch (r.type) {
    case 'signal':
      return { type: 'signal', exitCode: r.exit_code, signal: str('signal') }
    case 'panic':
      return { type: 'panic', exitCode: r.exit_code, message: str('message'), location: str('location') }
    case 'error': {
      const kind = r.error_kind
      if (kind !== undefined && typeof kind !== 'string') throw malformed(file, 'error_kind is not a string')
      return {
        type: 'error',
        exitCode: r.exit_code,
        message: str('message'),
        errorKind: KNOWN_KINDS.has(kind as ExitErrorKind) ? kind as ExitErrorKind : 'engine',
      }
    }
    default:
      throw malformed(file, `unknown type ${JSON.stringify(r.type)}`)
  }
}

/** Serialize exactly as BoxLite's shim does (field order included). */
export function formatExitRecord (record: ExitRecord): string {
  if (!int32(record?.exitCode)) throw invalidArg('exit record needs an integer exitCode')
  switch (record.type) {
    case 'signal':
      return JSON.stringify({ type: 'signal', exit_code: record.exitCode, signal: record.signal })
    case 'panic':
      return JSON.stringify({ type: 'panic', exit_code: record.exitCode, message: record.message, location: record.location })
    case 'error':
      return JSON.stringify({
        type: 'error',
        exit_code: record.exitCode,
        message: record.message,
        ...(record.errorKind === 'engine' ? {} : { error_kind: record.errorKind }),
      })
    default:
      throw invalidArg(`unknown exit record type ${JSON.stringify((record as { type: unknown }).type)}`)
  }
}

/** The record a shim killed by `signal` writes: exit code 128 + n. */
export function signalExit (signal: NodeJS.Signals): ExitRecord {
  const n = os.constants.signals[signal]
  if (n === undefined) throw invalidArg(`unknown signal ${JSON.stringify(signal)}`)
  return { type: 'signal', exitCode: SIGNAL_EXIT_BASE + n, signal }
}

/** Read and parse a record file; null when there is none. */
function * readRecordPlan<T> (file: string, what: string, parse: (text: string, file: string) => T): Plan<T | null> {
  let text: string
  try {
    text = yield * perform(fsReadFile([file], { doing: `cannot read the ${what}` }))
  } catch (e) {
    if (e instanceof LayoutError && e.code === 'ENOENT') return null
    throw e
  }
  return parse(text, file)
}

export function readExitPlan (file: string): Plan<ExitRecord | null> {
  return readRecordPlan(file, 'exit record', parseExitRecord)
}

export function * writeExitPlan (file: string, record: ExitRecord): Plan<void> {
  yield * perform(fsWriteFileAtomic([file, formatExitRecord(record), 0o644], { doing: 'cannot write the exit record' }))
}

/** exit -> exit.previous (one slot: the older one is replaced). */
export function * rotateExitPlan (file: string, previous: string): Plan<boolean> {
  try {
    yield * perform(fsRename([file, previous], { doing: 'cannot rotate the exit record' }))
    return true
  } catch (e) {
    if (e instanceof LayoutError && e.code === 'ENOENT') return false
    throw e
  }
}

export function parseContainerExit (text: string, file = 'exit.json'): ContainerExit {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw layoutError('EINVAL', `${file} is not JSON (${(e as Error).message})`, { path: file })
  }
  const code = (raw as { exit_code?: unknown } | null)?.exit_code
  if (!int32(code)) throw layoutError('EINVAL', `${file} has no integer exit_code`, { path: file })
  return { exitCode: code }
}

export function formatContainerExit (exit: ContainerExit): string {
  if (!int32(exit?.exitCode)) throw invalidArg('container exit needs an integer exitCode')
  return JSON.stringify({ exit_code: exit.exitCode })
}

export function readContainerExitPlan (file: string): Plan<ContainerExit | null> {
  return readRecordPlan(file, 'container exit record', parseContainerExit)
}

export function * writeContainerExitPlan (file: string, exit: ContainerExit): Plan<void> {
  yield * perform(fsWriteFileAtomic([file, formatContainerExit(exit), 0o644], { doing: 'cannot write the container exit record' }))
}

/** The exit records of one box: exit and exit.previous. */
export class ExitFile {
  readonly path: string
  readonly previousPath: string

  constructor (file: string, previousFile: string) {
    this.path = file
    this.previousPath = previousFile
  }

  /** The record, or null when the shim left none; EINVAL if malformed. */
  read (): Promise<ExitRecord | null> { return runAsync(readExitPlan(this.path)) }
  readSync (): ExitRecord | null { return runSync(readExitPlan(this.path)) }
  readPrevious (): Promise<ExitRecord | null> { return runAsync(readExitPlan(this.previousPath)) }
  readPreviousSync (): ExitRecord | null { return runSync(readExitPlan(this.previousPath)) }
  /** Write atomically (what a shim's handler would write). */
  write (record: ExitRecord): Promise<void> { return runAsync(writeExitPlan(this.path, record)) }
  writeSync (record: ExitRecord): void { runSync(writeExitPlan(this.path, record)) }
  /** Move exit to exit.previous; false when there was no exit record. */
  rotate (): Promise<boolean> { return runAsync(rotateExitPlan(this.path, this.previousPath)) }
  rotateSync (): boolean { return runSync(rotateExitPlan(this.path, this.previousPath)) }
}
