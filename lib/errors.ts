// One error class for the whole package, shaped like Node's fs errors:
// code, errno (negative, as Node reports it), syscall, path, dest, plus a
// typed `reason` and a message that says what happened and what to do.
// Native code returns the facts (errno, syscall, paths, reason); this file
// is where they become the error a person reads. See docs/design.md#errors.
import os from 'node:os'
import { types } from 'node:util'

/**
 * Why an operation failed, beyond the errno. Stable: scripts may switch on
 * it. `syscall-failed` is a plain syscall failure that errno and syscall
 * describe completely.
 */
export type LayoutErrorReason =
  | 'invalid-argument'        // ERR_INVALID_ARG: bad input, refused before touching the disk
  | 'unsupported-platform'    // ERR_UNSUPPORTED_PLATFORM
  | 'addon-missing'           // ERR_ADDON_NOT_FOUND
  | 'syscall-failed'          // errno and syscall say it all
  | 'symlink'                 // ELOOP: a symlink where a real directory or file must be
  | 'not-a-directory'         // ENOTDIR
  | 'not-a-regular-file'      // EINVAL (EISDIR for a directory): a FIFO, device or socket
  | 'hard-linked'             // EMLINK: a file with more than one link
  | 'too-large'               // EFBIG: over the size a record can have
  | 'foreign-owner'           // EPERM: owned by another uid
  | 'loose-mode'              // EPERM: writable by group or others
  | 'removed-while-waiting'   // ENOENT: the box or lock went away while we waited for its lock
  | 'replaced-while-waiting'  // ESTALE: another one took its name while we waited
  | 'runtime-locked'          // EBUSY: another runtime holds the home
  | 'box-busy'                // EBUSY: gc found a box locked and left it alone
  | 'not-allocated'           // ENOENT: a lock id without its file
  | 'deadlock'                // EDEADLK: waiting for a lock this manager holds
  | 'ids-exhausted'           // EAGAIN: every lock id is taken
  | 'different-filesystems'   // EXDEV: tmp, bases and images/disk-images on different filesystems
  | 'mount-in-the-way'        // EBUSY: a mount could not be detached; nothing below it was touched
  | 'not-prepared'            // ENOENT: a directory prepare() makes is missing
  | 'not-isolated'            // EINVAL: mountShared() on a box that does not isolate mounts
  | 'shared-not-empty'        // ENOTEMPTY: shared/ holds files a mount would hide
  | 'shared-occupied'         // EEXIST: a file or a foreign symlink at shared/
  | 'shared-wrong-mount'      // EBUSY: shared/ is a mount, but not of mounts/ read-only
  | 'read-only-impossible'    // EPERM/ENOTSUP: require: 'read-only' and no privilege to mount
  | 'no-reflink'              // ENOTSUP/EXDEV: clone mode 'force' where no clone is possible
  | 'link-occupied'           // EEXIST: something other than a symlink at /tmp/bl-{uid}/{id}
  | 'socket-path-too-long'    // ENAMETOOLONG: a socket path over sun_path
  | 'malformed-record'        // EINVAL: a pid file or exit record that does not parse
  | 'backing-chain'           // ELOOP/EINVAL: a qcow2 backing chain that loops or is too deep
  | 'tree-moved'              // EAGAIN: a directory moved while it was being removed
  | 'unsupported'             // ENOTSUP: not on this platform
  | 'jail-failed'             // ERR_JAIL_FAILED: the jail (bwrap) ended before it started the shim
  | 'case-collision'          // EEXIST: the id and another box differ only in case, on a filesystem that folds case
  | 'shim-alive'              // EBUSY: cleanup() of a box whose shim runs (verified by its fingerprint)
  | 'checksum-mismatch'       // EIO: a boot generation's file differs from the checksum current.json records

/**
 * Every errno this package can surface, by name. A syscall's errno outside
 * this list (none is expected) comes through as ERR_UNKNOWN_ERRNO, with the
 * number kept in `errno` and the syscall in `syscall`. EOPNOTSUPP is
 * reported as ENOTSUP and EWOULDBLOCK as EAGAIN (the same numbers on Linux).
 */
export const ERRNO_CODES = [
  'EACCES', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EAGAIN', 'EBADF', 'EBUSY', 'ECONNREFUSED', 'ECONNRESET',
  'EDEADLK', 'EDQUOT', 'EEXIST', 'EFAULT', 'EFBIG', 'EINTR', 'EINVAL', 'EIO', 'EISDIR', 'ELOOP', 'EMFILE',
  'EMLINK', 'ENAMETOOLONG', 'ENFILE', 'ENODEV', 'ENOENT', 'ENOMEM', 'ENOSPC', 'ENOSYS', 'ENOTCONN',
  'ENOTDIR', 'ENOTEMPTY', 'ENOTSOCK', 'ENOTSUP', 'ENXIO', 'EOVERFLOW', 'EPERM', 'EPIPE', 'EPROTOTYPE',
  'ERANGE', 'EROFS', 'ESRCH', 'ESTALE', 'ETIMEDOUT', 'ETXTBSY', 'EXDEV',
] as const

/** An errno name from ERRNO_CODES. */
export type ErrnoCode = typeof ERRNO_CODES[number]

/**
 * Every code a LayoutError can carry: a closed union, so a typo such as
 * `e.code === 'EBSY'` does not compile.
 */
export type LayoutErrorCode =
  | 'ERR_INVALID_ARG' | 'ERR_UNSUPPORTED_PLATFORM' | 'ERR_ADDON_NOT_FOUND'
  | 'ERR_JAIL_FAILED' // the jail (bwrap) ended before it started the shim
  | 'ERR_UNKNOWN_ERRNO' // an errno outside ERRNO_CODES; see errno
  | ErrnoCode

export interface LayoutErrorInit {
  code: LayoutErrorCode
  reason: LayoutErrorReason
  message: string
  errno?: number
  syscall?: string
  path?: string
  dest?: string
  cause?: unknown
}

export class LayoutError extends Error {
  /** `EXDEV`, `EROFS`, `EBUSY`, … or `ERR_INVALID_ARG` for bad input. */
  readonly code: LayoutErrorCode
  /** Why, beyond the errno: a documented string (see LayoutErrorReason). */
  readonly reason: LayoutErrorReason
  /** Negative errno, as in Node's fs errors; absent for ERR_* codes. */
  readonly errno?: number
  readonly syscall?: string
  readonly path?: string
  readonly dest?: string

  constructor (init: LayoutErrorInit) {
    init = checkInit(init)
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'LayoutError'
    this.code = init.code
    this.reason = init.reason
    if (init.errno !== undefined) this.errno = init.errno
    if (init.syscall !== undefined) this.syscall = init.syscall
    if (init.path !== undefined) this.path = init.path
    if (init.dest !== undefined) this.dest = init.dest
  }
}

// Argument checks (re-exported by args.ts, which adds the rest): one message
// style, the argument named, nothing run of the caller's but the getters we
// must read. They live here because a LayoutError checks its own init with
// them and a refused argument is a LayoutError.

/** The longest path a syscall takes, NUL excluded (PATH_MAX - 1). */
export const PATH_BYTES_MAX = process.platform === 'darwin' ? 1023 : 4095

/**
 * What a value is, for a message: never calls the caller's code (no
 * toString, toJSON, getters or proxy traps), never throws, never quotes
 * more than 40 characters.
 */
export function describe (value: unknown): string {
  switch (typeof value) {
    case 'string': {
      const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
      return `${shown} (${Buffer.byteLength(value)} bytes)`
    }
    case 'number': return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint': return `a bigint (${value.toString().slice(0, 40)}n)`
    case 'boolean': return String(value)
    case 'undefined': return 'undefined'
    case 'symbol': return 'a symbol'
    case 'function': return 'a function'
    default:
      if (value === null) return 'null'
      try {
        if (Array.isArray(value)) return 'an array'
        // Internal slots only: instanceof would run a proxy's getPrototypeOf trap.
        if (types.isUint8Array(value)) return 'a Uint8Array'
        if (types.isProxy(value)) return 'a proxy'
      } catch {
        return 'a revoked proxy'
      }
      return 'an object'
  }
}

/** ERR_INVALID_ARG naming the argument: `"name" must be <expected>; got <value>[. why]`. */
export function refuse (name: string, expected: string, value: unknown, why?: string, cause?: unknown): LayoutError {
  return new LayoutError({
    code: 'ERR_INVALID_ARG',
    reason: 'invalid-argument',
    message: `ERR_INVALID_ARG: "${name}" must be ${expected}; got ${describe(value)}${why === undefined ? '' : `. ${why}`}`,
    ...(cause === undefined ? {} : { cause }),
  })
}

/**
 * obj[key], with a throwing getter or proxy trap refused as the argument
 * `${owner}.${key}` (`${owner}[${key}]` for an index): the name is spelled
 * out only then.
 */
function read (obj: object, key: PropertyKey, owner: string, index = false): unknown {
  try {
    return (obj as Record<PropertyKey, unknown>)[key]
  } catch (e) {
    const name = index ? `${owner}[${String(key)}]` : `${owner}.${String(key)}`
    throw new LayoutError({
      code: 'ERR_INVALID_ARG',
      reason: 'invalid-argument',
      message: `ERR_INVALID_ARG: "${name}" could not be read: its getter threw (see cause)`,
      cause: e,
    })
  }
}

function isArray (value: unknown, name: string): boolean {
  try {
    return Array.isArray(value)
  } catch (e) {
    throw refuse(name, 'an array', value, undefined, e)
  }
}

/**
 * An options object copied into a plain one, each known key read once;
 * undefined is {} (every default). Unknown keys are ignored, as Node does.
 */
export function options<K extends PropertyKey> (value: unknown, name: string, keys: readonly K[]): Partial<Record<K, unknown>> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || isArray(value, name)) throw refuse(name, 'an object', value)
  const out: Partial<Record<K, unknown>> = {}
  for (const key of keys) {
    const v = read(value, key, name)
    if (v !== undefined) out[key] = v
  }
  return out
}

/**
 * A plain copy of a record's own enumerable string keys and their values
 * (e.g. an env), each read once; a proxy is refused unrun.
 */
export function entries (value: unknown, name: string, { max = 0x10000 } = {}): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || isArray(value, name) || types.isProxy(value)) throw refuse(name, 'an object', value)
  const keys = Object.keys(value)
  if (keys.length > max) throw refuse(name, `an object of at most ${max} entries`, value)
  return keys.map((k) => [k, read(value, k, name)])
}

/** A plain copy of an array, each element read once. */
export function array (value: unknown, name: string, { nonEmpty = false, max = 0x10000 } = {}): unknown[] {
  if (!isArray(value, name)) throw refuse(name, nonEmpty ? 'a non-empty array' : 'an array', value)
  const length = read(value as object, 'length', name) as number
  if (nonEmpty && length === 0) throw refuse(name, 'a non-empty array', value)
  if (length > max) throw refuse(name, `an array of at most ${max} entries`, value)
  const out: unknown[] = []
  for (let i = 0; i < length; i++) out.push(read(value as object, i, name, true))
  return out
}

export interface StringRules {
  /** Default true. */
  nonEmpty?: boolean
  /** Bytes as UTF-8; default PATH_BYTES_MAX. */
  maxBytes?: number
  /**
   * Text to parse, not a name: NUL and lone surrogates are the parser's
   * to judge (malformed), not the caller's mistake. Default false.
   */
  text?: boolean
  /** What the message says the argument must be (default: the rules spelled out). */
  expected?: string
  /** Appended to the message: why the rule exists. */
  why?: string
}

// In a /u regex a surrogate pair is one code point: only a lone half matches.
const LONE_SURROGATE = /\p{Cs}/u

/** A string the native side gets unchanged: well-formed Unicode, no NUL, bounded. */
export function string (value: unknown, name: string, rules: StringRules = NO_RULES): string {
  // Read field by field, the message built only on refusal: this runs on
  // every path of every call.
  const nonEmpty = rules.nonEmpty ?? true
  const maxBytes = rules.maxBytes ?? PATH_BYTES_MAX
  const text = rules.text ?? false
  if (typeof value !== 'string') throw refuse(name, expectedString(rules), value, rules.why)
  if (nonEmpty && value === '') throw refuse(name, expectedString(rules), value, rules.why)
  if (!text && value.includes('\0')) throw refuse(name, expectedString(rules), value, 'A NUL byte would cut it short in a syscall')
  // Cheap bounds first: UTF-8 takes at least one byte and at most three per
  // UTF-16 unit, so only a string between the two needs counting.
  if (value.length > maxBytes || (value.length * 3 > maxBytes && Buffer.byteLength(value) > maxBytes)) {
    throw refuse(name, expectedString(rules), value, rules.why)
  }
  if (!text && LONE_SURROGATE.test(value)) {
    throw refuse(name, 'well-formed Unicode', value, 'A lone surrogate would become U+FFFD in UTF-8: another name than the one given')
  }
  return value
}

const NO_RULES: StringRules = {}

/** What string() says a value must be, for its message. */
function expectedString (rules: StringRules): string {
  const { nonEmpty = true, maxBytes = PATH_BYTES_MAX, text = false } = rules
  return rules.expected ?? `a${nonEmpty ? ' non-empty' : ''} string${text ? '' : ' without NUL'} of at most ${maxBytes} bytes`
}

/** An integer in min..max (a safe integer; no NaN, Infinity, fraction or bigint). */
export function integer (value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw refuse(name, `an integer in ${min}..${max}`, value)
  }
  return value
}

/** init read once and checked: a LayoutError must not hide a TypeError of its own. */
function checkInit (init: unknown): LayoutErrorInit {
  const i = options(init, 'init', ['code', 'reason', 'message', 'errno', 'syscall', 'path', 'dest', 'cause'])
  const text = (key: 'message' | 'syscall' | 'path' | 'dest'): string =>
    string(i[key], `init.${key}`, { nonEmpty: key === 'message', text: true, maxBytes: 65536 })
  return {
    code: string(i.code, 'init.code', { maxBytes: 64 }) as LayoutErrorCode,
    reason: string(i.reason, 'init.reason', { maxBytes: 64 }) as LayoutErrorReason,
    message: text('message'),
    ...(i.errno === undefined ? {} : { errno: integer(i.errno, 'init.errno', -(2 ** 31), 2 ** 31 - 1) }),
    ...(i.syscall === undefined ? {} : { syscall: text('syscall') }),
    ...(i.path === undefined ? {} : { path: text('path') }),
    ...(i.dest === undefined ? {} : { dest: text('dest') }),
    ...(i.cause === undefined ? {} : { cause: i.cause }),
  }
}

/** The fields the native binding puts on the errors it returns. */
export interface NativeErrorFields {
  nativeError: true
  errno: number
  syscall?: string
  reason?: LayoutErrorReason
  path?: string
  dest?: string
  /** What the reason is about: an owner uid, a mode, a holder pid. */
  value?: number
}

export function isNativeError (e: unknown): e is NativeErrorFields {
  return typeof e === 'object' && e !== null && (e as { nativeError?: unknown }).nativeError === true
}

const DESCRIPTIONS: Record<string, string> = {
  EACCES: 'permission denied',
  EAGAIN: 'resource temporarily unavailable',
  EBUSY: 'resource busy',
  EEXIST: 'file already exists',
  EFBIG: 'file too large',
  EINVAL: 'invalid argument',
  EISDIR: 'is a directory',
  ELOOP: 'is a symbolic link',
  EMFILE: 'too many open files',
  EMLINK: 'too many links',
  ENAMETOOLONG: 'name too long',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  ENOSYS: 'function not implemented by this kernel',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  ENOTSUP: 'operation not supported',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ESTALE: 'stale: replaced meanwhile',
  EXDEV: 'cross-device link not permitted',
}

/** What a person can do about an errno, when nothing more specific applies. */
const ERRNO_HINTS: Record<string, string> = {
  EACCES: 'check the ownership and mode of the path, or run as a user that may write it',
  EPERM: 'this needs privilege (root, or CAP_SYS_ADMIN for mounts)',
  ENOSPC: 'free space on the filesystem holding the path',
  EROFS: 'the path is on a read-only mount; write through the writable side instead',
  EMFILE: 'raise the open-file limit (ulimit -n)',
}

function modeText (mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

/** What a reason means for the path it names, and what to do. */
function describeReason (e: NativeErrorFields): { what: string, hint?: string } | undefined {
  const p = e.path ?? 'the path'
  switch (e.reason) {
    case 'symlink':
      return {
        what: `${p} is a symlink where a real directory or file must be (this package never follows one inside a home or box)`,
        hint: 'find out who made it, then remove it',
      }
    case 'not-a-directory':
      return { what: `${p} is not a directory`, hint: 'remove what is there' }
    case 'not-a-regular-file':
      return {
        what: `${p} is not a regular file (a FIFO, device, socket or directory), so it was neither read nor written`,
        hint: 'remove it',
      }
    case 'hard-linked':
      return { what: `${p} has ${e.value ?? 'several'} hard links; writing it would change the other names too`, hint: 'remove it' }
    case 'too-large':
      return { what: `${p} is larger than the ${e.value ?? ''} bytes such a file holds, so it is not one this package wrote` }
    case 'foreign-owner':
      return {
        what: `${p} is owned by uid ${e.value ?? '?'} (this process runs as uid ${process.getuid?.() ?? '?'}), so that user could redirect what is done inside it`,
        hint: 'chown it to the user that runs BoxLite (or root), or use another BOXLITE_HOME',
      }
    case 'loose-mode':
      return {
        what: `${p} has mode ${e.value === undefined ? '?' : modeText(e.value)}: group or others can write it, so they could swap what is inside`,
        hint: 'run `boxlite-layout prepare` (or prepare()) as its owner to tighten it, or `chmod go-w` it',
      }
    case 'removed-while-waiting':
      return { what: `${p} was removed while we waited for its lock`, hint: 'retry' }
    case 'replaced-while-waiting':
      return { what: `${p} was removed and made again while we waited for its lock`, hint: 'retry' }
    case 'runtime-locked':
      if (e.value === process.pid) {
        return {
          what: `this process already holds the runtime lock of ${e.path === undefined ? 'the home' : e.path.replace(/\/?\.lock$/, '')}, so taking it again would wait on itself`,
          hint: 'pass the RuntimeLock you hold, e.g. home.gc({ runtimeLock })',
        }
      }
      return {
        what: `another BoxLite runtime${e.value === undefined ? '' : ` (pid ${e.value})`} holds the home ${e.path === undefined ? '' : e.path.replace(/\/?\.lock$/, '')}`,
        hint: 'stop it, or use a different BOXLITE_HOME',
      }
    case 'box-busy':
      return { what: `${p} is locked by another process (a runtime or jailer script is working on it)`, hint: 'retry later' }
    case 'not-allocated':
      return { what: `${p} does not exist: that lock id is not allocated`, hint: 'allocate() it first' }
    case 'ids-exhausted':
      return { what: `every lock id in ${p} is taken` }
    case 'mount-in-the-way':
      return {
        what: `${p} is a mount that could not be detached${e.value === undefined ? '' : ` (${codeForErrno(e.value)})`}, so nothing below it was touched`,
        hint: 'unmount it as root, then run `boxlite-layout gc`',
      }
    case 'not-prepared':
      return { what: `${p} does not exist`, hint: 'prepare it first' }
    case 'shared-not-empty':
      return {
        what: `${p} holds files, so mounting over it would hide them; it was probably written by a layout without isolateMounts, where the host writes shared/ directly`,
        hint: 'move its contents into mounts/ or clean the box up',
      }
    case 'shared-occupied':
      return { what: `${p} is a file or a symlink that does not point at mounts/`, hint: 'remove it and retry' }
    case 'shared-wrong-mount':
      return {
        what: `${p} is already a mount, but ${e.value === 1 ? 'a writable one' : 'not of mounts/'}`,
        hint: 'run unmountShared() (or `boxlite-layout gc`) and mount again',
      }
    case 'read-only-impossible':
      return {
        what: `a read-only shared mount is not possible here (${e.syscall ?? 'mount'}: ${codeForErrno(e.errno)}), and require: 'read-only' refuses the symlink fallback, which would let the guest write mounts/`,
        hint: process.platform === 'linux'
          ? 'run as root, or with CAP_SYS_ADMIN in a user+mount namespace (unshare -Urm)'
          : 'this platform has no bind mounts',
      }
    case 'no-reflink':
      return {
        what: e.errno === os.constants.errno.EXDEV
          ? 'source and destination are on different filesystems, where no clone is possible'
          : 'this filesystem cannot reflink (ext4, tmpfs, …)',
        hint: "use mode 'auto' to copy instead, or put both files on XFS (reflink=1), btrfs or APFS",
      }
    case 'link-occupied':
      return {
        what: `something other than a symlink occupies ${e.dest ?? p}; this package only ever puts symlinks there`,
        hint: 'remove it after checking what it is',
      }
    case 'backing-chain':
      return {
        what: `the backing chain of ${p} ${Math.abs(e.errno) === os.constants.errno.ELOOP ? 'loops' : 'is malformed or deeper than 16 images'}${e.dest === undefined ? '' : `: ${e.dest}`}`,
        hint: 'rebuild the image or fix its backing file name (qemu-img rebase)',
      }
    case 'shim-alive':
      return {
        what: `its shim is alive (pid ${e.value ?? '?'} in ${p}, with the recorded start time or none recorded), and removing the box would pull its disks and sockets from under it`,
        hint: 'stop the shim first, or pass { force: true } (CLI: --force) to remove it anyway',
      }
    case 'tree-moved':
      return { what: `${p} was moved while it was being removed`, hint: 'retry' }
    case 'unsupported':
      return { what: `${e.syscall ?? 'this operation'} is not supported on this platform` }
    case 'case-collision':
      return {
        what: `${p} and ${e.dest ?? 'another box'} differ only in letter case, and this filesystem folds case, so they would be one directory: nothing was done to either`,
        hint: 'use box ids that differ in more than case, or put BOXLITE_HOME on a case-sensitive volume',
      }
    default:
      return undefined
  }
}

// errno number -> name, from this platform's own table (libuv's map lacks
// some, ESTALE among them).
const ERRNO_NAMES = new Map<number, string>()
for (const [name, value] of Object.entries(os.constants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name)
}
ERRNO_NAMES.set(os.constants.errno.ENOTSUP, 'ENOTSUP') // == EOPNOTSUPP on Linux

const KNOWN_ERRNO_CODES: ReadonlySet<string> = new Set(ERRNO_CODES)
ERRNO_NAMES.set(os.constants.errno.EAGAIN, 'EAGAIN') // == EWOULDBLOCK

export function codeForErrno (errno: number): LayoutErrorCode {
  const name = ERRNO_NAMES.get(Math.abs(errno))
  return name !== undefined && KNOWN_ERRNO_CODES.has(name) ? name as ErrnoCode : 'ERR_UNKNOWN_ERRNO'
}

function where (e: { syscall?: string | undefined, path?: string | undefined, dest?: string | undefined }): string {
  let out = e.syscall ?? ''
  if (e.path !== undefined) out += ` '${e.path}'`
  if (e.dest !== undefined) out += ` -> '${e.dest}'`
  return out.trim()
}

export interface ErrorContext {
  /** What we were doing, e.g. "cannot prepare box X". */
  doing?: string
  /** A better hint for a reason or a code than the generic one. */
  hints?: Partial<Record<LayoutErrorReason | LayoutErrorCode, string>>
  /** The reason a plain ENOENT gets (e.g. not-prepared where prepare() makes the directory). */
  enoent?: LayoutErrorReason
}

/** The public error for a native error value (anything else passes through). */
export function toLayoutError (e: unknown, ctx: ErrorContext = {}): unknown {
  if (!isNativeError(e)) return e
  const code = codeForErrno(e.errno)
  const reason: LayoutErrorReason = e.reason ?? (code === 'ENOENT' && ctx.enoent !== undefined ? ctx.enoent : 'syscall-failed')
  const described = describeReason({ ...e, reason })
  const head = ctx.doing === undefined ? '' : `${ctx.doing}: `
  const hint = ctx.hints?.[reason] ?? ctx.hints?.[code] ?? described?.hint ?? ERRNO_HINTS[code]
  const body = described === undefined
    ? `${DESCRIPTIONS[code] ?? (code === 'ERR_UNKNOWN_ERRNO' ? `errno ${Math.abs(e.errno)}` : code.toLowerCase())}${where(e) === '' ? '' : `, ${where(e)}`}`
    : `${described.what}${e.syscall === undefined ? '' : ` (${e.syscall})`}`
  return new LayoutError({
    code,
    reason,
    message: `${code}: ${head}${body}${hint === undefined ? '' : `; ${hint}`}`,
    errno: -Math.abs(e.errno),
    ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
    ...(e.path === undefined ? {} : { path: e.path }),
    ...(e.dest === undefined ? {} : { dest: e.dest }),
  })
}

/** An error of ours with an errno-style code (not from a syscall). */
export function layoutError (
  code: LayoutErrorCode, reason: LayoutErrorReason, message: string,
  fields: Partial<Omit<LayoutErrorInit, 'code' | 'reason' | 'message'>> = {}
): LayoutError {
  const errno = code.startsWith('ERR_') ? undefined : errnoForCode(code)
  return new LayoutError({ ...fields, code, reason, message: `${code}: ${message}`, ...(errno === undefined ? {} : { errno }) })
}

/** Bad input from the caller: ERR_INVALID_ARG, nothing touched on disk. */
export function invalidArg (message: string): LayoutError {
  return new LayoutError({ code: 'ERR_INVALID_ARG', reason: 'invalid-argument', message: `ERR_INVALID_ARG: ${message}` })
}

/** Node's own fs and net errors (from listenUnix and the like), re-labelled. */
export function fromNodeError (e: unknown, ctx: ErrorContext = {}): unknown {
  if (!(e instanceof Error) || typeof (e as NodeJS.ErrnoException).errno !== 'number') return e
  const ne = e as NodeJS.ErrnoException & { dest?: string }
  return toLayoutError({
    nativeError: true,
    errno: Math.abs(ne.errno!),
    ...(ne.syscall === undefined ? {} : { syscall: ne.syscall }),
    ...(ne.path === undefined ? {} : { path: ne.path }),
    ...(ne.dest === undefined ? {} : { dest: ne.dest }),
  }, ctx)
}

function errnoForCode (code: string): number | undefined {
  const value = (os.constants.errno as Record<string, number | undefined>)[code]
  return value === undefined ? undefined : -value
}
