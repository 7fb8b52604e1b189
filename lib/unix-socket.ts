// listenUnix / connectUnix: Unix sockets at any path length,
// never truncated. Node 20/22 cut a path longer than sun_path to fit and
// bind or connect somewhere else without an error; here a path that fits is
// used as is, a longer one is reached through a directory fd
// (/proc/self/fd/N/name, Linux) or refused with ENAMETOOLONG.
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import * as args from './args.ts'
import { layoutError, fromNodeError } from './errors.ts'
import { SUN_PATH_MAX } from './sockets.ts'

export interface UnixSocketOptions {
  /**
   * Reach paths longer than sun_path through a directory fd (Linux only).
   * Default true on Linux; false makes such paths fail with ENAMETOOLONG.
   */
  longPaths?: boolean
}

export interface ListenUnixOptions extends UnixSocketOptions {
  /** An existing server to listen with (default: a new net.Server). */
  server?: net.Server
  /** Passed to net.Server#listen. */
  backlog?: number
  /** Remove a socket file at the path first if nobody accepts on it. */
  replaceStale?: boolean
}

/** Whether a path fits sun_path as is (bytes + NUL). */
export function fitsSunPath (p: string): boolean {
  return Buffer.byteLength(args.string(p, 'p')) + 1 <= SUN_PATH_MAX
}

interface Route {
  /** What to hand to Node: the path itself or its /proc/self/fd form. */
  address: string
  /** The directory fd to close once the socket no longer needs it. */
  dirFd?: number
}

function route (p: string, longPathsOption: unknown, syscall: 'bind' | 'connect'): Route {
  const longPaths = longPathsOption === undefined ? process.platform === 'linux' : args.boolean(longPathsOption, 'options.longPaths')
  if (fitsSunPath(args.path(p, 'p', { absolute: false }))) return { address: p }
  const bytes = Buffer.byteLength(p)
  if (!longPaths || process.platform !== 'linux') {
    throw layoutError('ENAMETOOLONG', 'socket-path-too-long',
      `socket path is ${bytes} bytes, over sun_path (${SUN_PATH_MAX - 1} plus NUL)` +
      (process.platform === 'linux' ? ' and longPaths is off' : '') +
      '; bind through a shorter path (BoxSockets links /tmp/bl-{uid}/{box_id} for this)',
      { path: p, syscall })
  }
  const dir = path.dirname(path.resolve(p))
  const name = path.basename(p)
  let dirFd: number
  try {
    dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  } catch (e) {
    throw missingDirError(p, e, syscall) ?? fromNodeError(e, { doing: `cannot open the directory of socket ${p}` })
  }
  const address = `/proc/self/fd/${dirFd}/${name}`
  if (!fitsSunPath(address)) {
    fs.closeSync(dirFd)
    throw layoutError('ENAMETOOLONG', 'socket-path-too-long', `socket file name ${JSON.stringify(name)} is too long even through a directory fd`, { path: p, syscall })
  }
  return { address, dirFd }
}

function closeDirFd (r: Route): void {
  if (r.dirFd !== undefined) {
    fs.closeSync(r.dirFd)
    r.dirFd = undefined
  }
}

/**
 * When bind or connect fails with ENOENT, EACCES or ENOTDIR, the usual cause
 * is a socket directory that does not exist yet (the box's link in
 * /tmp/bl-{uid}, or a link whose sockets/ is gone): say so, with the path.
 * undefined when the directory is there and the error is what it says.
 */
function missingDirError (p: string, e: unknown, syscall: 'bind' | 'connect'): unknown {
  const code = (e as NodeJS.ErrnoException).code
  if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'ENOTDIR') return undefined
  const dir = path.dirname(path.resolve(p))
  try {
    if (fs.statSync(dir).isDirectory()) return undefined
  } catch (se) {
    const scode = (se as NodeJS.ErrnoException).code
    if (scode !== 'ENOENT' && scode !== 'ENOTDIR') return undefined
  }
  let dangling = ''
  try {
    dangling = ` (a symlink to ${fs.readlinkSync(dir)}, which does not exist)`
  } catch {}
  return layoutError('ENOENT', 'not-prepared',
    `cannot ${syscall === 'bind' ? 'listen on' : 'connect to'} ${p}: its directory ${dir} does not exist${dangling}; ` +
    'prepare() the box first (it makes sockets/ and the /tmp/bl-{uid}/{box_id} link sockets bind through)',
    { path: dir, syscall })
}

function probeStale (address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(address)
    c.once('connect', () => { c.destroy(); resolve(false) })
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

function listenOnce (server: net.Server, address: string, backlog: number | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => { server.off('listening', onListening); reject(e) }
    const onListening = () => { server.off('error', onError); resolve() }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen({ path: address, ...(backlog === undefined ? {} : { backlog }) })
  })
}

/**
 * Listen on a Unix socket at p, whatever its length. Resolves with the
 * listening server. Closing the server removes the socket file at its real
 * path. For a long path, server.address() shows the /proc/self/fd form.
 */
export async function listenUnix (p: string, options: ListenUnixOptions = {}): Promise<net.Server> {
  const o = args.options(options, 'options', ['longPaths', 'server', 'backlog', 'replaceStale'])
  const backlog = o.backlog === undefined ? undefined : args.integer(o.backlog, 'options.backlog', 0, 0x7fffffff)
  const replaceStale = o.replaceStale === undefined ? false : args.boolean(o.replaceStale, 'options.replaceStale')
  const given = o.server === undefined ? undefined : args.instance(o.server, 'options.server', net.Server, 'a net.Server')
  // Last: a long path's route holds a directory fd.
  const r = route(p, o.longPaths, 'bind')
  const server = given ?? net.createServer()
  try {
    try {
      await listenOnce(server, r.address, backlog)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !replaceStale) throw e
      // Only a socket nobody accepts on is stale; never delete anything else.
      if (!fs.lstatSync(r.address).isSocket() || !await probeStale(r.address)) throw e
      fs.unlinkSync(r.address)
      await listenOnce(server, r.address, backlog)
    }
  } catch (e) {
    closeDirFd(r)
    throw missingDirError(p, e, 'bind') ?? fromNodeError(e, {
      doing: `cannot listen on ${p}`,
      hints: { EADDRINUSE: 'a socket file is already there; remove it if its server is gone, or pass replaceStale: true' },
    })
  }
  // libuv unlinks the socket file (through the fd path) when the server
  // closes, so the directory fd must outlive the server.
  if (r.dirFd !== undefined) server.once('close', () => closeDirFd(r))
  return server
}

/** Connect to a Unix socket at p, whatever its length. */
export function connectUnix (p: string, options: UnixSocketOptions = {}): Promise<net.Socket> {
  let r: Route
  try {
    r = route(p, args.options(options, 'options', ['longPaths']).longPaths, 'connect')
  } catch (e) {
    return Promise.reject(e)
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect(r.address)
    const onError = (e: Error) => {
      closeDirFd(r)
      reject(missingDirError(p, e, 'connect') ?? fromNodeError(e, { doing: `cannot connect to ${p}` }))
    }
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.off('error', onError)
      // connect(2) resolved the path; the directory fd has done its job.
      closeDirFd(r)
      resolve(socket)
    })
  })
}
