// boxlite-layout: BoxLite's host-side filesystem layout and the privileged
// syscalls it needs. This file is the public API; everything else is internal.
export { LayoutError, ERRNO_CODES } from './errors.ts'
export type { LayoutErrorCode, LayoutErrorReason, ErrnoCode } from './errors.ts'

export { BoxId, mintBoxId, validateBoxId, validateContainerId, validateVolumeName, isValidId, ID_MAX_BYTES } from './ids.ts'

export { HomeLayout, resolveHome, HomeDirs } from './home.ts'
export type { HomeLayoutOptions, HomePrepareResult } from './home.ts'

export { ImageLayout } from './image.ts'

export { BoxLayout, BoxFiles, SHIM_LIBRARY_PREFIX } from './box.ts'
export type {
  BoxLayoutOptions, BoxPrepareResult, CleanupOptions, CleanupResult, CaMaterial,
  MountSharedOptions, MountSharedResult, MountMethod, UnmountResult,
  InstallShimOptions, InstallShimResult, InstalledFile,
} from './box.ts'

export type { BoxEntry, BoxState, BoxStatus } from './box-state.ts'

export type { BoxInspection, BinFile, SocketLinkState, ExitView, ShimState, SharedState } from './inspect.ts'

export { CA_STORES, SYSTEM_RO_BINDS, DEVICE_BINDS } from './policy.ts'
export type { PolicyGrant, VolumeGrant, SandboxPolicyOptions, BwrapOptions } from './policy.ts'

export type { JailOptions, JailedShim, ShimExit, JailPlatform, JailStdio } from './jail.ts'
export type { SeatbeltOptions } from './seatbelt.ts'

export { SharedGuestLayout, SharedContainerLayout, SharedDirs, GUEST_SHARED_ROOT } from './shared-guest.ts'

export { BoxSockets, SocketNames, SOCKET_PATH_LIMIT, SUN_PATH_MAX, socketLinkParent } from './sockets.ts'
export type { EnsureResult, PolicyPath } from './sockets.ts'

export { listenUnix, connectUnix, fitsSunPath } from './unix-socket.ts'
export type { UnixSocketOptions, ListenUnixOptions } from './unix-socket.ts'

export {
  probe, probeSync, sameFilesystem, sameFilesystemSync, sharesExtents, sharesExtentsSync, newMountApiAvailable,
} from './fs-facts.ts'
export type { FsFacts, SameFilesystemResult } from './fs-facts.ts'

export { cloneFile, cloneFileSync } from './clone.ts'
export type { CloneMode, CloneMethod, CloneOptions, CloneResult } from './clone.ts'

export { RuntimeLock, LockManager, LOCK_FD_ENV, inheritedLockFd } from './locks.ts'

export { PidFile, parsePidFile, judgeIdentity } from './pid-file.ts'
export type { PidRecord, ProcessIdentity, ProcessIdentityKind } from './pid-file.ts'

export {
  ExitFile, parseExitRecord, formatExitRecord, signalExit, exitRecordOf, parseContainerExit, formatContainerExit,
  SIGNAL_EXIT_BASE, PANIC_EXIT_CODE, EXIT_RECORD_CAP,
} from './exit-record.ts'
export type { ExitRecord, ExitErrorKind, ContainerExit } from './exit-record.ts'

export { DEFAULT_GC_GRACE_SECONDS } from './gc.ts'
export type { GcOptions, GcReport, GcAction, GcActionKind, GcWarning } from './gc.ts'

export type {
  CliBoxCaJson, CliBoxCleanupJson, CliBoxInspectJson, CliBoxJailJson, CliBoxListJson, CliBoxPrepareJson, CliDemoJson,
  CliDoctorJson, CliErrorJson, CliGcJson, CliIdJson, CliPrepareJson, CliVersionJson,
} from './cli-json.ts'
