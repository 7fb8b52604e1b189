// `boxlite-layout box inspect ID`: everything the layout can say about one
// box, read from the disk and the kernel (mount ids, extent maps, /proc).
import fs from 'node:fs'
import path from 'node:path'
import type { BoxLayout } from '../box.ts'
import { LayoutError, layoutError } from '../errors.ts'
import type { ExitRecord } from '../exit-record.ts'
import { sharesExtentsSync } from '../fs-facts.ts'
import type { HomeLayout } from '../home.ts'
import type { ProcessIdentity } from '../pid-file.ts'
import type { SharedState } from '../shared-mount.ts'

export interface BinFile {
  name: string
  bytes: number
  mode: string
  /** Shares extents with another file (reflinked); null: the fs cannot say. */
  reflinked: boolean | null
}

export interface SocketLinkState {
  path: string
  state: 'ok' | 'missing' | 'foreign' | 'not-a-link'
  target?: string
}

export type ExitView = ExitRecord | null | { malformed: string }

export interface BoxInspection {
  boxId: string
  boxDir: string
  isolateMounts: boolean
  paths: Record<string, string>
  shared: SharedState
  socketLink: SocketLinkState
  bin: BinFile[]
  shim: ProcessIdentity
  exit: ExitView
  exitPrevious: ExitView
}

function linkState (box: BoxLayout): SocketLinkState {
  const p = box.sockets.bindingDir
  let target: string
  try {
    target = fs.readlinkSync(p)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return { path: p, state: code === 'EINVAL' ? 'not-a-link' : 'missing' }
  }
  return { path: p, state: target === box.socketsDir ? 'ok' : 'foreign', target }
}

function binFiles (box: BoxLayout): BinFile[] {
  let names: string[]
  try {
    names = fs.readdirSync(box.binDir).sort()
  } catch {
    return []
  }
  return names.flatMap((name) => {
    const p = path.join(box.binDir, name)
    const st = fs.lstatSync(p)
    if (!st.isFile()) return []
    return [{ name, bytes: st.size, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), reflinked: sharesExtentsSync(p) }]
  })
}

function exitView (read: () => ExitRecord | null): ExitView {
  try {
    return read()
  } catch (e) {
    if (e instanceof LayoutError && e.code === 'EINVAL') return { malformed: e.message }
    throw e
  }
}

export function inspectBox (home: HomeLayout, boxId: string): BoxInspection {
  const probe = home.box(boxId)
  if (!fs.existsSync(probe.root)) {
    throw layoutError('ENOENT', `there is no box ${boxId} in ${home.home}`, { path: probe.root })
  }
  // A box that isolates mounts has a mounts/ dir; the layout follows it.
  const box = home.box(boxId, { isolateMounts: fs.existsSync(path.join(probe.root, 'mounts')) })
  return {
    boxId,
    boxDir: box.root,
    isolateMounts: box.isolateMounts,
    paths: {
      sockets: box.socketsDir,
      mounts: box.mountsDir,
      shared: box.sharedDir,
      bin: box.binDir,
      logs: box.logsDir,
      disks: box.disksDir,
      pidFile: box.pidFilePath,
      exitFile: box.exitFilePath,
      bindingDir: box.sockets.bindingDir,
    },
    shared: box.sharedStateSync(),
    socketLink: linkState(box),
    bin: binFiles(box),
    shim: box.pidFile.identitySync(),
    exit: exitView(() => box.exitFile.readSync()),
    exitPrevious: exitView(() => box.exitFile.readPreviousSync()),
  }
}
