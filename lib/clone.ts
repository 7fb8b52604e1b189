// cloneFile (SPEC §3): reflink/clonefile when the filesystem can, a real
// copy when it cannot (and you allow it), always installed atomically.
import path from 'node:path'
import { invalidArg } from './errors.ts'
import {
  nativeOp, perform, runAsync, runSync,
  type NativeCloneJob, type NativeCloneMethod, type NativeCloneMode, type Plan,
} from './native.ts'

export type CloneMode = NativeCloneMode
export type CloneMethod = NativeCloneMethod

export interface CloneOptions {
  /**
   * 'auto' (default): reflink/clonefile, else copy_file_range, else
   * read/write. 'force': reflink/clonefile or fail (ENOTSUP: the filesystem
   * cannot; EXDEV: different filesystems). 'never': always a real copy.
   */
  mode?: CloneMode
  /** Skip when dst already has src's size, mtime and mode. Default false. */
  skipUnchanged?: boolean
}

export interface CloneResult {
  src: string
  dst: string
  method: CloneMethod
  /** Size of the file installed at dst. */
  bytes: number
}

const MODES = new Set<CloneMode>(['auto', 'force', 'never'])

function job (src: string, dst: string, options: CloneOptions): NativeCloneJob {
  if (typeof src !== 'string' || src === '') throw invalidArg('clone source must be a non-empty path')
  if (typeof dst !== 'string' || dst === '') throw invalidArg('clone destination must be a non-empty path')
  const mode = options.mode ?? 'auto'
  if (!MODES.has(mode)) throw invalidArg(`clone mode must be 'auto', 'force' or 'never'; got ${JSON.stringify(mode)}`)
  return { src: path.resolve(src), dst: path.resolve(dst), mode, skipUnchanged: options.skipUnchanged ?? false }
}

const CLONE_HINTS = {
  ENOTSUP: "this filesystem cannot reflink (ext4, tmpfs, …); use mode 'auto' to copy instead, or put both files on XFS (reflink=1), btrfs or APFS",
  EXDEV: "source and destination are on different filesystems, where no clone is possible; use mode 'auto' to copy",
}

/** Clone a batch in one native call; stops at the first failure. */
export function * cloneFilesPlan (jobs: NativeCloneJob[]): Plan<CloneResult[]> {
  const results = yield * perform(nativeOp('cloneFiles', [jobs], { doing: 'cannot install the file', hints: CLONE_HINTS }))
  return results.map((r, i) => ({ src: jobs[i]!.src, dst: jobs[i]!.dst, method: r.method, bytes: r.bytes }))
}

function * cloneFilePlan (src: string, dst: string, options: CloneOptions): Plan<CloneResult> {
  const [result] = yield * cloneFilesPlan([job(src, dst, options)])
  return result!
}

/**
 * Copy src to dst: written under a temporary name beside dst, given src's
 * mode and mtime, renamed into place (readers see the old or the new file,
 * never a partial one). dst is always a new inode, never a hard link.
 */
export function cloneFile (src: string, dst: string, options: CloneOptions = {}): Promise<CloneResult> {
  return runAsync(cloneFilePlan(src, dst, options))
}

export function cloneFileSync (src: string, dst: string, options: CloneOptions = {}): CloneResult {
  return runSync(cloneFilePlan(src, dst, options))
}

export function makeCloneJob (src: string, dst: string, options: CloneOptions = {}): NativeCloneJob {
  return job(src, dst, options)
}
