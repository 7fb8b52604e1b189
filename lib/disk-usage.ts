// Where a home's disk goes, reflink-aware: one native walk of the home
// (diskUsage in native/core/posix/usage.cc) reads every file's size,
// allocation and extent map; this module names the numbers and polls the
// walk's progress counters. See docs/design.md, "Disk usage".
import * as args from './args.ts'
import { nativeCall, type NativeCall, type NativeDiskUsage, type NativeUsageBytes } from './native.ts'

/**
 * Bytes of a set of files. sharedBytes, exclusiveBytes and physicalBytes
 * come from the extent map (FIEMAP) and are null where it cannot be read
 * (macOS, a filesystem without FIEMAP): see DiskUsageReport.extentsKnown.
 */
export interface UsageBytes {
  /** Entries counted: files, directories, symlinks. */
  files: number
  /** The sum of sizes (du --apparent-size). */
  apparentBytes: number
  /** The sum of st_blocks × 512 (du). */
  allocatedBytes: number
  /** Bytes in extents the filesystem flags shared with another file (a reflink, a dedupe). */
  sharedBytes: number | null
  /** allocatedBytes − sharedBytes: blocks only these files use. */
  exclusiveBytes: number | null
  /**
   * What these files add to the filesystem: exclusiveBytes, plus each shared
   * physical range the first time the walk meets it in the home (names in
   * byte order, depth first), so every shared range is counted once across
   * the whole report.
   */
  physicalBytes: number | null
}

export interface AreaUsage extends UsageBytes {
  /** "bases", "boxes", "images/layers" (images/ by subdirectory), "logs", "tmp", "other" (the rest of the home). */
  name: string
}

export interface BoxUsage extends UsageBytes {
  /** The entry's name in boxes/ (a box id, or a trash or stray entry). */
  id: string
}

export interface DiskUsageTotal extends UsageBytes {
  /** What `du -s` of the home says: allocatedBytes, each shared extent counted once per file. */
  duBytes: number
  /** The home's filesystem as a whole (statvfs): used and total bytes. */
  fsUsedBytes: number
  fsSizeBytes: number
}

export interface DiskUsageReport {
  home: string
  /**
   * Whether the extent map could be read for every file with blocks. false
   * on macOS (APFS does not tell user space which blocks a clone shares) and
   * on filesystems without FIEMAP: shared, exclusive and physical bytes are
   * then null everywhere.
   */
  extentsKnown: boolean
  total: DiskUsageTotal
  areas: AreaUsage[]
  boxes: BoxUsage[]
  /** Entries counted by their stat alone or not at all. */
  skipped: {
    /** Mount points (a box's shared/ bind mount, say): not entered, counted where they live. */
    mounts: number
    /** FIFOs, sockets, devices: stat'ed, never opened. */
    special: number
    /** Further names of a file already counted (du's rule). */
    hardLinks: number
  }
}

/** Where a scan is: entries counted and their allocated bytes so far. */
export interface DiskUsageProgress {
  files: number
  bytes: number
}

export interface DiskUsageOptions {
  /**
   * Called while the scan runs (Promise form only), at most every
   * progressIntervalMs, with the counts so far.
   */
  onProgress?: (progress: DiskUsageProgress) => void
  /** Default 200. */
  progressIntervalMs?: number
}

function usageOf (b: NativeUsageBytes, known: boolean): UsageBytes {
  return {
    files: b.files,
    apparentBytes: b.apparentBytes,
    allocatedBytes: b.allocatedBytes,
    sharedBytes: known ? b.sharedBytes : null,
    exclusiveBytes: known ? b.exclusiveBytes : null,
    physicalBytes: known ? b.physicalBytes : null,
  }
}

function reportOf (home: string, r: NativeDiskUsage): DiskUsageReport {
  const known = r.extentsKnown
  return {
    home,
    extentsKnown: known,
    total: { ...usageOf(r.total, known), duBytes: r.total.allocatedBytes, fsUsedBytes: r.fsUsedBytes, fsSizeBytes: r.fsSizeBytes },
    areas: r.areas.map((a) => ({ name: a.name, ...usageOf(a, known) })),
    boxes: r.boxes.map((b) => ({ id: b.name, ...usageOf(b, known) })),
    skipped: { mounts: r.mountsSkipped, special: r.specialSkipped, hardLinks: r.hardLinksSkipped },
  }
}

function usageCall (home: string, counters: BigUint64Array | null): NativeCall<DiskUsageReport> {
  return nativeCall('diskUsage', [home, counters], { doing: `cannot measure the disk usage of ${home}` },
    (r) => reportOf(home, r))
}

/**
 * The disk usage of a BoxLite home, per box, per area and in total (one
 * native walk; see UsageBytes for each number). ENOENT (not-prepared) when
 * the home does not exist.
 */
export async function diskUsage (home: string, options: DiskUsageOptions = {}): Promise<DiskUsageReport> {
  args.path(home, 'home')
  const o = args.options(options, 'options', ['onProgress', 'progressIntervalMs'])
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw args.refuse('options.onProgress', 'a function', o.onProgress)
  const onProgress = o.onProgress as DiskUsageOptions['onProgress']
  // setInterval's bound: a longer delay is taken as 1 ms.
  const interval = o.progressIntervalMs === undefined ? 200 : args.integer(o.progressIntervalMs, 'options.progressIntervalMs', 1, 0x7fffffff)
  if (onProgress === undefined) return await usageCall(home, null).async()
  // The walk writes [files, bytes] into this array from its thread; a timer
  // reads it here. Nothing is queued per file.
  const counters = new BigUint64Array(2)
  const timer = setInterval(() => { onProgress({ files: Number(counters[0]), bytes: Number(counters[1]) }) }, interval)
  try {
    return await usageCall(home, counters).async()
  } finally {
    clearInterval(timer)
  }
}

export function diskUsageSync (home: string): DiskUsageReport { return usageCall(args.path(home, 'home'), null).sync() }
