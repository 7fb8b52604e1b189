// BoxLayout: one box's directory, its paths (BoxLite's, join for join), and
// the operations that create, mount, populate, inspect and remove it. Each
// operation is one native call that opens the box once, holds its lock where
// it changes the box, and resolves everything beneath the box's directory fd
// without following symlinks (docs/design.md#resolve-beneath).
import * as args from './args.ts'
import { layoutError, toLayoutError, type ErrorContext, type LayoutError } from './errors.ts'
import { formatContainerExit, parseContainerExit, type ContainerExit, ExitFile } from './exit-record.ts'
import { checkId } from './ids.ts'
import {
  nativeCall, nativeErrorValue, promiseOf, type BoxArgs, type BoxOpArgs, type BoxOpName, type DirArgs, type LinkArgs, type NativeCall,
  type NativeOps, type NativePolicyFacts,
} from './native.ts'
import { joinPath, splitLast } from './paths.ts'
import { PidFile } from './pid-file.ts'
import { SharedContainerLayout, SharedDirs, SharedGuestLayout } from './shared-guest.ts'
import { BoxSockets, linkResultOf, SocketNames, type EnsureResult } from './sockets.ts'
import { cloneMode, type CloneMethod, type CloneMode } from './clone.ts'
import { inspectionOf, sharedStateOf, type BoxInspection, type SharedState } from './inspect.ts'
import {
  bwrapArgsOf, checkPolicyOptions, grantsOf, POLICY_CONTEXT, policyHostPaths, type BwrapOptions, type PolicyGrant, type SandboxPolicyOptions,
} from './policy.ts'
import { checkCommand, jail, jailArgv, type BoxCall, type JailedShim, type JailOptions, type JailPlatform } from './jail.ts'
import { checkSeatbeltOptions, seatbeltHostPaths, seatbeltProfileOf, type SeatbeltOptions } from './seatbelt.ts'
import {
  bootAssetsOf, checkBootRead, checkPublishBootOptions, parseBootManifest, type BootAssets, type PublishBootOptions,
  type PublishBootResult,
} from './boot.ts'
import { checkStageArgs, STAGE_HINTS, stagedVolumeOf, type StagedVolumeFile, type StageVolumeFileOptions } from './volumes.ts'

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

/** Siblings of the shim whose name starts with this are installed with it. */
export const SHIM_LIBRARY_PREFIX = 'libkrunfw.'

/** Set by HomeLayout.box(): the box is reached from the home, boxes/ included. */
export const homeAnchor: unique symbol = Symbol('boxlite-layout.homeAnchor')

export interface BoxLayoutOptions {
  /** Show mounts/ read-only at shared/ (when bind mounts are on). Default false, as BoxLite. */
  isolateMounts?: boolean
  /** See HomeLayoutOptions.bindMounts. Default true. */
  bindMounts?: boolean
  /** uid whose /tmp/bl-{uid} holds the socket link. Default: this process's. */
  uid?: number
  /** @internal */
  [homeAnchor]?: string
}

export interface BoxPrepareResult {
  boxDir: string
  socketLink: EnsureResult
  /** Directories (home, boxes, box) whose loose mode was tightened. */
  repaired: string[]
}

export type MountMethod = 'bind-ro' | 'bind-ro-legacy' | 'symlink'

export interface MountSharedOptions {
  /**
   * 'read-only': fail (EPERM/ENOTSUP, reason read-only-impossible) rather
   * than fall back to a symlink, which would let the guest write the host's
   * mounts/. Default 'any'.
   */
  require?: 'any' | 'read-only'
  /**
   * 'legacy' forces the classic mount(2) sequence even where the new mount
   * API exists. Default: $BOXLITE_LAYOUT_MOUNT_API, else 'auto'.
   */
  api?: 'auto' | 'legacy'
}

export interface MountSharedResult {
  method: MountMethod
  /** false only for the symlink fallback. */
  readOnly: boolean
  /** mounts/ (what the host writes). */
  source: string
  /** shared/ (what the guest sees). */
  target: string
  /** An existing correct mount or link was kept (and re-sealed read-only). */
  reused: boolean
  /** Why there is no read-only mount, for method 'symlink': the mount's error. */
  error?: LayoutError
}

export type UnmountResult = 'unmounted' | 'unlinked' | 'none'

export interface InstallShimOptions {
  /** Clone mode for every file (default 'auto'); 'force' demands reflinks. */
  mode?: CloneMode
}

export interface InstalledFile {
  name: string
  method: CloneMethod
  bytes: number
}

export interface InstallShimResult {
  binDir: string
  files: InstalledFile[]
}

export interface CleanupResult {
  /** Whether a box directory (or something planted in its place) was there to remove. */
  removed: boolean
  /** Files, links and directories removed. */
  entries: number
  /** Mounts detached inside the box (shared/ and any other). */
  unmounted: number
  /** Socket link removal is best effort: its outcome, never an exception. */
  socketLink: { removed: boolean, error?: LayoutError }
}

export interface CleanupOptions {
  /** Remove the box even while its shim is alive (default false: EBUSY, reason shim-alive). */
  force?: boolean
}

export interface CaMaterial {
  cert: string | Uint8Array
  key: string | Uint8Array
}

function mountApi (api: unknown): 'auto' | 'legacy' {
  if (api !== undefined) return args.oneOf(api, 'options.api', ['auto', 'legacy'])
  return args.oneOf(process.env.BOXLITE_LAYOUT_MOUNT_API ?? 'auto', 'BOXLITE_LAYOUT_MOUNT_API', ['auto', 'legacy'])
}

/** A PEM cert or key is a few KiB; anything this large is not one. */
const CA_MATERIAL_MAX = 64 * 1024

const CONTAINER_ID = 'containerId'

// Error hints, made once (the calls that use them are made per box).
const MOUNT_HINTS: ErrorContext['hints'] = { 'not-prepared': 'prepare() the box (with isolateMounts) first' }
const SHIM_HINTS: ErrorContext['hints'] = {
  'not-prepared': 'prepare() the box first', 'not-a-regular-file': 'the shim and its libkrunfw.* siblings must be regular files',
}
const CLEANUP_HINTS: ErrorContext['hints'] = { 'mount-in-the-way': 'unmount it (as root) and run `boxlite-layout gc`' }
/** The sockets inspect() probes; the binding copies them. */
const SOCKET_NAMES: string[] = Object.values(SocketNames)

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
  // Made on first use: most boxes a runtime makes go through a lifecycle
  // that never touches them, and box() is called for every one.
  #sharedLayout: SharedGuestLayout | undefined
  #pidFile: PidFile | undefined
  #exitFile: ExitFile | undefined
  /** How the core reaches the box: the anchor opened as given, the rest beneath it. */
  readonly #box: BoxArgs
  readonly #link: LinkArgs
  /** The home this box belongs to (when made by HomeLayout.box()). */
  readonly home: string | undefined

  constructor (boxDir: string, options: BoxLayoutOptions = {}) {
    args.path(boxDir, 'boxDir')
    const [parent, name] = splitLast(boxDir)
    // The id check on the last component is what refuses "." and "..".
    this.boxId = checkId(name, 'boxDir (its last component, the box id)')
    this.root = boxDir
    const opts = args.options(options, 'options', ['isolateMounts', 'bindMounts', 'uid', homeAnchor])
    const home = opts[homeAnchor] === undefined ? undefined : args.path(opts[homeAnchor], 'home')
    this.home = home
    this.#box = home === undefined ? [parent, '', this.boxId] : [home, 'boxes', this.boxId]
    const isolate = opts.isolateMounts === undefined ? false : args.boolean(opts.isolateMounts, 'options.isolateMounts')
    this.isolateMounts = isolate && (opts.bindMounts === undefined || args.boolean(opts.bindMounts, 'options.bindMounts'))
    // joinPath(root, ...) for constant relative parts, spelled out: a box is
    // made for every lifecycle, and each of these is one concatenation.
    const at = boxDir.endsWith('/') ? boxDir : `${boxDir}/`
    this.socketsDir = at + BoxFiles.SOCKETS
    this.tmpDir = at + BoxFiles.TMP
    this.sharedDir = at + SharedDirs.SHARED
    this.mountsDir = this.isolateMounts ? at + SharedDirs.MOUNTS : this.sharedDir
    this.binDir = at + BoxFiles.BIN
    this.bootDir = at + BoxFiles.BOOT
    this.caDir = at + BoxFiles.CA
    this.caCertPath = `${at}${BoxFiles.CA}/${BoxFiles.CA_CERT}`
    this.caKeyPath = `${at}${BoxFiles.CA}/${BoxFiles.CA_KEY}`
    this.logsDir = at + BoxFiles.LOGS
    this.consoleOutputPath = `${at}${BoxFiles.LOGS}/${BoxFiles.CONSOLE_LOG}`
    this.shimLogPath = `${at}${BoxFiles.LOGS}/${BoxFiles.SHIM_LOG}`
    this.disksDir = at + BoxFiles.DISKS
    this.diskPath = `${at}${BoxFiles.DISKS}/${BoxFiles.CONTAINER_DISK}`
    this.guestRootfsDiskPath = `${at}${BoxFiles.DISKS}/${BoxFiles.GUEST_ROOTFS_DISK}`
    this.pidFilePath = at + BoxFiles.PID_FILE
    this.exitFilePath = at + BoxFiles.EXIT_FILE
    this.exitPreviousPath = at + BoxFiles.EXIT_PREVIOUS
    this.stderrFilePath = at + BoxFiles.STDERR_FILE
    this.sockets = new BoxSockets(this.boxId, this.socketsDir, opts.uid === undefined ? {} : { uid: args.uid(opts.uid, 'options.uid') })
    this.#link = [this.sockets.parentDir, this.sockets.uid, this.socketsDir]
  }

  /**
   * The shared guest tree as the host writes it: rooted at mounts/ whatever
   * the isolation setting, as BoxLite's shared_layout() is (with isolation
   * off, mountsDir is shared/ but the container tree stays under mounts/).
   */
  get sharedLayout (): SharedGuestLayout {
    this.#sharedLayout ??= new SharedGuestLayout(joinPath(this.root, SharedDirs.MOUNTS))
    return this.#sharedLayout
  }

  /** The box dir as the pid and exit files reach it: beneath the anchor. */
  get #filesDir (): DirArgs { return [this.#box[0], joinPath(this.#box[1], this.boxId)] }

  /** shim.pid: pid, start-time fingerprint, identity check. */
  get pidFile (): PidFile {
    this.#pidFile ??= new PidFile(this.pidFilePath, { dir: this.#filesDir, name: BoxFiles.PID_FILE })
    return this.#pidFile
  }

  /** exit and exit.previous. */
  get exitFile (): ExitFile {
    this.#exitFile ??= new ExitFile(this.exitFilePath, this.exitPreviousPath, { dir: this.#filesDir })
    return this.#exitFile
  }

  /** gRPC control socket, bound through the short link. */
  get socketPath (): string { return this.sockets.boxSock }
  /** Guest-ready notification socket. */
  get readySocketPath (): string { return this.sockets.readySock }
  /** Network backend socket (libkrun derives net.sock-krun.sock from it). */
  get netBackendSocketPath (): string { return this.sockets.netSock }
  /** libkrun's side of the network pair (net.sock-krun.sock), which gvproxy dials. */
  get netBackendPeerSocketPath (): string { return this.sockets.netKrunSock }
  /** gvproxy's ServicesMux control socket (gvproxy-ctl.sock), which the host dials. */
  get gvproxyControlSocketPath (): string { return this.sockets.gvproxyControlSock }

  /** One operation on this box: the box's address first, then args. */
  #call<K extends BoxOpName, R> (name: K, args: BoxOpArgs<K>, ctx: ErrorContext, shape: (raw: ReturnType<NativeOps[K]>) => R): NativeCall<R> {
    // NativeOps declares a box op's arguments as exactly [...BoxArgs,
    // ...BoxOpArgs<K>]; TypeScript cannot see that through a generic K, so
    // this one place says it for every box op.
    const full: [...BoxArgs, ...BoxOpArgs<K>] = [...this.#box, ...args]
    return nativeCall(name, full as unknown as Parameters<NativeOps[K]>, ctx, shape)
  }

  /** Host-side layout of one container, under mounts/containers/{cid}. */
  container (containerId: string): SharedContainerLayout {
    const cid = checkId(containerId, CONTAINER_ID)
    return new SharedContainerLayout(joinPath(this.sharedLayout.containersDir, cid), {
      prepare: () => this.#call('containerPrepare', [cid], { doing: `cannot prepare container ${cid} of box ${this.boxId}` }, () => undefined),
    })
  }

  /** The container's exit.json as the guest publishes it, under shared/. */
  containerExitPath (containerId: string): string {
    return joinPath(this.sharedDir, SharedDirs.CONTAINERS, checkId(containerId, CONTAINER_ID), SharedDirs.EXIT_FILE)
  }

  #readContainerExit (containerId: string): NativeCall<ContainerExit | null> {
    const cid = checkId(containerId, CONTAINER_ID)
    const file = this.containerExitPath(cid)
    return this.#call('containerExitRead', [cid], { doing: `cannot read the exit record of container ${cid}` },
      (json) => json === null ? null : parseContainerExit(json, file))
  }

  /** The container's {"exit_code":N} (read without blocking, capped), or null when it has not exited. */
  readContainerExit (containerId: string): Promise<ContainerExit | null> { return promiseOf(() => this.#readContainerExit(containerId)) }
  readContainerExitSync (containerId: string): ContainerExit | null { return this.#readContainerExit(containerId).sync() }

  #writeContainerExit (containerId: string, exit: ContainerExit): NativeCall<void> {
    const cid = checkId(containerId, CONTAINER_ID)
    return this.#call('containerExitWrite', [this.isolateMounts, cid, formatContainerExit(exit)],
      { doing: `cannot write the exit record of container ${cid}`, hints: { 'not-prepared': 'prepare() the box first' } },
      () => undefined)
  }

  /**
   * Write a container's exit.json on the guest-visible side the host may
   * write (mounts/ when isolating, else shared/), atomically, under the box lock.
   */
  writeContainerExit (containerId: string, exit: ContainerExit): Promise<void> { return promiseOf(() => this.#writeContainerExit(containerId, exit)) }
  writeContainerExitSync (containerId: string, exit: ContainerExit): void { this.#writeContainerExit(containerId, exit).sync() }

  #publishBoot (options: PublishBootOptions): NativeCall<PublishBootResult> {
    const o = checkPublishBootOptions(options)
    return this.#call('bootPublish', [o.kernel, o.initramfs, o.legacy, o.format], {
      doing: o.legacy ? `cannot migrate the legacy boot files of box ${this.boxId}` : `cannot publish boot assets into box ${this.boxId}`,
      hints: {
        'not-prepared': 'prepare() the box first',
        'not-a-regular-file': 'the kernel and initramfs must be regular files',
        ...(o.legacy ? { ENOENT: 'there is no legacy boot/kernel to migrate: pass { kernel }' } : {}),
      },
    }, (r) => {
      const assets = bootAssetsOf(this.bootDir, parseBootManifest(r.manifest, joinPath(this.bootDir, 'current.json')))
      const pruneError = nativeErrorValue(r.pruneError)
      return {
        ...assets,
        kernelCopy: { method: r.kernel.method, bytes: r.kernel.bytes },
        ...(r.initramfs === null ? {} : { initramfsCopy: { method: r.initramfs.method, bytes: r.initramfs.bytes } }),
        pruned: r.pruned,
        legacyRemoved: r.legacyRemoved,
        leftoversRemoved: r.leftoversRemoved,
        ...(pruneError === undefined ? {} : { error: pruneError }),
      }
    })
  }

  /**
   * Publish a boot generation (under the box lock): copy kernel and
   * initramfs (reflinked where the filesystem can) into
   * boot/.staging-{gen}/, rename it to boot/generations/{gen}, write
   * current.json atomically, each step fsynced (files and directories), then
   * prune older generations and the legacy flat files. A crash at any point
   * leaves the old generation or the new one current; a failure removes
   * what the call made. Without `kernel`, the legacy boot/kernel (and
   * boot/initramfs) are migrated.
   */
  publishBoot (options: PublishBootOptions): Promise<PublishBootResult> { return promiseOf(() => this.#publishBoot(options)) }
  publishBootSync (options: PublishBootOptions): PublishBootResult { return this.#publishBoot(options).sync() }

  #readBoot (): NativeCall<BootAssets | null> {
    return this.#call('bootRead', [], { doing: `cannot read the boot assets of box ${this.boxId}` },
      (r) => r.manifest === null ? null : checkBootRead(this.bootDir, { ...r, manifest: r.manifest }))
  }

  /**
   * The current boot generation: current.json checked (version, format,
   * generation name) and both files re-hashed against it (EIO,
   * checksum-mismatch); null when none was published. Read beneath the box,
   * no symlink followed, without the lock.
   */
  readBoot (): Promise<BootAssets | null> { return promiseOf(() => this.#readBoot()) }
  readBootSync (): BootAssets | null { return this.#readBoot().sync() }

  #stageVolumeFile (src: string, options: StageVolumeFileOptions): NativeCall<StagedVolumeFile> {
    const a = checkStageArgs(src, options)
    return this.#call('boxStageVolumeFile', [this.isolateMounts, a.src, a.index, a.readOnly],
      { doing: `cannot stage ${a.src} as volume ${a.index} of box ${this.boxId}`, hints: STAGE_HINTS },
      (r) => stagedVolumeOf(this.sharedDir, a.index, r))
  }

  /**
   * Stage the regular file src as a single-file volume, under the box lock:
   * user-volumes/uservol{index}/{name} of the guest share, written through
   * the host-writable side (mounts/ when isolating, so the guest sees it at
   * shared/). Read-write: a hard link (EXDEV across filesystems); read-only:
   * a copy, a snapshot. Re-staging replaces the entry by a rename.
   */
  stageVolumeFile (src: string, options: StageVolumeFileOptions): Promise<StagedVolumeFile> {
    return promiseOf(() => this.#stageVolumeFile(src, options))
  }

  stageVolumeFileSync (src: string, options: StageVolumeFileOptions): StagedVolumeFile { return this.#stageVolumeFile(src, options).sync() }

  /** Rename exit -> exit.previous (one slot); false when there was none. */
  async rotateExit (): Promise<boolean> { return await this.exitFile.rotate() }
  rotateExitSync (): boolean { return this.exitFile.rotateSync() }

  /**
   * Paths a jailer grants the shim: all inside the box dir, so a sandbox
   * never reaches another box or the home. sandboxPolicy() is the full,
   * ordered policy with what is writable.
   */
  jailerPaths (): string[] {
    return [
      this.logsDir, this.binDir, this.socketsDir, this.tmpDir, this.bootDir, this.sharedDir,
      this.disksDir, this.guestRootfsDiskPath, this.diskPath, this.exitFilePath,
      this.consoleOutputPath, this.pidFilePath, this.stderrFilePath,
    ]
  }

  #prepare (): NativeCall<BoxPrepareResult> {
    // Fail on a socket path that cannot work before creating anything.
    this.sockets.checkLength()
    return this.#call('boxPrepare', [this.isolateMounts, ...this.#link], { doing: `cannot prepare box ${this.boxId}` },
      (r) => ({ boxDir: this.root, socketLink: linkResultOf(r.link), repaired: r.repaired }))
  }

  /**
   * Under the box lock: the box dir, sockets/, the socket link, tmp/,
   * disks/, the mounts dir and logs/, in BoxLite's order (modes 0755
   * whatever the umask). shared/ is left to mountShared() when isolating.
   * Idempotent; repairs a partly prepared box; a box removed by a racing
   * cleanup is made again, so the result is always a complete box.
   */
  prepare (): Promise<BoxPrepareResult> { return promiseOf(() => this.#prepare()) }
  prepareSync (): BoxPrepareResult { return this.#prepare().sync() }

  #mountShared (options: MountSharedOptions): NativeCall<MountSharedResult> {
    const opts = args.options(options, 'options', ['require', 'api'])
    const require = opts.require === undefined ? 'any' : args.oneOf(opts.require, 'options.require', ['any', 'read-only'])
    const api = mountApi(opts.api)
    if (!this.isolateMounts) {
      throw layoutError('EINVAL', 'not-isolated',
        `box ${this.boxId} does not isolate mounts: the host writes ${this.sharedDir} directly, so there is ` +
        'nothing to mount. Create the layout with { isolateMounts: true } to show mounts/ read-only at shared/',
        { path: this.sharedDir })
    }
    const ctx: ErrorContext = { doing: `cannot show ${this.mountsDir} read-only at ${this.sharedDir}`, hints: MOUNT_HINTS }
    return this.#call('sharedMount', [require === 'read-only', api === 'legacy'], ctx, (r) => {
      const out: MountSharedResult = {
        method: r.method,
        readOnly: r.method !== 'symlink',
        source: this.mountsDir,
        target: this.sharedDir,
        reused: r.reused,
      }
      if (r.fallback !== null) {
        out.error = toLayoutError(r.fallback, { doing: `${this.sharedDir} is a symlink to mounts/, not a read-only mount` }) as LayoutError
      }
      return out
    })
  }

  /** Show mounts/ read-only at shared/ (under the box lock); see MountSharedResult. */
  mountShared (options: MountSharedOptions = {}): Promise<MountSharedResult> { return promiseOf(() => this.#mountShared(options)) }
  mountSharedSync (options: MountSharedOptions = {}): MountSharedResult { return this.#mountShared(options).sync() }

  #unmountShared (): NativeCall<UnmountResult> {
    return this.#call('sharedUnmount', [], { doing: `cannot unmount ${this.sharedDir}` }, (r) => r)
  }

  /** Detach the shared mount (every stacked one), or remove the symlink fallback. */
  unmountShared (): Promise<UnmountResult> { return promiseOf(() => this.#unmountShared()) }
  unmountSharedSync (): UnmountResult { return this.#unmountShared().sync() }

  #sharedState (): NativeCall<SharedState> {
    return this.#call('sharedInspect', [true], { doing: `cannot inspect ${this.sharedDir}` }, sharedStateOf)
  }

  /** What is at shared/ now, by statx mount ids and statvfs flags. */
  sharedState (): Promise<SharedState> { return promiseOf(() => this.#sharedState()) }
  sharedStateSync (): SharedState { return this.#sharedState().sync() }

  #installShim (shimPath: string, options: InstallShimOptions): NativeCall<InstallShimResult> {
    args.path(shimPath, 'shimPath', { why: 'installShim() needs the absolute path of the shim binary' })
    const mode = cloneMode(args.options(options, 'options', ['mode']).mode)
    // The binding's file records are fresh objects of exactly InstalledFile's shape: handed over as they are.
    return this.#call('shimInstall', [shimPath, mode], { doing: `cannot install the shim into box ${this.boxId}`, hints: SHIM_HINTS },
      (files) => ({ binDir: this.binDir, files }))
  }

  /**
   * Copy the shim and every libkrunfw.* sibling into bin/ (under the box
   * lock): reflink/clonefile, else copy_file_range, else read/write; each
   * installed atomically with the source's mode, skipped when unchanged.
   */
  installShim (shimPath: string, options: InstallShimOptions = {}): Promise<InstallShimResult> {
    return promiseOf(() => this.#installShim(shimPath, options))
  }

  installShimSync (shimPath: string, options: InstallShimOptions = {}): InstallShimResult {
    return this.#installShim(shimPath, options).sync()
  }

  #writeCa (ca: CaMaterial): NativeCall<void> {
    const { cert, key } = args.options(ca, 'ca', ['cert', 'key'])
    const material: BoxOpArgs<'boxWriteCa'> = [args.bytes(cert, 'ca.cert', CA_MATERIAL_MAX), args.bytes(key, 'ca.key', CA_MATERIAL_MAX)]
    return this.#call('boxWriteCa', material, {
      doing: `cannot write the CA of box ${this.boxId}`,
      hints: { 'not-prepared': 'prepare() the box first' },
    }, () => undefined)
  }

  /** ca/ (0700) with cert.pem (0644) and key.pem (0600), each written atomically, under the box lock. */
  writeCa (ca: CaMaterial): Promise<void> { return promiseOf(() => this.#writeCa(ca)) }
  writeCaSync (ca: CaMaterial): void { this.#writeCa(ca).sync() }

  #cleanup (options: CleanupOptions): NativeCall<CleanupResult> {
    const force = checkCleanupOptions(options).force === true
    return this.#call('boxCleanup', [...this.#link, !force], { doing: `cannot clean up box ${this.boxId}`, hints: CLEANUP_HINTS }, (r) => {
      const socketLink: CleanupResult['socketLink'] = { removed: r.linkRemoved }
      if (r.linkError !== null) {
        socketLink.error = toLayoutError(r.linkError, { doing: `cannot remove the socket link ${this.sockets.bindingDir}` }) as LayoutError
      }
      return { removed: r.removed, entries: r.entries, unmounted: r.unmounted, socketLink }
    })
  }

  /**
   * Under the box lock: remove the socket link, detach every mount inside
   * the box, rename it out of sight and remove it without following
   * symlinks or crossing into a mount. Idempotent. EBUSY (reason
   * mount-in-the-way, nothing below it deleted) if a mount cannot be
   * detached. EBUSY (reason shim-alive, nothing touched) when shim.pid names
   * a live shim, judged under the lock as gc and inspect judge it (alive
   * with the recorded start time, or alive with none recorded), unless
   * `force`. A pid file that cannot be read does not stop it.
   */
  cleanup (options: CleanupOptions = {}): Promise<CleanupResult> { return promiseOf(() => this.#cleanup(options)) }
  cleanupSync (options: CleanupOptions = {}): CleanupResult { return this.#cleanup(options).sync() }

  #inspect (): NativeCall<BoxInspection> {
    return this.#call('boxInspect', [...this.#link, SOCKET_NAMES], { doing: `cannot inspect box ${this.boxId}` },
      (r) => inspectionOf(this, r))
  }

  /**
   * Everything the layout can say about this box, read without waiting on
   * anything: shared/ state, the socket link, bin files and whether they
   * are reflinked, the shim's identity, the exit records.
   */
  inspect (): Promise<BoxInspection> { return promiseOf(() => this.#inspect()) }
  inspectSync (): BoxInspection { return this.#inspect().sync() }

  #policy<R> (options: SandboxPolicyOptions, shape: (facts: NativePolicyFacts) => R): NativeCall<R> {
    return this.#call('boxPolicyFacts', [policyHostPaths(this, options), options.backingRoots ?? [], false], POLICY_CONTEXT(this), shape)
  }

  #seatbelt (unchecked: unknown): NativeCall<string> {
    const options = checkSeatbeltOptions(unchecked)
    const hosts = [...policyHostPaths(this, options), ...seatbeltHostPaths(this, options)]
    return this.#call('boxPolicyFacts', [hosts, options.backingRoots ?? [], true], POLICY_CONTEXT(this),
      (f) => seatbeltProfileOf(this, f, options))
  }

  #policyCall<R> (options: unknown, grants: (facts: NativePolicyFacts, o: BwrapOptions) => R): NativeCall<R> {
    const o = checkPolicyOptions(options)
    return this.#policy(o, (f) => grants(f, o))
  }

  /**
   * The ordered grants BoxLite's jailer gives this box's shim, for the paths
   * that exist now: tmp/ and logs/ (rw); sockets/, its link (rw) and
   * /tmp/bl-{uid} (ro); exit and the two disks (rw); each disk's backing
   * chain (ro, parent dir then file); bin/ and boot/ (ro); shared/ (rw);
   * {home}/bases, the system CA stores (ro); the volumes given. Never
   * mounts/, shim.pid or shim.stderr; never a symlink.
   */
  sandboxPolicy (options: SandboxPolicyOptions = {}): Promise<PolicyGrant[]> {
    return promiseOf(() => this.#policyCall(options, (f, o) => grantsOf(this, f, o)))
  }

  sandboxPolicySync (options: SandboxPolicyOptions = {}): PolicyGrant[] {
    return this.#policyCall(options, (f, o) => grantsOf(this, f, o)).sync()
  }

  /** bubblewrap's argv running command under sandboxPolicy(), as BoxLite's Linux jailer does. */
  async bwrapArgs (command: string[], options: BwrapOptions = {}): Promise<string[]> {
    const argv = checkCommand(command)
    return await this.#policyCall(options, (f, o) => bwrapArgsOf(this, f, argv, o)).async()
  }

  bwrapArgsSync (command: string[], options: BwrapOptions = {}): string[] {
    const argv = checkCommand(command)
    return this.#policyCall(options, (f, o) => bwrapArgsOf(this, f, argv, o)).sync()
  }

  /**
   * BoxLite's macOS seatbelt profile (SBPL text for sandbox-exec -p): the
   * sandboxPolicy() grants as reads and writes, the AF_UNIX endpoints by
   * binding and real path, IP networking only with network (default on);
   * every path as macOS resolves it (/tmp is /private/tmp). Works on any host.
   */
  seatbeltProfile (options: SeatbeltOptions = {}): Promise<string> { return promiseOf(() => this.#seatbelt(options)) }
  seatbeltProfileSync (options: SeatbeltOptions = {}): string { return this.#seatbelt(options).sync() }

  readonly #boxCall: BoxCall = (name, args, ctx, shape) => this.#call(name, args, ctx, shape)

  /**
   * Run command (the shim) under this platform's jail, as BoxLite's runtime
   * does: under the box lock, sockets/ and the link, exit rotated to
   * exit.previous and re-created empty, logs/console.log, shim.stderr (the
   * shim's stderr, appended; never through a symlink); then bubblewrap
   * (Linux) or sandbox-exec with seatbeltProfile() (macOS). Resolves once
   * shim.pid names the jailed process with its fingerprint; `exit` settles
   * when it ended and the exit record is in place (the shim's own is never
   * overwritten). See docs/design.md, "The shim's life".
   */
  async jail (command: string[], options: JailOptions = {}): Promise<JailedShim> {
    return await jail(this, this.#boxCall, command, options)
  }

  /** The argv jail() would run on platform (default: this one), changing nothing; any host. */
  async jailArgv (command: string[], options: JailOptions & { platform?: JailPlatform } = {}): Promise<string[]> {
    return await jailArgv(this, this.#boxCall, command, options)
  }
}

function checkCleanupOptions (options: unknown): CleanupOptions {
  const o = args.options(options, 'options', ['force'])
  return o.force === undefined ? {} : { force: args.boolean(o.force, 'options.force') }
}
