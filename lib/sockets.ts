// BoxSockets (SPEC §4): where a box's Unix sockets are bound. Sockets live
// in the box's real sockets/ dir but are bound through a short symlink,
// /tmp/bl-{uid}/{box_id}, so the path handed to bind() fits sun_path even for
// a deep home. Computing paths never touches the disk.
import path from 'node:path'
import { invalidArg, layoutError } from './errors.ts'
import { validateBoxId } from './ids.ts'
import { nativeOp, perform, runAsync, runSync, type Plan } from './native.ts'

/**
 * The bound every binding path is held to, in bytes including the NUL:
 * macOS's sun_path (104), the smaller of the two platforms, so a layout
 * that works on Linux also works on macOS. libkrun derives the longest
 * name, `net.sock-krun.sock`, from `net.sock`.
 */
export const SOCKET_PATH_LIMIT = 104

/** sun_path size of this platform, NUL included. */
export const SUN_PATH_MAX = process.platform === 'darwin' ? 104 : 108

export const SocketNames = {
  BOX: 'box.sock',
  READY: 'ready.sock',
  NET: 'net.sock',
  NET_KRUN: 'net.sock-krun.sock',
} as const

export interface PolicyPath {
  path: string
  access: 'rw' | 'ro'
}

export interface EnsureResult {
  /** What happened to the link: made, already right, or re-pointed. */
  link: 'created' | 'kept' | 'replaced'
  /** /tmp/bl-{uid} had a looser mode and was set back to 0700. */
  modeRepaired: boolean
  /** For 'replaced': where the stale link pointed. */
  previousTarget?: string
}

export function currentUid (): number {
  if (typeof process.getuid !== 'function') throw invalidArg('BoxSockets needs a POSIX uid (process.getuid)')
  return process.getuid()
}

/** The per-user directory of binding links: /tmp/bl-{uid} (literally /tmp). */
export function socketLinkParent (uid: number = currentUid()): string {
  return `/tmp/bl-${uid}`
}

export class BoxSockets {
  readonly boxId: string
  /** The real sockets/ directory of the box (where socket inodes live). */
  readonly realDir: string
  readonly uid: number
  /** /tmp/bl-{uid}: private to the user, 0700. */
  readonly parentDir: string
  /** /tmp/bl-{uid}/{box_id}: the symlink to realDir that sockets bind through. */
  readonly bindingDir: string
  readonly boxSock: string
  readonly readySock: string
  readonly netSock: string
  readonly netKrunSock: string

  constructor (boxId: string, realSocketsDir: string, options: { uid?: number } = {}) {
    this.boxId = validateBoxId(boxId)
    if (typeof realSocketsDir !== 'string' || !path.isAbsolute(realSocketsDir)) {
      throw invalidArg(`the real sockets dir must be an absolute path; got ${JSON.stringify(realSocketsDir)}`)
    }
    this.realDir = realSocketsDir
    this.uid = options.uid ?? currentUid()
    this.parentDir = socketLinkParent(this.uid)
    this.bindingDir = `${this.parentDir}/${this.boxId}`
    this.boxSock = `${this.bindingDir}/${SocketNames.BOX}`
    this.readySock = `${this.bindingDir}/${SocketNames.READY}`
    this.netSock = `${this.bindingDir}/${SocketNames.NET}`
    this.netKrunSock = `${this.bindingDir}/${SocketNames.NET_KRUN}`
  }

  /** Bytes to spare before the longest binding path hits the limit (< 0: too long). */
  headroom (): number {
    return SOCKET_PATH_LIMIT - 1 - Buffer.byteLength(this.netKrunSock)
  }

  /** The paths a sandbox profile must grant for this box's sockets. */
  policyPaths (): PolicyPath[] {
    return [
      { path: this.realDir, access: 'rw' },
      { path: this.bindingDir, access: 'rw' },
      { path: this.parentDir, access: 'ro' },
    ]
  }

  /** Throws ENAMETOOLONG when the longest binding path would not fit. */
  checkLength (): void {
    if (this.headroom() >= 0) return
    throw layoutError('ENAMETOOLONG',
      `socket path ${this.netKrunSock} is ${Buffer.byteLength(this.netKrunSock)} bytes; ` +
      `it must stay under ${SOCKET_PATH_LIMIT} (sun_path) or libkrun's bind fails and the box hangs. ` +
      `Use a shorter box id (at most ${Buffer.byteLength(this.boxId) + this.headroom()} bytes for uid ${this.uid})`,
      { path: this.netKrunSock, syscall: 'bind' })
  }

  * ensurePlan (): Plan<EnsureResult> {
    this.checkLength()
    const r = yield * perform(nativeOp('socketLinkEnsure', [this.parentDir, this.uid, this.boxId, this.realDir], {
      doing: `cannot set up the socket link ${this.bindingDir}`,
      hints: {
        ELOOP: `${this.parentDir} is a symlink, which could redirect every box's sockets; ` +
          'find out who created it, remove it, and retry',
        ENOTDIR: `${this.parentDir} is not a directory; remove it and retry`,
        EPERM: `${this.parentDir} belongs to another user (it must be yours, uid ${this.uid}, mode 0700); ` +
          'someone may be squatting it: remove it as root and retry',
        EEXIST: `something other than a symlink occupies ${this.bindingDir}; this package only puts symlinks ` +
          'there, so remove it after checking what it is',
      },
    }))
    return {
      link: r.state,
      modeRepaired: r.modeRepaired,
      ...(r.state === 'replaced' ? { previousTarget: r.previousTarget } : {}),
    }
  }

  * removePlan (): Plan<boolean> {
    return yield * perform(nativeOp('socketLinkRemove', [this.parentDir, this.boxId, this.realDir], {
      doing: `cannot remove the socket link ${this.bindingDir}`,
    }))
  }

  /**
   * Make bindingDir a symlink to realDir: creates /tmp/bl-{uid} (0700) if
   * needed, refuses a squatted one, replaces a stale link, tolerates a
   * concurrent creator. Must run before anything binds.
   */
  ensure (): Promise<EnsureResult> {
    return runAsync(this.ensurePlan())
  }

  ensureSync (): EnsureResult {
    return runSync(this.ensurePlan())
  }

  /** Remove the link if it is ours (points at realDir). Idempotent. */
  remove (): Promise<boolean> {
    return runAsync(this.removePlan())
  }

  removeSync (): boolean {
    return runSync(this.removePlan())
  }

  /** Unlink every dangling link in /tmp/bl-{uid}; returns the box ids removed. */
  static sweepStale (uid: number = currentUid()): Promise<string[]> {
    return runAsync(sweepPlan(uid))
  }

  static sweepStaleSync (uid: number = currentUid()): string[] {
    return runSync(sweepPlan(uid))
  }
}

function * sweepPlan (uid: number): Plan<string[]> {
  return yield * perform(nativeOp('sweepDanglingLinks', [socketLinkParent(uid), uid], {
    doing: 'cannot sweep stale socket links',
  }))
}
