// shim.pid: line 1 the pid, line 2 an optional start-time fingerprint
// (Linux: field 22 of /proc/PID/stat; macOS: proc_pidinfo's start time in
// microseconds, tvsec * 1000000 + tvusec), then optional capability lines. The
// fingerprint is what tells a live shim from a recycled pid. The file is
// one the shim writes, so it is read without blocking and with a cap: a
// FIFO or a huge file is an error, never a hang.
import * as args from './args.ts'
import { layoutError, LayoutError } from './errors.ts'
import { nativeCall, promiseOf, type DirArgs, type NativeCall, type NativePid } from './native.ts'
import { splitLast } from './paths.ts'

export interface PidRecord {
  pid: number
  /**
   * Start time: clock ticks since boot (Linux), microseconds since the epoch
   * (macOS); absent in legacy files.
   */
  startTime?: string
  /** Further lines, as written (e.g. capabilities the shim announced). */
  capabilities: string[]
}

export type ProcessIdentityKind = 'verified' | 'legacy' | 'absent'

export interface ProcessIdentity {
  identity: ProcessIdentityKind
  pid?: number
  /** Why, in a few words. */
  why: string
  /** identity absent because the pid file is malformed: the parse error. */
  error?: LayoutError
}

/** Where a record file lives: the directory the core opens, and the name in it. */
export interface FilePlace {
  dir: DirArgs
  name: string
}

const PID_MAX = 0x7fffffff
/** The most a pid file may hold (the core reads no more). */
const PID_FILE_CAP = 4096
/** Room for line 1 (pid) and line 2 (the start time, up to 20 digits). */
const PID_LINES_BYTES = 11 + 21

/**
 * What a malformed line looks like, without quoting it: the file is the
 * shim's, and its bytes have no business in a host's logs.
 */
function shapeOf (line: string): string {
  return `${line.length} characters${/^[0-9]*$/.test(line) ? ', all digits' : ''}`
}

const U64_MAX = 2n ** 64n - 1n

/** Parse a pid file; one whose line 1 is not a pid is EINVAL (reason malformed-record). */
export function parsePidFile (text: string, file = 'shim.pid'): PidRecord {
  args.string(text, 'text', { nonEmpty: false, text: true, maxBytes: PID_FILE_CAP })
  args.string(file, 'file')
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const first = (lines[0] ?? '').trim()
  if (!/^[1-9][0-9]{0,9}$/.test(first) || Number(first) > 0x7fffffff) {
    throw layoutError('EINVAL', 'malformed-record', `${file} does not start with a pid (line 1 has ${shapeOf(first)})`, { path: file })
  }
  // Line 2 is a fingerprint only when it is a decimal u64; anything else
  // reads as none (legacy), never as an error: BoxLite reads it so, and a
  // malformed file judged absent would let gc unmount a live shim's box.
  const second = (lines[1] ?? '').trim()
  const fingerprint = /^[0-9]+$/.test(second) && BigInt(second) <= U64_MAX
  return {
    pid: Number(first),
    ...(fingerprint ? { startTime: second } : {}),
    capabilities: lines.slice(2).filter((l) => l !== ''),
  }
}

/**
 * Whether two fingerprints name one start time. They are decimal u64s, which
 * is how BoxLite compares them (it parses the line), so "0042" and "42" are
 * equal; anything else is compared as written.
 */
function sameStartTime (a: string, b: string): boolean {
  return /^[0-9]+$/.test(a) && /^[0-9]+$/.test(b) ? BigInt(a) === BigInt(b) : a === b
}

/**
 * Judge a record against what the kernel says about its pid now. `platform`
 * says whose kernel answered (an empty start time means "gone" on Linux,
 * where /proc/PID/stat vanished, and "cannot tell" elsewhere).
 */
export function judgeIdentity (record: PidRecord, now: { alive: boolean, startTime: string },
  platform: NodeJS.Platform = process.platform): ProcessIdentity {
  const r = args.options(record, 'record', ['pid', 'startTime'])
  const pid = args.integer(r.pid, 'record.pid', 1, PID_MAX)
  // As a pid file holds it: a decimal u64, which zeros may pad past 20 digits.
  const recorded = r.startTime === undefined ? undefined : args.string(r.startTime, 'record.startTime', { maxBytes: PID_FILE_CAP })
  const n = args.options(now, 'now', ['alive', 'startTime'])
  now = {
    alive: args.boolean(n.alive, 'now.alive'),
    startTime: args.string(n.startTime, 'now.startTime', { nonEmpty: false, maxBytes: 20 }),
  }
  record = { pid, ...(recorded === undefined ? {} : { startTime: recorded }), capabilities: [] }
  if (!now.alive) return { identity: 'absent', pid, why: 'process is gone' }
  if (record.startTime === undefined) return { identity: 'legacy', pid, why: 'no start-time fingerprint; pid is alive' }
  if (now.startTime === '') {
    return platform === 'linux'
      ? { identity: 'absent', pid, why: 'process is gone' }
      : { identity: 'legacy', pid, why: 'the start time of a live pid could not be read; pid is alive' }
  }
  if (!sameStartTime(now.startTime, record.startTime)) {
    return { identity: 'absent', pid, why: `pid ${pid} was reused (start time ${now.startTime}, recorded ${record.startTime})` }
  }
  return { identity: 'verified', pid, why: 'alive, same start time' }
}

/** The identity a pid file's contents (as the core read them) establish. */
export function identityOfRead (read: NativePid, file: string): ProcessIdentity {
  if (read.text === null) return { identity: 'absent', why: 'no pid file' }
  let record: PidRecord
  try {
    record = parsePidFile(read.text, file)
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return { identity: 'absent', why: 'the pid file is malformed', error: e }
  }
  return judgeIdentity(record, read.pid === record.pid ? read : { alive: false, startTime: '' })
}

function placeOf (file: string): FilePlace {
  const [dir, name] = splitLast(args.path(file, 'file'))
  return { dir: [dir, ''], name }
}

/** The @internal place a BoxLayout gives its pid file, checked like a caller's. */
function checkPlace (place: unknown): FilePlace {
  const p = args.options(place, 'place', ['dir', 'name'])
  return {
    dir: args.dirRef(p.dir, 'place.dir'),
    name: args.string(p.name, 'place.name'),
  }
}

/** A pid file: a box's shim.pid (BoxLayout.pidFile) or any file in the same format. */
export class PidFile {
  readonly path: string
  readonly #place: FilePlace

  constructor (file: string, place?: FilePlace) {
    this.#place = place === undefined ? placeOf(file) : checkPlace(place)
    this.path = args.path(file, 'file')
  }

  #write (pid: number, capabilities: string[]): NativeCall<PidRecord> {
    args.integer(pid, 'pid', 1, PID_MAX)
    let room = PID_FILE_CAP - PID_LINES_BYTES
    const caps = args.array(capabilities, 'capabilities').map((c, i) => {
      const cap = args.string(c, `capabilities[${i}]`, { maxBytes: room })
      if (/[\n\r]/.test(cap)) throw args.refuse(`capabilities[${i}]`, 'one line (no CR or LF)', cap)
      room -= Buffer.byteLength(cap) + 1
      if (room < 0) {
        throw args.refuse('capabilities', `at most ${PID_FILE_CAP - PID_LINES_BYTES} bytes in all`, capabilities,
          `A longer ${this.path} would be refused by every reader (they read ${PID_FILE_CAP} bytes at most)`)
      }
      return cap
    })
    return nativeCall('pidWrite', [...this.#place.dir, this.#place.name, pid, caps],
      { doing: `cannot write the pid file ${this.path}`, enoent: 'not-prepared', hints: { 'not-prepared': 'prepare() the box first (it makes the directory)' } },
      (startTime) => ({ pid, ...(startTime === '' ? {} : { startTime }), capabilities: [...caps] }))
  }

  /** Write pid (default: this process) with its start-time fingerprint, atomically. */
  write (pid: number = process.pid, capabilities: string[] = []): Promise<PidRecord> { return promiseOf(() => this.#write(pid, capabilities)) }
  writeSync (pid: number = process.pid, capabilities: string[] = []): PidRecord { return this.#write(pid, capabilities).sync() }

  #read<R> (shape: (read: NativePid, file: string) => R): NativeCall<R> {
    const file = this.path
    return nativeCall('pidRead', [...this.#place.dir, this.#place.name], { doing: `cannot read the pid file ${file}` }, (r) => shape(r, file))
  }

  /** The record, or null when there is no file; EINVAL (malformed-record) if it does not parse. */
  read (): Promise<PidRecord | null> { return promiseOf(() => this.#read(recordOf)) }
  readSync (): PidRecord | null { return this.#read(recordOf).sync() }

  /** verified (alive, same start time) | legacy (alive, no fingerprint) | absent. */
  identity (): Promise<ProcessIdentity> { return promiseOf(() => this.#read(identityOfRead)) }
  identitySync (): ProcessIdentity { return this.#read(identityOfRead).sync() }

  #remove (): NativeCall<boolean> {
    return nativeCall('fileRemove', [...this.#place.dir, this.#place.name], { doing: `cannot remove the pid file ${this.path}` })
  }

  /** Remove the file; false when there was none. */
  remove (): Promise<boolean> { return promiseOf(() => this.#remove()) }
  removeSync (): boolean { return this.#remove().sync() }
}

function recordOf (read: NativePid, file: string): PidRecord | null {
  return read.text === null ? null : parsePidFile(read.text, file)
}
