// BoxSockets: where a box's Unix sockets are bound. Sockets live in the
// box's real sockets/ dir but are bound through a short symlink,
// /tmp/bl-{uid}/{box_id}, so the path handed to bind() fits sun_path even
// for a deep home. Computing paths never touches the disk.
import * as args from './args.ts'
import { invalidArg, layoutError } from './errors.ts'
import { checkId } from './ids.ts'
import { nativeCall, type LinkArgs, type NativeCall, type NativeLink } from './native.ts'

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
  /**
   * gvproxy's ServicesMux control socket (HTTP/1.1), bound by gvproxy inside
   * the shim as a sibling of net.sock. Shorter than NET_KRUN, so the length
   * rule (held to the longest name) is unchanged.
   */
  GVPROXY_CONTROL: 'gvproxy-ctl.sock',
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
  return `/tmp/bl-${checkUid(uid)}`
}

function checkUid (uid: unknown): number {
  return args.uid(uid, 'uid')
}

const LINK_HINTS = {
  symlink: 'a symlink there could redirect every box\'s sockets; find out who created it, remove it, and retry',
  'foreign-owner': 'it must be yours, mode 0700: someone may be squatting it; remove it as root and retry',
  'not-a-directory': 'remove it and retry',
}

/** The sweep of dangling links in /tmp/bl-{uid}, or just their names (reportOnly). */
export function sweepLinksCall (uid: number, reportOnly: boolean): NativeCall<string[]> {
  // The target is only compared when a link is removed by name: unused here.
  return nativeCall('socketLinksSweep', [socketLinkParent(uid), checkUid(uid), '', reportOnly],
    { doing: 'cannot sweep stale socket links', hints: LINK_HINTS })
}

/**
 * The public form of the link's outcome as the core reports it (typed by
 * the binding, held to its declaration by test/ops.test.ts): not checked again.
 */
export function linkResultOf (r: NativeLink): EnsureResult {
  const out: EnsureResult = { link: r.state, modeRepaired: r.modeRepaired }
  if (r.state === 'replaced') out.previousTarget = r.previousTarget
  return out
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
  /** libkrun's side of the network pair (net.sock-krun.sock), dialed by gvproxy. */
  readonly netKrunSock: string
  /** gvproxy's ServicesMux control socket. */
  readonly gvproxyControlSock: string

  constructor (boxId: string, realSocketsDir: string, options: { uid?: number } = {}) {
    this.boxId = checkId(boxId, 'boxId')
    this.realDir = args.path(realSocketsDir, 'realSocketsDir')
    const { uid } = args.options(options, 'options', ['uid'])
    this.uid = uid === undefined ? currentUid() : args.uid(uid, 'options.uid')
    this.parentDir = socketLinkParent(this.uid)
    this.bindingDir = `${this.parentDir}/${this.boxId}`
    this.boxSock = `${this.bindingDir}/${SocketNames.BOX}`
    this.readySock = `${this.bindingDir}/${SocketNames.READY}`
    this.netSock = `${this.bindingDir}/${SocketNames.NET}`
    this.netKrunSock = `${this.bindingDir}/${SocketNames.NET_KRUN}`
    this.gvproxyControlSock = `${this.bindingDir}/${SocketNames.GVPROXY_CONTROL}`
  }

  get #link (): LinkArgs {
    return [this.parentDir, this.uid, this.realDir]
  }

  /** Bytes to spare before the longest binding path hits the limit (< 0: too long). */
  headroom (): number {
    // Counted once: every prepare() checks it, and the paths never change.
    this.#headroom ??= SOCKET_PATH_LIMIT - 1 - Buffer.byteLength(this.netKrunSock)
    return this.#headroom
  }

  #headroom: number | undefined

  /** The paths a sandbox profile must grant for this box's sockets. */
  policyPaths (): PolicyPath[] {
    return [
      { path: this.realDir, access: 'rw' },
      { path: this.bindingDir, access: 'rw' },
      { path: this.parentDir, access: 'ro' },
    ]
  }

  /** Throws ENAMETOOLONG (socket-path-too-long) when the longest binding path would not fit. */
  checkLength (): void {
    if (this.headroom() >= 0) return
    throw layoutError('ENAMETOOLONG', 'socket-path-too-long',
      `socket path ${this.netKrunSock} is ${Buffer.byteLength(this.netKrunSock)} bytes; ` +
      `it must stay under ${SOCKET_PATH_LIMIT} (sun_path) or libkrun's bind fails and the box hangs. ` +
      `Use a shorter box id (at most ${Buffer.byteLength(this.boxId) + this.headroom()} bytes for uid ${this.uid})`,
      { path: this.netKrunSock, syscall: 'bind' })
  }

  /** The public form of what the core reports about the link. */
  ensureResult (r: NativeLink): EnsureResult {
    const o = args.options(r, 'r', ['state', 'modeRepaired', 'previousTarget'])
    const link = args.oneOf(o.state, 'r.state', ['created', 'kept', 'replaced'])
    return linkResultOf({
      state: link,
      modeRepaired: args.boolean(o.modeRepaired, 'r.modeRepaired'),
      previousTarget: link === 'replaced' ? args.string(o.previousTarget, 'r.previousTarget', { nonEmpty: false }) : '',
    })
  }

  #ensure (): NativeCall<EnsureResult> {
    this.checkLength()
    return nativeCall('socketLinkEnsure', [...this.#link, this.boxId],
      { doing: `cannot set up the socket link ${this.bindingDir}`, hints: LINK_HINTS }, linkResultOf)
  }

  /**
   * Make bindingDir a symlink to realDir: creates /tmp/bl-{uid} (0700) if
   * needed, refuses a squatted one, replaces a stale link, tolerates a
   * concurrent creator. Must run before anything binds.
   */
  async ensure (): Promise<EnsureResult> { return await this.#ensure().async() }
  ensureSync (): EnsureResult { return this.#ensure().sync() }

  #remove (): NativeCall<boolean> {
    return nativeCall('socketLinkRemove', [...this.#link, this.boxId], { doing: `cannot remove the socket link ${this.bindingDir}` })
  }

  /** Remove the link if it is ours (points at realDir). Idempotent. */
  async remove (): Promise<boolean> { return await this.#remove().async() }
  removeSync (): boolean { return this.#remove().sync() }

  /** Unlink every dangling link in /tmp/bl-{uid}; returns the box ids removed. */
  static async sweepStale (uid: number = currentUid()): Promise<string[]> { return await sweepLinksCall(uid, false).async() }
  static sweepStaleSync (uid: number = currentUid()): string[] { return sweepLinksCall(uid, false).sync() }
}
