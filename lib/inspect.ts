// BoxLayout.inspect(): everything the layout can say about one box, from one
// native call that reads without waiting on anything (pid file and exit
// records capped and non-blocking, a FIFO reported rather than waited on).
import { LayoutError } from './errors.ts'
import { parseExitFile, type ExitRecord } from './exit-record.ts'
import { nativeErrorValue, type NativeInspection, type NativeShared, type NativeSocketState } from './native.ts'
import { joinPath } from './paths.ts'
import { identityOfRead, type ProcessIdentity } from './pid-file.ts'

export interface SharedState {
  kind: 'missing' | 'directory' | 'symlink' | 'mount' | 'other'
  /** mount: read-only, submounts included; symlink/directory: false. */
  readOnly: boolean
  /** mount: its root is mounts/; symlink: it points at mounts/. */
  showsMounts: boolean
  /** directory: it has no entries. */
  empty?: boolean
  linkTarget?: string
  /**
   * mount: submounts that reached shared/ by propagation after the last
   * mountShared() and are writable (mountShared() re-seals them). Read
   * from mountinfo: a diagnostic, not for hot paths.
   */
  writableSubmounts?: string[]
}

export function sharedStateOf (s: NativeShared): SharedState {
  return {
    kind: s.kind,
    readOnly: s.kind === 'mount' && s.readOnly,
    showsMounts: (s.kind === 'mount' || s.kind === 'symlink') && s.showsMounts,
    ...(s.kind === 'symlink' ? { linkTarget: s.linkTarget } : {}),
    ...(s.kind === 'directory' ? { empty: s.empty } : {}),
    ...(s.kind === 'mount' ? { writableSubmounts: s.writableSubmounts } : {}),
  }
}

/** What inspectionOf needs of a box: its id and paths (BoxLayout has them). */
export interface InspectedBox {
  readonly boxId: string
  readonly root: string
  readonly sharedDir: string
  readonly binDir: string
  readonly logsDir: string
  readonly disksDir: string
  readonly socketsDir: string
  readonly pidFilePath: string
  readonly exitFilePath: string
  readonly exitPreviousPath: string
  readonly sockets: { readonly bindingDir: string }
}

export interface BinFile {
  name: string
  bytes: number
  /** Octal, e.g. "0755". */
  mode: string
  /** Shares extents with another file (reflinked); null: the filesystem cannot say. */
  reflinked: boolean | null
}

export interface SocketLinkState {
  path: string
  /** ok: points at this box's sockets/; foreign: elsewhere; not-a-link: something else is there. */
  state: 'ok' | 'missing' | 'foreign' | 'not-a-link'
  target?: string
}

/**
/**
 * One of the box's sockets (SocketNames), by a non-blocking connect that
 * never follows a symlink: listening (something accepts, or a datagram
 * socket is bound), refused (a socket file nobody serves: stale), missing,
 * or not-a-socket (anything else there, a symlink included).
 */
export interface SocketProbeState {
  name: string
  /** Where it is bound and dialed: through the short link. */
  path: string
  state: NativeSocketState
}

/**
 * A record as read: parsed, absent (null), malformed (error: the parse
 * error), or unreadable (a FIFO, too large…; error: why).
 */
export type ExitView = ExitRecord | null | { malformed: true, error: LayoutError } | { unreadable: true, error: LayoutError }

/** The shim's identity, or the error that kept the pid file from being read (then gc counts the box live). */
export type ShimState = ProcessIdentity | { identity: 'unreadable', why: string, error: LayoutError }

export interface BoxInspection {
  boxId: string
  boxDir: string
  /** mounts/ exists: the box was prepared isolating mounts. */
  isolateMounts: boolean
  paths: Record<'sockets' | 'mounts' | 'shared' | 'bin' | 'logs' | 'disks' | 'pidFile' | 'exitFile' | 'bindingDir', string>
  shared: SharedState
  socketLink: SocketLinkState
  sockets: SocketProbeState[]
  bin: BinFile[]
  shim: ShimState
  exit: ExitView
  exitPrevious: ExitView
}

function exitView (text: string | null, error: LayoutError | undefined, file: string): ExitView {
  if (error !== undefined) return { unreadable: true, error }
  try {
    return parseExitFile(text, file)
  } catch (e) {
    if (e instanceof LayoutError) return { malformed: true, error: e }
    throw e
  }
}

export function inspectionOf (box: InspectedBox, r: NativeInspection): BoxInspection {
  const pidError = nativeErrorValue(r.pidError)
  return {
    boxId: box.boxId,
    boxDir: box.root,
    isolateMounts: r.isolates,
    paths: {
      sockets: box.socketsDir,
      mounts: joinPath(box.root, r.isolates ? 'mounts' : 'shared'),
      shared: box.sharedDir,
      bin: box.binDir,
      logs: box.logsDir,
      disks: box.disksDir,
      pidFile: box.pidFilePath,
      exitFile: box.exitFilePath,
      bindingDir: box.sockets.bindingDir,
    },
    shared: sharedStateOf(r.shared),
    socketLink: {
      path: box.sockets.bindingDir,
      state: r.link.state,
      ...(r.link.state === 'ok' || r.link.state === 'foreign' ? { target: r.link.target } : {}),
    },
    sockets: r.sockets.map((s) => ({ name: s.name, path: joinPath(box.sockets.bindingDir, s.name), state: s.state })),
    bin: r.bin.map((f) => ({
      name: f.name,
      bytes: f.bytes,
      mode: `0${(f.mode & 0o7777).toString(8).padStart(3, '0')}`,
      reflinked: f.sharesExtents,
    })),
    shim: pidError !== undefined
      ? { identity: 'unreadable', why: 'the pid file cannot be read; counted as live', error: pidError }
      : identityOfRead(r.pid, box.pidFilePath),
    exit: exitView(r.exit, nativeErrorValue(r.exitError), box.exitFilePath),
    exitPrevious: exitView(r.exitPrevious, nativeErrorValue(r.exitPreviousError), box.exitPreviousPath),
  }
}
