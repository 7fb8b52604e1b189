// boxlite-layout: BoxLite's host-side filesystem layout and the privileged
// syscalls it needs. This file is the public API; everything else is internal.
export { LayoutError } from './errors.ts'
export type { LayoutErrorInit } from './errors.ts'

export { BoxId, mintBoxId, validateBoxId, validateContainerId, validateVolumeName, isValidId, ID_MAX_BYTES } from './ids.ts'

export { HomeLayout, resolveHome, HomeDirs } from './home.ts'
export type { HomeLayoutOptions, HomePrepareResult } from './home.ts'

export { ImageLayout } from './image.ts'

export { BoxLayout, BoxFiles } from './box.ts'
export type { BoxLayoutOptions, BoxPrepareResult, CleanupResult, CaMaterial } from './box.ts'

export { SharedGuestLayout, SharedContainerLayout, SharedDirs, GUEST_SHARED_ROOT } from './shared-guest.ts'

export type { MountSharedOptions, MountSharedResult, MountMethod, SharedState, UnmountResult } from './shared-mount.ts'

export { BoxSockets, SocketNames, SOCKET_PATH_LIMIT, SUN_PATH_MAX, socketLinkParent } from './sockets.ts'
export type { EnsureResult, PolicyPath } from './sockets.ts'

export { listenUnix, connectUnix, fitsSunPath } from './unix-socket.ts'
export type { UnixSocketOptions, ListenUnixOptions } from './unix-socket.ts'

export { probe, probeSync, sameFilesystem, sameFilesystemSync, sharesExtents, sharesExtentsSync } from './fs-facts.ts'
export type { FsFacts, SameFilesystemResult } from './fs-facts.ts'

export { cloneFile, cloneFileSync } from './clone.ts'
export type { CloneMode, CloneMethod, CloneOptions, CloneResult } from './clone.ts'

export { SHIM_LIBRARY_PREFIX } from './shim.ts'
export type { InstallShimOptions, InstallShimResult, InstalledFile } from './shim.ts'

export { RuntimeLock, LockManager } from './locks.ts'

export { PidFile, parsePidFile, formatPidFile, processStartTime } from './pid-file.ts'
export type { PidRecord, ProcessIdentity, ProcessIdentityKind } from './pid-file.ts'

export {
  ExitFile, parseExitRecord, formatExitRecord, signalExit, parseContainerExit, formatContainerExit,
  SIGNAL_EXIT_BASE, PANIC_EXIT_CODE,
} from './exit-record.ts'
export type { ExitRecord, ExitErrorKind, ContainerExit } from './exit-record.ts'

export type { GcOptions, GcReport, GcAction, GcActionKind } from './gc.ts'
