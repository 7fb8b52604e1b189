// Filesystem facts: one native call each, never mountinfo.
import * as args from './args.ts'
import { binding, nativeCall, type NativeCall } from './native.ts'

export interface FsFacts {
  /** st_dev as Node's fs.Stats reports it (comparable with fs.statSync().dev). */
  dev: number
  /** "major:minor" */
  device: string
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

/**
 * st_dev from major:minor as Node reports it on `platform`, so the two
 * compare. Linux: glibc's makedev into a u64 (the kernel's majors have 12
 * bits, its minors 20). macOS: dev_t is an int32 with the major in the top 8
 * bits, so a major of 128 or more makes it negative, and libuv widens it to
 * its u64 st_dev by sign extension: Node then shows 2^64 + dev, rounded to a
 * double. Written with arithmetic: JS's 32-bit signed bit operators turned
 * such a major into a negative number that matched nothing.
 */
export function makeDev (major: number, minor: number, platform: NodeJS.Platform = process.platform): number {
  if (platform === 'darwin') {
    const dev = (major % 0x100) * 0x1000000 + (minor % 0x1000000)
    return dev < 0x80000000 ? dev : 2 ** 64 - 2 ** 32 + dev
  }
  return (minor % 0x100) + (major % 0x1000) * 0x100 + Math.floor(minor / 0x100) * 0x100000 + Math.floor(major / 0x1000) * 2 ** 44
}

function probeCall (path: string): NativeCall<FsFacts> {
  return nativeCall('probe', [args.path(path, 'path', { absolute: false })], { doing: 'cannot probe the filesystem' }, (f) => ({
    dev: makeDev(f.devMajor, f.devMinor),
    device: f.device,
    devMajor: f.devMajor,
    devMinor: f.devMinor,
    mountId: f.mountId,
    fsType: { name: f.fsName, magic: f.fsMagic },
    readOnly: f.readOnly,
    nosuid: f.nosuid,
    nodev: f.nodev,
    noexec: f.noexec,
    isMountRoot: f.isMountRoot,
  }))
}

/** Device, mount id, filesystem type and mount flags of path. */
export async function probe (path: string): Promise<FsFacts> { return await probeCall(path).async() }
export function probeSync (path: string): FsFacts { return probeCall(path).sync() }

/** The result for paths whose devices are known: the odd one is off the majority's device. */
export function sameFilesystemOf (paths: string[], devices: string[]): SameFilesystemResult {
  const counts = new Map<string, number>()
  for (const d of devices) counts.set(d, (counts.get(d) ?? 0) + 1)
  let majority = devices[0]!
  for (const d of devices) if (counts.get(d)! > counts.get(majority)!) majority = d
  const index = devices.findIndex((d) => d !== majority)
  return {
    same: index < 0,
    paths: [...paths],
    devices,
    odd: index < 0 ? null : { index, path: paths[index]!, device: devices[index]! },
  }
}

function sameFilesystemCall (paths: string[]): NativeCall<SameFilesystemResult> {
  const list = args.array(paths, 'paths', { nonEmpty: true }).map((p, i) => args.path(p, `paths[${i}]`, { absolute: false }))
  return nativeCall('sameFilesystem', [list], { doing: 'cannot compare filesystems' }, (devices) => sameFilesystemOf(list, devices))
}

/** Whether all paths are on one filesystem, in one native call; names the odd one out. */
export async function sameFilesystem (paths: string[]): Promise<SameFilesystemResult> { return await sameFilesystemCall(paths).async() }
export function sameFilesystemSync (paths: string[]): SameFilesystemResult { return sameFilesystemCall(paths).sync() }

function extentsCall (path: string): NativeCall<boolean | null> {
  return nativeCall('extentsShared', [args.path(path, 'path', { absolute: false })], { doing: 'cannot read the extent map' })
}

/**
 * Whether a file shares data extents with another (it is a reflink copy, or
 * was reflinked from), read from the kernel's extent map (FIEMAP). null when
 * the filesystem cannot say (tmpfs, macOS).
 */
export async function sharesExtents (path: string): Promise<boolean | null> { return await extentsCall(path).async() }
export function sharesExtentsSync (path: string): boolean | null { return extentsCall(path).sync() }

/**
 * Whether this kernel has the new mount API (open_tree, mount_setattr,
 * move_mount: Linux >= 5.12), with which mountShared() makes the tree
 * read-only before it becomes visible; false on macOS.
 */
export function newMountApiAvailable (): boolean {
  return binding().newMountApiAvailable()
}
