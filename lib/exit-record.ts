// The shim's exit record, byte-compatible with BoxLite's ExitInfo: JSON
// tagged by "type", the tag first, as serde writes an internally tagged
// enum:
//   {"type":"signal","exit_code":134,"signal":"SIGABRT"}
//   {"type":"panic","exit_code":101,"message":"…","location":"main.rs:42:5"}
//   {"type":"error","exit_code":1,"message":"…"[,"error_kind":"unsupported"]}
// error_kind is omitted for "engine" (the historical record), and a kind this
// version does not know reads as "engine" so a newer shim's record stays
// readable. Plus the container's exit.json: {"exit_code":N}. Both files are
// written by others (the shim, the guest): read capped and without blocking,
// and never quoted back in messages.
import os from 'node:os'
import * as args from './args.ts'
import { layoutError, type LayoutError } from './errors.ts'
import { nativeCall, promiseOf, type NativeCall } from './native.ts'
import { splitLast } from './paths.ts'
import type { FilePlace } from './pid-file.ts'

export const SIGNAL_EXIT_BASE = 128
export const PANIC_EXIT_CODE = 101
/** The most an exit record may hold; a larger file is not one the shim wrote. */
export const EXIT_RECORD_CAP = 64 * 1024

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
  return layoutError('EINVAL', 'malformed-record', `${file} is not a valid exit record: ${why}`, { path: file })
}

function int32 (v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31
}

function json (text: string, file: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return malformed(file, `not JSON (${text.length} bytes)`)
  }
}

/** Parse an exit record; a malformed one is EINVAL (malformed-record), never a crash. */
/** The text a parser takes: what a capped read can return. */
function recordText (text: unknown, file: unknown): void {
  args.string(text, 'text', { nonEmpty: false, text: true, maxBytes: EXIT_RECORD_CAP })
  args.string(file, 'file')
}

export function parseExitRecord (text: string, file = 'exit'): ExitRecord {
  recordText(text, file)
  const raw = json(text, file)
  if (raw instanceof Error) throw raw
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw malformed(file, 'not a JSON object')
  const r = raw as Record<string, unknown>
  if (!int32(r.exit_code)) throw malformed(file, 'exit_code is missing or not an integer')
  const str = (key: string): string => {
    if (typeof r[key] !== 'string') throw malformed(file, `a ${String(r.type)} record needs a string "${key}"`)
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
      throw malformed(file, 'type is not signal, panic or error')
  }
}

/**
 * An exit file's contents as a record: null when there is none. An empty
 * (or blank) file is "no record", as BoxLite reads it: a jail pre-creates
 * exit empty so it can grant it before the shim runs.
 */
export function parseExitFile (text: string | null, file = 'exit'): ExitRecord | null {
  return text === null || text.trim() === '' ? null : parseExitRecord(text, file)
}

/** Serialize exactly as BoxLite's shim does (field order included). */
export function formatExitRecord (record: ExitRecord): string {
  const r = args.options(record, 'record', ['type', 'exitCode', 'signal', 'message', 'location', 'errorKind'])
  const type = args.oneOf(r.type, 'record.type', ['signal', 'panic', 'error'])
  const exitCode = args.integer(r.exitCode, 'record.exitCode', -(2 ** 31), 2 ** 31 - 1)
  const text = (key: 'signal' | 'message' | 'location'): string =>
    args.string(r[key], `record.${key}`, { nonEmpty: false, text: true, maxBytes: EXIT_RECORD_CAP })
  let json: string
  switch (type) {
    case 'signal':
      json = JSON.stringify({ type, exit_code: exitCode, signal: text('signal') })
      break
    case 'panic':
      json = JSON.stringify({ type, exit_code: exitCode, message: text('message'), location: text('location') })
      break
    case 'error': {
      const kind = r.errorKind === undefined ? 'engine' : args.oneOf(r.errorKind, 'record.errorKind', [...KNOWN_KINDS])
      json = JSON.stringify({ type, exit_code: exitCode, message: text('message'), ...(kind === 'engine' ? {} : { error_kind: kind }) })
    }
  }
  if (Buffer.byteLength(json) > EXIT_RECORD_CAP) {
    throw args.refuse('record', `at most ${EXIT_RECORD_CAP} bytes as JSON`, record,
      'A larger record would be refused by every reader (EXIT_RECORD_CAP): shorten record.message')
  }
  return json
}

/**
 * The record for a process that ended with (code, signal) as Node reports
 * it, when the shim wrote none: null for 0; a signal (killed by one, or a
 * status 128 + n for a known signal n, which is how bubblewrap and shells
 * report a signalled child); any other status an engine error.
 */
export function exitRecordOf (code: number | null, signal: NodeJS.Signals | null = null): ExitRecord | null {
  if (signal !== null) {
    const record = signalExit(signal)
    if (code !== null) throw args.refuse('code', 'null when a signal is given', code, 'exitRecordOf() takes a code or a signal, not both')
    return record
  }
  const status = args.integer(code, 'code', 0, 255)
  if (status === 0) return null
  const name = Object.entries(os.constants.signals).find(([, n]) => n === status - SIGNAL_EXIT_BASE)?.[0]
  if (status > SIGNAL_EXIT_BASE && name !== undefined) return { type: 'signal', exitCode: status, signal: name }
  return { type: 'error', exitCode: status, message: `exited with status ${status}`, errorKind: 'engine' }
}

/** The record a shim killed by `signal` writes: exit code 128 + n. */
export function signalExit (signal: NodeJS.Signals): ExitRecord {
  const n = typeof signal === 'string' && Object.hasOwn(os.constants.signals, signal) ? os.constants.signals[signal] : undefined
  if (n === undefined) throw args.refuse('signal', 'a signal name such as "SIGKILL"', signal)
  return { type: 'signal', exitCode: SIGNAL_EXIT_BASE + n, signal }
}

export function parseContainerExit (text: string, file = 'exit.json'): ContainerExit {
  recordText(text, file)
  const raw = json(text, file)
  if (raw instanceof Error) throw raw
  const code = (raw as { exit_code?: unknown } | null)?.exit_code
  if (!int32(code)) throw malformed(file, 'no integer exit_code')
  return { exitCode: code }
}

export function formatContainerExit (exit: ContainerExit): string {
  const { exitCode } = args.options(exit, 'exit', ['exitCode'])
  return JSON.stringify({ exit_code: args.integer(exitCode, 'exit.exitCode', -(2 ** 31), 2 ** 31 - 1) })
}

/** The exit records of one box: exit and exit.previous. */
export class ExitFile {
  readonly path: string
  readonly previousPath: string
  readonly #dir: FilePlace['dir']
  readonly #name: string
  readonly #previousName: string

  constructor (file: string, previousFile: string, place?: { dir: FilePlace['dir'] }) {
    const [dir, name] = splitLast(args.path(file, 'file'))
    const [previousDir, previousName] = splitLast(args.path(previousFile, 'previousFile'))
    if (previousDir !== dir || previousName === name) {
      throw args.refuse('previousFile', `another name in ${dir}`, previousFile, 'The rotation is a rename within one directory')
    }
    this.path = file
    this.previousPath = previousFile
    if (place === undefined) {
      this.#dir = [dir, '']
    } else {
      this.#dir = args.dirRef(args.options(place, 'place', ['dir']).dir, 'place.dir')
    }
    this.#name = name
    this.#previousName = previousName
  }

  #read (name: string, file: string): NativeCall<ExitRecord | null> {
    return nativeCall('fileRead', [...this.#dir, name, EXIT_RECORD_CAP], { doing: `cannot read the exit record ${file}` },
      (text) => parseExitFile(text, file))
  }

  /**
   * The record, or null when the shim left none (no file, or an empty one);
   * EINVAL (malformed-record) if it does not parse.
   */
  read (): Promise<ExitRecord | null> { return promiseOf(() => this.#read(this.#name, this.path)) }
  readSync (): ExitRecord | null { return this.#read(this.#name, this.path).sync() }
  readPrevious (): Promise<ExitRecord | null> { return promiseOf(() => this.#read(this.#previousName, this.previousPath)) }
  readPreviousSync (): ExitRecord | null { return this.#read(this.#previousName, this.previousPath).sync() }

  #write (record: ExitRecord): NativeCall<void> {
    return nativeCall('fileWrite', [...this.#dir, this.#name, formatExitRecord(record), 0o644],
      { doing: `cannot write the exit record ${this.path}` }, () => undefined)
  }

  /** Write atomically (what a shim's handler writes). */
  write (record: ExitRecord): Promise<void> { return promiseOf(() => this.#write(record)) }
  writeSync (record: ExitRecord): void { this.#write(record).sync() }

  #rotate (): NativeCall<boolean> {
    return nativeCall('fileRename', [...this.#dir, this.#name, this.#previousName], { doing: `cannot rotate ${this.path}` })
  }

  /** Move exit to exit.previous (one slot); false when there was no exit record. */
  rotate (): Promise<boolean> { return promiseOf(() => this.#rotate()) }
  rotateSync (): boolean { return this.#rotate().sync() }
}
