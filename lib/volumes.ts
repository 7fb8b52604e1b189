// Single-file volumes (docs/design.md#single-file-volumes): virtio-fs shares
// directories, so a host file a guest should see is staged into
// user-volumes/uservol{index}/{name} of the guest share and the guest binds
// that one entry. Read-write is a hard link (the guest writes the source
// itself); read-only is a copy, a snapshot taken at staging.
import * as args from './args.ts'
import type { NativeCloneMethod } from './native.ts'
import { joinPath, splitLast } from './paths.ts'

export interface StageVolumeFileOptions {
  /** The volume's 0-based position in the box's volume list: its tag is uservol{index}. */
  index: number
  /** A copy (a snapshot taken now) instead of a hard link of the source. Default false. */
  readOnly?: boolean
}

export interface StagedVolumeFile {
  /** The virtio-fs tag, also the staging directory's name: uservol{index}. */
  tag: string
  /** The directory shared under tag, as the guest share shows it (shared/user-volumes/{tag}). */
  shareDir: string
  /** The entry's name in shareDir (the source's file name): the guest's subpath. */
  name: string
  /** shareDir/name. */
  path: string
  /** hardlink (read-write), or how the read-only copy was made. */
  method: 'hardlink' | Exclude<NativeCloneMethod, 'skipped'>
  bytes: number
}

/** The staging root inside the guest share. */
export const USER_VOLUMES_DIR = 'user-volumes'

/** The virtio-fs tag of the volume at index (BoxLite's uservol{i}). */
export function volumeTag (index: number): string {
  return `uservol${index}`
}

/** The source and options checked before anything touches the disk. */
export function checkStageArgs (src: unknown, options: unknown): { src: string, index: number, readOnly: boolean } {
  const file = args.path(src, 'src')
  const name = splitLast(file)[1]
  if (file.endsWith('/') || name === '' || name === '.' || name === '..') {
    throw args.refuse('src', 'a path naming a file', file, 'Its name is the staged entry\'s')
  }
  if (options === undefined) throw args.refuse('options', 'an object { index, readOnly? }', options)
  const o = args.options(options, 'options', ['index', 'readOnly'])
  // The index is the volume's position (uservol{index}).
  const index = args.integer(o.index, 'options.index', 0, 0xffffffff)
  const readOnly = o.readOnly === undefined ? false : args.boolean(o.readOnly, 'options.readOnly')
  return { src: file, index, readOnly }
}

export function stagedVolumeOf (sharedDir: string, index: number, raw: { rel: string, method: string, bytes: number }): StagedVolumeFile {
  const tag = volumeTag(index)
  const shareDir = joinPath(sharedDir, USER_VOLUMES_DIR, tag)
  const name = splitLast(raw.rel)[1]
  return { tag, shareDir, name, path: joinPath(shareDir, name), method: raw.method as StagedVolumeFile['method'], bytes: raw.bytes }
}

/** What a failed staging means, by errno. */
export const STAGE_HINTS = {
  EXDEV: 'a read-write volume file is a hard link, which cannot cross filesystems (a copy would drop the guest\'s writes): ' +
    'mount the parent directory as a volume instead, or move the file onto the home\'s filesystem',
  'not-prepared': 'prepare() the box first',
  symlink: 'name the file itself, not a symlink to it',
  'not-a-regular-file': 'a single-file volume must be a regular file; share a directory as a directory volume',
}
