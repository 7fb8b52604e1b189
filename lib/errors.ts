// One error class for the whole package, shaped like Node's fs errors
// (SPEC §7): code, errno (negative, as Node reports it), syscall, path, dest,
// and a message that says what happened and what to do about it.
import os from 'node:os'
import util from 'node:util'

export interface LayoutErrorInit {
  code: string
  message: string
  errno?: number
  syscall?: string
  path?: string
  dest?: string
  detail?: string
  cause?: unknown
}

export class LayoutError extends Error {
  /** `EXDEV`, `EROFS`, `EBUSY`, … or `ERR_INVALID_ARG` for bad input. */
  readonly code: string
  /** Negative errno, as in Node's fs errors; absent for argument errors. */
  readonly errno?: number
  readonly syscall?: string
  readonly path?: string
  readonly dest?: string
  /** Machine-readable detail from the native side (e.g. `owner=0`). */
  readonly detail?: string

  constructor (init: LayoutErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'LayoutError'
    this.code = init.code
    if (init.errno !== undefined) this.errno = init.errno
    if (init.syscall !== undefined) this.syscall = init.syscall
    if (init.path !== undefined) this.path = init.path
    if (init.dest !== undefined) this.dest = init.dest
    if (init.detail !== undefined) this.detail = init.detail
  }
}

/** The fields the native binding puts on the errors it throws. */
export interface NativeErrorFields {
  nativeError: true
  errno: number
  syscall?: string
  path?: string
  dest?: string
  detail?: string
}

export function isNativeError (e: unknown): e is NativeErrorFields {
  return typeof e === 'object' && e !== null && (e as { nativeError?: unknown }).nativeError === true
}

const DESCRIPTIONS: Record<string, string> = {
  EACCES: 'permission denied',
  EAGAIN: 'resource temporarily unavailable',
  EBADF: 'bad file descriptor',
  EBUSY: 'resource busy',
  EEXIST: 'file already exists',
  EINVAL: 'invalid argument',
  EISDIR: 'is a directory',
  ELOOP: 'is a symbolic link',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  ENOSYS: 'function not implemented by this kernel',
  ENOTDIR: 'not a directory',
  ENOTEMPTY: 'directory not empty',
  ENOTSUP: 'operation not supported',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EXDEV: 'cross-device link not permitted',
}

/** What a person can do about an errno, when the caller has nothing better. */
const GENERIC_HINTS: Record<string, string> = {
  EACCES: 'check the ownership and mode of the path, or run as a user that may write it',
  EPERM: 'this needs privilege (root, or CAP_SYS_ADMIN for mounts)',
  ENOSPC: 'free space on the filesystem holding the path',
  EROFS: 'the path is on a read-only mount; write through the writable side instead',
  EMFILE: 'raise the open-file limit (ulimit -n)',
}

export function codeForErrno (errno: number): string {
  if (errno === 95) return 'ENOTSUP' // Linux EOPNOTSUPP == ENOTSUP
  try {
    return util.getSystemErrorName(-Math.abs(errno))
  } catch {
    return `E${errno}`
  }
}

export function describeCode (code: string): string {
  return DESCRIPTIONS[code] ?? code.toLowerCase()
}

function formatTarget (syscall?: string, path?: string, dest?: string): string {
  let out = syscall ?? ''
  if (path !== undefined) out += ` '${path}'`
  if (dest !== undefined) out += ` -> '${dest}'`
  return out.trim()
}

export interface ErrorContext {
  /** What we were doing, e.g. "cannot create the box directory". */
  doing?: string
  /** Replaces the generic hint for this code. */
  hint?: string
  /** Hints by code; checked before `hint`. */
  hints?: Record<string, string>
}

/** Build the public error from a native error (or pass others through). */
export function toLayoutError (e: unknown, ctx: ErrorContext = {}): unknown {
  if (!isNativeError(e)) return e
  const code = codeForErrno(e.errno)
  const where = formatTarget(e.syscall, e.path, e.dest)
  const hint = ctx.hints?.[code] ?? ctx.hint ?? GENERIC_HINTS[code]
  const head = ctx.doing === undefined ? describeCode(code) : `${ctx.doing}: ${describeCode(code)}`
  let message = `${code}: ${head}${where === '' ? '' : `, ${where}`}`
  if (e.detail !== undefined && e.detail !== '') message += ` (${e.detail})`
  if (hint !== undefined) message += `; ${hint}`
  return new LayoutError({
    code,
    message,
    errno: -Math.abs(e.errno),
    ...(e.syscall === undefined ? {} : { syscall: e.syscall }),
    ...(e.path === undefined ? {} : { path: e.path }),
    ...(e.dest === undefined ? {} : { dest: e.dest }),
    ...(e.detail === undefined ? {} : { detail: e.detail }),
  })
}

/** An error of ours with an errno-style code (not from a syscall). */
export function layoutError (code: string, message: string, fields: Partial<LayoutErrorInit> = {}): LayoutError {
  const errno = code.startsWith('ERR_') ? undefined : errnoForCode(code)
  return new LayoutError({ ...fields, code, message: `${code}: ${message}`, ...(errno === undefined ? {} : { errno }) })
}

/** Bad input from the caller: `ERR_INVALID_ARG`, nothing touched on disk. */
export function invalidArg (message: string): LayoutError {
  return new LayoutError({ code: 'ERR_INVALID_ARG', message: `ERR_INVALID_ARG: ${message}` })
}

/** Node's fs errors (ENOENT from fs.*) are re-labelled, keeping their fields. */
export function fromNodeError (e: unknown, ctx: ErrorContext = {}): unknown {
  if (!(e instanceof Error) || typeof (e as NodeJS.ErrnoException).errno !== 'number') return e
  const ne = e as NodeJS.ErrnoException
  return toLayoutError({
    nativeError: true,
    errno: Math.abs(ne.errno!),
    ...(ne.syscall === undefined ? {} : { syscall: ne.syscall }),
    ...(ne.path === undefined ? {} : { path: ne.path }),
    ...((ne as { dest?: string }).dest === undefined ? {} : { dest: (ne as { dest?: string }).dest! }),
  }, ctx)
}

function errnoForCode (code: string): number | undefined {
  const value = (os.constants.errno as Record<string, number | undefined>)[code]
  return value === undefined ? undefined : -value
}
