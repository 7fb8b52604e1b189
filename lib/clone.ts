// cloneFile: reflink/clonefile when the filesystem can, a real copy when it
// cannot (and you allow it), always installed atomically.
import path from 'node:path'
import * as args from './args.ts'
import { nativeCall, type NativeCall, type NativeCloneMethod, type NativeCloneMode } from './native.ts'

export type CloneMode = NativeCloneMode
export type CloneMethod = NativeCloneMethod

export interface CloneOptions {
  /**
   * 'auto' (default): reflink/clonefile, else copy_file_range, else
   * read/write. 'force': reflink/clonefile or fail (ENOTSUP: the filesystem
   * cannot; EXDEV: different filesystems; reason no-reflink). 'never':
   * always a real copy.
   */
  mode?: CloneMode
}

export interface CloneResult {
  src: string
  dst: string
  method: CloneMethod
  /** Size of the file installed at dst. */
  bytes: number
}

/** The clone mode of cloneFile() and installShim() (default 'auto'). */
export function cloneMode (mode: unknown): CloneMode {
  return mode === undefined ? 'auto' : args.oneOf(mode, 'options.mode', ['auto', 'force', 'never'])
}

function cloneCall (src: string, dst: string, options: CloneOptions): NativeCall<CloneResult> {
  const mode = cloneMode(args.options(options, 'options', ['mode']).mode)
  // Resolved against the working directory, then checked again: a short
  // relative name can still make a path too long.
  const from = args.path(path.resolve(args.path(src, 'src', { absolute: false })), 'src')
  const to = args.path(path.resolve(args.path(dst, 'dst', { absolute: false })), 'dst')
  return nativeCall('cloneFile', [from, to, mode], { doing: 'cannot install the file' },
    (r) => ({ src: from, dst: to, method: r.method, bytes: r.bytes }))
}

/**
 * Copy src (a regular file) to dst: written under a temporary name beside
 * dst, given src's mode and mtime, renamed into place (readers see the old
 * or the new file, never a partial one). dst is always a new inode.
 */
export async function cloneFile (src: string, dst: string, options: CloneOptions = {}): Promise<CloneResult> {
  return await cloneCall(src, dst, options).async()
}

export function cloneFileSync (src: string, dst: string, options: CloneOptions = {}): CloneResult {
  return cloneCall(src, dst, options).sync()
}
