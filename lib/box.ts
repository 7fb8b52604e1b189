// BoxLayout (SPEC §1): one box's directory, its paths, and the operations
// that create, mount, populate and remove it.
import path from 'node:path'
import { invalidArg, LayoutError } from './errors.ts'
import { lockDirPlan, unlockDirPlan } from './dir-lock.ts'
import { fsChmod, fsMkdir, fsRename, fsWriteFileAtomic } from './fs-effects.ts'
import { randomPoolBytes, validateBoxId, validateContainerId } from './ids.ts'
import { nativeOp, perform, runAsync, runSync, type Plan } from './native.ts'
import {
  mountSharedPlan, sharedStatePlan, unmountSharedPlan,
  type MountSharedOptions, type MountSharedResult, type SharedState, type UnmountResult,
} from './shared-mount.ts'
import { SharedDirs, SharedGuestLayout, type SharedContainerLayout } from './shared-guest.ts'
import { installShimPlan, type InstallShimOptions, type InstallShimResult } from './shim.ts'
import { BoxSockets, type EnsureResult } from './sockets.ts'
import { ExitFile, readContainerExitPlan, writeContainerExitPlan, type ContainerExit } from './exit-record.ts'
import { PidFile } from './pid-file.ts'

export const BoxFiles = {
  SOCKETS: 'sockets',
  TMP: 'tmp',
  BIN: 'bin',
  BOOT: 'boot',
  CA: 'ca',
  CA_CERT: 'cert.pem',
  CA_KEY: 'key.pem',
  LOGS: 'logs',
  CONSOLE_LOG: 'console.log',
  SHIM_LOG: 'boxlite-shim.log',
  DISKS: 'disks',
  CONTAINER_DISK: 'disk.qcow2',
  GUEST_ROOTFS_DISK: 'guest-rootfs.qcow2',
  PID_FILE: 'shim.pid',
  EXIT_FILE: 'exit',
  EXIT_PREVIOUS: 'exit.previous',
  STDERR_FILE: 'shim.stderr',
  TRASH_PREFIX: '.trash-',
} as const

export interface BoxLayoutOptions {
  /** Show mounts/ read-only at shared/ (when bind mounts are on). Default false. */
  isolateMounts?: boolean
  /** See HomeLayoutOptions.bindMounts. Default true. */
  bindMounts?: boolean
  /** uid whose /tmp/bl-{uid} holds the socket link. Default: this process's. */
  uid?: number
}

export interface BoxPrepareResult {
  boxDir: string
  socketLink: EnsureResult
}

export interface CleanupResult {
  /** Whether a box directory was there to remove. */
  removed: boolean
  /** Files, links and directories removed. */
  entries: number
  /** Mounts detached inside the box (shared/ and any other). */
  unmounted: number
  /** Socket link removal is best effort: its outcome, never an exception. */
  socketLink: { removed: boolean, error?: LayoutError }
}

export interface CaMaterial {
  cert: string | Uint8Array
  key: string | Uint8Array
}

export class BoxLayout {
  readonly boxId: string
  readonly root: string
  /** Effective: isolateMounts requested and bind mounts on. */
  readonly isolateMounts: boolean
  readonly socketsDir: string
  readonly tmpDir: string
  /** Where the host writes guest-visible files: mounts/ when isolating, else shared/. */
  readonly mountsDir: string
  /** Guest-visible (virtio-fs tag "shared"). */
  readonly sharedDir: string
  readonly binDir: string
  readonly bootDir: string
  /** Never under shared/: the guest must not read the key. */
  readonly caDir: string
  readonly caCertPath: string
  readonly caKeyPath: string
  readonly logsDir: string
  readonly consoleOutputPath: string
  readonly shimLogPath: string
  readonly disksDir: string
  readonly diskPath: string
  readonly guestRootfsDiskPath: string
  readonly pidFilePath: string
  readonly exitFilePath: string
  readonly exitPreviousPath: string
  readonly stderrFilePath: string
  readonly sockets: BoxSockets
  /** The shared guest tree as the host writes it (rooted at mountsDir). */
  readonly sharedLayout: SharedGuestLayout
  /** shim.pid: pid, start-time fingerprint, identity check. */
  readonly pidFile: PidFile
  /** exit and exit.previous. */
  readonly exitFile: ExitFile

  constructor (boxDir: string, options: BoxLayoutOptions = {}) {
    if (typeof boxDir !== 'string' || !path.isAbsolute(boxDir)) {
      throw invalidArg(`box dir must be an absolute path; got ${JSON.stringify(boxDir)}`)
    }
    const root = boxDir.replace(/(.)\/+$/, '$1')
    // No normalizing: "/h/boxes/.." must not quietly become the box "h".
    if (path.normalize(root) !== root) {
      throw invalidArg(`box dir must be a normalized absolute path (no ".", ".." or "//"); got ${JSON.stringify(boxDir)}`)
    }
    this.root = root
    this.boxId = validateBoxId(path.basename(this.root))
    this.isolateMounts = (options.isolateMounts ?? false) && (options.bindMounts ?? true)
    const at = (...parts: string[]) => path.join(this.root, ...parts)
    this.socketsDir = at(BoxFiles.SOCKETS)
    this.tmpDir = at(BoxFiles.TMP)
    this.sharedDir = at(SharedDirs.SHARED)
    this.mountsDir = this.isolateMounts ? at(SharedDirs.MOUNTS) : this.sharedDir
    this.binDir = at(BoxFiles.BIN)
    this.bootDir = at(BoxFiles.BOOT)
    this.caDir = at(BoxFiles.CA)
    this.caCertPath = at(BoxFiles.CA, BoxFiles.CA_CERT)
    this.caKeyPath = at(BoxFiles.CA, BoxFiles.CA_KEY)
    this.logsDir = at(BoxFiles.LOGS)
    this.consoleOutputPath = at(BoxFiles.LOGS, BoxFiles.CONSOLE_LOG)
    this.shimLogPath = at(BoxFiles.LOGS, BoxFiles.SHIM_LOG)
    this.disksDir = at(BoxFiles.DISKS)
    this.diskPath = at(BoxFiles.DISKS, BoxFiles.CONTAINER_DISK)
    this.guestRootfsDiskPath = at(BoxFiles.DISKS, BoxFiles.GUEST_ROOTFS_DISK)
    this.pidFilePath = at(BoxFiles.PID_FILE)
    this.exitFilePath = at(BoxFiles.EXIT_FILE)
    this.exitPreviousPath = at(BoxFiles.EXIT_PREVIOUS)
    this.stderrFilePath = at(BoxFiles.STDERR_FILE)
    this.sockets = new BoxSockets(this.boxId, this.socketsDir, options.uid === undefined ? {} : { uid: options.uid })
    this.sharedLayout = new SharedGuestLayout(this.mountsDir)
    this.pidFile = new PidFile(this.pidFilePath)
    this.exitFile = new ExitFile(this.exitFilePath, this.exitPreviousPath)
  }

  /** gRPC control socket, bound through the short link. */
  get socketPath (): string { return this.sockets.boxSock }
  /** Guest-ready notification socket. */
  get readySocketPath (): string { return this.sockets.readySock }
  /** Network backend socket (libkrun derives net.sock-krun.sock from it). */
  get netBackendSocketPath (): string { return this.sockets.netSock }

  /** Host-side layout of one container under mountsDir. */
  container (containerId: string): SharedContainerLayout {
    return this.sharedLayout.container(containerId)
  }

  /** The container's exit.json as the guest publishes it under shared/. */
  containerExitPath (containerId: string): string {
    return path.join(this.sharedDir, SharedDirs.CONTAINERS, validateContainerId(containerId), SharedDirs.EXIT_FILE)
  }

  /** Rename exit -> exit.previous (one slot); false when there was none. */
  rotateExit (): Promise<boolean> {
    return this.exitFile.rotate()
  }

  rotateExitSync (): boolean {
    return this.exitFile.rotateSync()
  }

  /** The container's {"exit_code":N}, or null when it has not exited. */
  readContainerExit (containerId: string): Promise<ContainerExit | null> {
    return runAsync(readContainerExitPlan(this.containerExitPath(containerId)))
  }

  readContainerExitSync (containerId: string): ContainerExit | null {
    return runSync(readContainerExitPlan(this.containerExitPath(containerId)))
  }

  /** Write a container's exit.json on the host-writable side (mounts dir). */
  writeContainerExit (containerId: string, exit: ContainerExit): Promise<void> {
    return runAsync(writeContainerExitPlan(this.container(containerId).exitFilePath, exit))
  }

  writeContainerExitSync (containerId: string, exit: ContainerExit): void {
    runSync(writeContainerExitPlan(this.container(containerId).exitFilePath, exit))
  }

  /**
   * Paths a jailer grants the shim: all inside the box dir, so a sandbox
   * never reaches another box or the home. (The socket link in /tmp is
   * granted separately: sockets.policyPaths().)
   */
  jailerPaths (): string[] {
    return [
      this.logsDir, this.binDir, this.socketsDir, this.tmpDir, this.bootDir, this.sharedDir,
      this.disksDir, this.guestRootfsDiskPath, this.diskPath, this.exitFilePath,
      this.consoleOutputPath, this.pidFilePath, this.stderrFilePath,
    ]
  }

  * #preparePlan (): Plan<BoxPrepareResult> {
    // Fail on a socket path that cannot work before creating anything.
    this.sockets.checkLength()
    const ctx = { doing: `cannot prepare box ${this.boxId}` }
    yield * perform(nativeOp('makeDirs', [[this.root, this.socketsDir], 0o777], ctx))
    // Every socket binds through the link: it must exist before anything binds.
    const socketLink = yield * this.sockets.ensurePlan()
    yield * perform(nativeOp('makeDirs', [[this.tmpDir, this.disksDir, this.mountsDir, this.logsDir], 0o777], ctx))
    return { boxDir: this.root, socketLink }
  }

  /**
   * Creates the box dir, sockets/, the socket link, tmp/, disks/, the mounts
   * dir and logs/, in that order. shared/ is left to mountShared() when
   * isolating. Idempotent; repairs a partly prepared box.
   */
  prepare (): Promise<BoxPrepareResult> {
    return runAsync(this.#preparePlan())
  }

  prepareSync (): BoxPrepareResult {
    return runSync(this.#preparePlan())
  }

  /** Show mounts/ read-only at shared/ (SPEC §2). */
  mountShared (options: MountSharedOptions = {}): Promise<MountSharedResult> {
    return runAsync(mountSharedPlan(this, options))
  }

  mountSharedSync (options: MountSharedOptions = {}): MountSharedResult {
    return runSync(mountSharedPlan(this, options))
  }

  /** Detach the shared mount (or remove the symlink fallback). */
  unmountShared (): Promise<UnmountResult> {
    return runAsync(unmountSharedPlan(this))
  }

  unmountSharedSync (): UnmountResult {
    return runSync(unmountSharedPlan(this))
  }

  /** What is at shared/ now, by statx mount ids (no mountinfo). */
  sharedState (): Promise<SharedState> {
    return runAsync(sharedStatePlan(this))
  }

  sharedStateSync (): SharedState {
    return runSync(sharedStatePlan(this))
  }

  /** Copy the shim and its libkrunfw.* siblings into bin/ (SPEC §3). */
  installShim (shimPath: string, options: InstallShimOptions = {}): Promise<InstallShimResult> {
    return runAsync(installShimPlan(this.binDir, shimPath, options))
  }

  installShimSync (shimPath: string, options: InstallShimOptions = {}): InstallShimResult {
    return runSync(installShimPlan(this.binDir, shimPath, options))
  }

  * #writeCaPlan (ca: CaMaterial): Plan<void> {
    if (ca === null || typeof ca !== 'object' || ca.cert === undefined || ca.key === undefined) {
      throw invalidArg('writeCa() needs { cert, key }')
    }
    const ctx = {
      doing: `cannot write the CA of box ${this.boxId}`,
      hints: { ENOENT: 'prepare() the box first' },
    }
    try {
      yield * perform(fsMkdir([this.caDir, 0o700], ctx))
    } catch (e) {
      if (!(e instanceof LayoutError) || e.code !== 'EEXIST') throw e
    }
    yield * perform(fsChmod([this.caDir, 0o700], ctx))
    yield * perform(fsWriteFileAtomic([this.caKeyPath, ca.key, 0o600], ctx))
    yield * perform(fsWriteFileAtomic([this.caCertPath, ca.cert, 0o644], ctx))
  }

  /** ca/ (0700) with cert.pem (0644) and key.pem (0600), each written atomically. */
  writeCa (ca: CaMaterial): Promise<void> {
    return runAsync(this.#writeCaPlan(ca))
  }

  writeCaSync (ca: CaMaterial): void {
    runSync(this.#writeCaPlan(ca))
  }

  * #removeSocketLinkBestEffort (): Plan<CleanupResult['socketLink']> {
    try {
      return { removed: yield * this.sockets.removePlan() }
    } catch (e) {
      if (e instanceof LayoutError) return { removed: false, error: e }
      throw e
    }
  }

  * #cleanupPlan (): Plan<CleanupResult> {
    let lock
    try {
      lock = yield * lockDirPlan(this.root, `box ${this.boxId}`)
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e
      if (e.code === 'ENOENT') {
        const socketLink = yield * this.#removeSocketLinkBestEffort()
        return { removed: false, entries: 0, unmounted: 0, socketLink }
      }
      if (e.code !== 'ELOOP' && e.code !== 'ENOTDIR') throw e
      // Not a directory: a planted symlink or a file. Unlink it, never follow.
      const gone = yield * perform(nativeOp('removeTree', [path.dirname(this.root), this.boxId, true], {
        doing: `cannot clean up box ${this.boxId}`,
      }))
      const socketLink = yield * this.#removeSocketLinkBestEffort()
      return { removed: true, entries: gone.entries, unmounted: gone.unmounted, socketLink }
    }
    let stats
    let unmounted = 0
    let socketLink: CleanupResult['socketLink']
    try {
      // Under the lock: a preparer of the same id waiting for it would
      // otherwise have its fresh link removed by us.
      socketLink = yield * this.#removeSocketLinkBestEffort()
      const ctx = { doing: `cannot clean up box ${this.boxId}` }
      // The common mount first, by name: no tree walk needed to find it.
      if (yield * perform(nativeOp('unmount', [this.sharedDir], ctx))) unmounted++
      // Out of sight first: a crash from here on leaves a .trash-* dir that
      // gc finishes, never a half-removed box under its own id.
      const parent = path.dirname(this.root)
      let victim = this.boxId
      const trash = `${BoxFiles.TRASH_PREFIX}${this.boxId}-${randomPoolBytes(4).toString('hex')}`
      try {
        yield * perform(fsRename([this.root, path.join(parent, trash)], ctx))
        victim = trash
      } catch (e) {
        // EBUSY: the box dir is itself a mount point; remove in place.
        if (!(e instanceof LayoutError) || e.code !== 'EBUSY') throw e
      }
      stats = yield * perform(nativeOp('removeTree', [parent, victim, true], {
        ...ctx,
        hints: {
          EBUSY: 'a mount inside the box could not be detached, so nothing below it was deleted; ' +
            'unmount it (as root) and run `boxlite-layout gc`',
        },
      }))
    } finally {
      yield * unlockDirPlan(lock)
    }
    return { removed: true, entries: stats.entries, unmounted: unmounted + stats.unmounted, socketLink }
  }

  /**
   * Unmount every mount inside the box, then remove the tree without
   * following symlinks or crossing into a mount, then the socket link.
   * Idempotent. EBUSY (nothing below it deleted) if a mount cannot be detached.
   */
  cleanup (): Promise<CleanupResult> {
    return runAsync(this.#cleanupPlan())
  }

  cleanupSync (): CleanupResult {
    return runSync(this.#cleanupPlan())
  }
}
