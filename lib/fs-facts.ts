// Filesystem facts (SPEC §5): one native call each, never mountinfo.
import { callNative, nativeOp, perform, runAsync, runSync, type NativeSameFilesystem, type Plan } from './native.ts'
import { invalidArg } from './errors.ts'

export interface FsFacts {
  /** st_dev as Node's fs.Stats reports it (comparable with fs.statSync().dev). */
  dev: number
  devMajor: number
  devMinor: number
  /** statx STATX_MNT_ID; null on kernels (or macOS) that have none. */
  mountId: bigint | null
  fsType: { name: string, magic: number }
  readOnly: boolean
  nosuid: boolean
  nodev: boolean
  noexec: boolean
  isMountRoot: boolean
}

export interface SameFilesystemResult {
  same: boolean
  paths: string[]
  /** "major:minor" per path. */
  devices: string[]
  /** The first path off the majority's device (null when all agree). */
  odd: { index: number, path: string, device: string } | null
}

/** Linux's st_dev encoding (glibc makedev), which is what Node reports. */
export function makeDev (major: number, minor: number): number {
  if (process.platform === 'darwin') return ((major & 0xff) << 24) | (minor & 0xffffff)
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 2 ** 32
}

function * probePlan (path: string): Plan<FsFacts> {
  if (typeof path !== 'string' || path === '') throw invalidArg('probe() needs a path')
  const f = yield * perform(nativeOp('probe', [path], { doing: 'cannot probe the filesystem' }))
  return {
    dev: makeDev(f.devMajor, f.devMinor),
    devMajor: f.devMajor,
    devMinor: f.devMinor,
    mountId: f.mountId,
    fsType: { name: f.fsName, magic: f.fsMagic },
    readOnly: f.readOnly,
    nosuid: f.nosuid,
    nodev: f.nodev,
    noexec: f.noexec,
    isMountRoot: f.isMountRoot,
  }
}

function checkPaths (paths: string[]): void {
  if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== 'string' || p === '')) {
    throw invalidArg('sameFilesystem() needs a non-empty array of paths')
  }
}

const SAME_FS_CTX = { doing: 'cannot compare filesystems' }

function sameFilesystemResult (paths: string[], r: NativeSameFilesystem): SameFilesystemResult {
  const devices = r.devices
  if (r.same) return { same: true, paths: [...paths], devices, odd: null }
  // The odd one out is measured against the majority, so with tmp on its
  // own tmpfs the answer is tmp, not whichever path happens to come second.
  const counts = new Map<string, number>()
  for (const d of devices) counts.set(d, (counts.get(d) ?? 0) + 1)
  let majority = devices[0]!
  for (const d of devices) if (counts.get(d)! > counts.get(majority)!) majority = d
  const index = devices.findIndex((d) => d !== majority)
  return {
    same: r.same,
    paths: [...paths],
    devices,
    odd: index < 0 ? null : { index, path: paths[index]!, device: devices[index]! },
  }
}

export function * sameFilesystemPlan (paths: string[]): Plan<SameFilesystemResult> {
  checkPaths(paths)
  return sameFilesystemResult(paths, yield * perform(nativeOp('sameFilesystem', [paths], SAME_FS_CTX)))
}

export function probeSync (path: string): FsFacts {
  return runSync(probePlan(path))
}

export function probe (path: string): Promise<FsFacts> {
  return runAsync(probePlan(path))
}

/** Whether all paths are on one filesystem, in one native call. */
export function sameFilesystemSync (paths: string[]): SameFilesystemResult {
  // Direct, not through a plan: this is called on hot paths.
  checkPaths(paths)
  return sameFilesystemResult(paths, callNative((b) => b.sameFilesystem(paths), SAME_FS_CTX))
}

export function sameFilesystem (paths: string[]): Promise<SameFilesystemResult> {
  return runAsync(sameFilesystemPlan(paths))
}

function * sharesExtentsPlan (path: string): Plan<boolean | null> {
  if (typeof path !== 'string' || path === '') throw invalidArg('sharesExtents() needs a path')
  return yield * perform(nativeOp('extentsShared', [path], { doing: 'cannot read the extent map' }))
}

/**
 * Whether a file shares data extents with another (it is a reflink copy, or
 * was reflinked from), read from the kernel's extent map (FIEMAP). null when
 * the filesystem cannot say (tmpfs, macOS).
 */
export function sharesExtents (path: string): Promise<boolean | null> {
  return runAsync(sharesExtentsPlan(path))
}

export function sharesExtentsSync (path: string): boolean | null {
  return runSync(sharesExtentsPlan(path))
}
