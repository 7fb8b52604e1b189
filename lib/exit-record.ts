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
import { invalidArg, layoutError, type LayoutError } from './errors.ts'
import { nativeCall, type NativeCall } from './native.ts'
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
export function parseExitRecord (text: string, file = 'exit'): ExitRecord {
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

/**
 * The record for a process that ended with (code, signal) as Node reports
 * it, when the shim wrote none: null for 0; a signal (killed by one, or a
 * status 128 + n for a known signal n, which is how bubblewrap and shells
 * report a signalled child); any other status an engine error.
 */
export function exitRecordOf (code: number | null, signal: NodeJS.Signals | null = null): ExitRecord | null {
  if (signal !== null) {
    if (code !== null) throw invalidArg('exitRecordOf() takes a code or a signal, not both')
    return signalExit(signal)
  }
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255) {
    throw invalidArg(`exit code must be an integer in 0..255 (or null with a signal); got ${String(code)}`)
  }
  if (code === 0) return null
  const name = Object.entries(os.constants.signals).find(([, n]) => n === code - SIGNAL_EXIT_BASE)?.[0]
  if (code > SIGNAL_EXIT_BASE && name !== undefined) return { type: 'signal', exitCode: code, signal: name }
  return { type: 'error', exitCode: code, message: `exited with status ${code}`, errorKind: 'engine' }
}

/** The record a shim killed by `signal` writes: exit code 128 + n. */
export function signalExit (signal: NodeJS.Signals): ExitRecord {
  const n = os.constants.signals[signal]
  if (n === undefined) throw invalidArg(`unknown signal ${JSON.stringify(signal)}`)
  return { type: 'signal', exitCode: SIGNAL_EXIT_BASE + n, signal }
}

export function parseContainerExit (text: string, file = 'exit.json'): ContainerExit {
  const raw = json(text, file)
  if (raw instanceof Error) throw raw
  const code = (raw as { exit_code?: unknown } | null)?.exit_code
  if (!int32(code)) throw malformed(file, 'no integer exit_code')
  return { exitCode: code }
}

export function formatContainerExit (exit: ContainerExit): string {
  if (!int32(exit?.exitCode)) throw invalidArg('container exit needs an integer exitCode')
  return JSON.stringify({ exit_code: exit.exitCode })
}

/** The exit records of one box: exit and exit.previous. */
export class ExitFile {
  readonly path: string
  readonly previousPath: string
  readonly #dir: FilePlace['dir']
  readonly #name: string
  readonly #previousName: string

  constructor (file: string, previousFile: string, place?: { dir: FilePlace['dir'] }) {
    if (typeof file !== 'string' || !file.startsWith('/') || typeof previousFile !== 'string') {
      throw invalidArg('ExitFile needs absolute paths')
    }
    const [dir, name] = splitLast(file)
    const [previousDir, previousName] = splitLast(previousFile)
    if (previousDir !== dir) throw invalidArg('exit and exit.previous must be in one directory (the rotation is a rename)')
    this.path = file
    this.previousPath = previousFile
    this.#dir = place?.dir ?? [dir, '']
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
  async read (): Promise<ExitRecord | null> { return await this.#read(this.#name, this.path).async() }
  readSync (): ExitRecord | null { return this.#read(this.#name, this.path).sync() }
  async readPrevious (): Promise<ExitRecord | null> { return await this.#read(this.#previousName, this.previousPath).async() }
  readPreviousSync (): ExitRecord | null { return this.#read(this.#previousName, this.previousPath).sync() }

  #write (record: ExitRecord): NativeCall<void> {
    return nativeCall('fileWrite', [...this.#dir, this.#name, formatExitRecord(record), 0o644],
      { doing: `cannot write the exit record ${this.path}` }, () => undefined)
  }

  /** Write atomically (what a shim's handler writes). */
  async write (record: ExitRecord): Promise<void> { await this.#write(record).async() }
  writeSync (record: ExitRecord): void { this.#write(record).sync() }

  #rotate (): NativeCall<boolean> {
    return nativeCall('fileRename', [...this.#dir, this.#name, this.#previousName], { doing: `cannot rotate ${this.path}` })
  }

  /** Move exit to exit.previous (one slot); false when there was no exit record. */
  async rotate (): Promise<boolean> { return await this.#rotate().async() }
  rotateSync (): boolean { return this.#rotate().sync() }
}
