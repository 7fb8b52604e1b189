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

export { BootFiles, KERNEL_FORMATS, BOOT_MANIFEST_VERSION, formatBootManifest, parseBootManifest, isGenerationName } from './boot.ts'
export type { BootManifest, BootAssets, KernelFormat, PublishBootOptions, PublishBootResult, BootCopyMethod } from './boot.ts'

export type { BoxEntry, BoxState, BoxStatus } from './box-state.ts'

export type { BoxInspection, BinFile, SocketLinkState, SocketProbeState, ExitView, ShimState, SharedState } from './inspect.ts'

export { CA_STORES, SYSTEM_RO_BINDS, DEVICE_BINDS, NESTED_VIRT_PROBES } from './policy.ts'
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

export { diskUsage, diskUsageSync } from './disk-usage.ts'
export type { DiskUsageReport, DiskUsageTotal, DiskUsageOptions, DiskUsageProgress, UsageBytes, AreaUsage, BoxUsage } from './disk-usage.ts'

export { DEFAULT_GC_GRACE_SECONDS } from './gc.ts'
export type { GcOptions, GcReport, GcAction, GcActionKind, GcWarning } from './gc.ts'

export { DEFAULT_STORAGE_GRACE_SECONDS } from './storage-gc.ts'
export type {
  StorageGcOptions, StorageGcReport, StorageGcAction, StorageGcKind, StorageGcWarning, StorageGcDatabase, StorageGcTotal,
} from './storage-gc.ts'

export type { HomeMetricsOptions, MetricsUsage } from './metrics.ts'

export type {
  CliBoxBootPublishJson, CliBoxBootShowJson, CliBoxCaJson, CliBoxCleanupJson, CliBoxInspectJson, CliBoxJailJson,
  CliBoxListJson, CliBoxPrepareJson, CliDemoJson, CliDfJson, CliDoctorJson, CliErrorJson, CliGcJson, CliGcStorageJson,
  CliIdJson, CliPrepareJson, CliVersionJson,
} from './cli-json.ts'
export type { StageVolumeFileOptions, StagedVolumeFile } from './volumes.ts'
