// boot/: custom-kernel generations, as BoxLite 0.10 keeps them. current.json
// names the active boot/generations/{gen}/ (kernel, and initramfs when one
// was configured) with the SHA-256 of each staged copy. This module owns the
// manifest's shape: its bytes, its parsing and its checks. The disk work
// (staging, renames, fsyncs, hashing, pruning) is one native call per public
// method of BoxLayout (publishBoot, readBoot).
import * as args from './args.ts'
import { layoutError, type LayoutError } from './errors.ts'
import { joinPath } from './paths.ts'

export const BootFiles = {
  MANIFEST: 'current.json',
  GENERATIONS: 'generations',
  KERNEL: 'kernel',
  INITRAMFS: 'initramfs',
} as const

/** The kernel formats BoxLite records (kebab-case); never 'auto' in a manifest. */
export const KERNEL_FORMATS = ['raw', 'elf', 'pe-gz', 'image-bz2', 'image-gz', 'image-zstd'] as const
export type KernelFormat = typeof KERNEL_FORMATS[number]

/** The only manifest version BoxLite writes and reads. */
export const BOOT_MANIFEST_VERSION = 1

/** The most of current.json anything reads. */
const BOOT_MANIFEST_CAP = 65536

/** current.json, with BoxLite's keys (snake_case there). */
export interface BootManifest {
  version: typeof BOOT_MANIFEST_VERSION
  /** 1–64 bytes of [A-Za-z0-9_-]; 12 random characters when this package publishes. */
  generation: string
  format: KernelFormat
  /** "sha256:" + 64 lowercase hex, of generations/{gen}/kernel. */
  kernelSha256: string
  /** The same for initramfs; absent when the generation has none. */
  initramfsSha256?: string
}

export interface PublishBootOptions {
  /**
   * Absolute path of the kernel to copy in (followed: it is the operator's).
   * Omitted: migrate the legacy flat boot/kernel (and boot/initramfs, if
   * present) of the box into a generation, as BoxLite does.
   */
  kernel?: string
  /** Absolute path of the initramfs; omitted for none. */
  initramfs?: string
  format: KernelFormat
}

/** How a file got into the generation. */
export type BootCopyMethod = 'reflink' | 'clonefile' | 'copy_file_range' | 'copy'

export interface BootAssets {
  bootDir: string
  manifestPath: string
  manifest: BootManifest
  generationDir: string
  kernelPath: string
  /** Present when the manifest records an initramfs. */
  initramfsPath?: string
}

export interface PublishBootResult extends BootAssets {
  kernelCopy: { method: BootCopyMethod, bytes: number }
  initramfsCopy?: { method: BootCopyMethod, bytes: number }
  /** Older generation directories removed. */
  pruned: string[]
  /** Legacy flat files removed ('kernel', 'initramfs'). */
  legacyRemoved: string[]
  /** Leftovers of interrupted publishes removed (.staging-*, .current.json-*.staging). */
  leftoversRemoved: string[]
  /**
   * Set when tidying after the switch (pruning, removing the legacy files)
   * failed: the new generation is current all the same, and the next
   * publish tries again.
   */
  error?: LayoutError
}

const GENERATION_NAME = /^[A-Za-z0-9_-]{1,64}$/
const SHA256 = /^sha256:[0-9a-f]{64}$/
const FORMATS: ReadonlySet<string> = new Set(KERNEL_FORMATS)

export function isGenerationName (name: unknown): name is string {
  return typeof name === 'string' && GENERATION_NAME.test(name)
}

/** The checks publishBoot() makes before anything touches the disk. */
export function checkPublishBootOptions (options: unknown): { kernel: string, initramfs: string, legacy: boolean, format: KernelFormat } {
  if (options === undefined) throw args.refuse('options', 'an object { kernel?, initramfs?, format }', options)
  const o = args.options(options, 'options', ['kernel', 'initramfs', 'format'])
  const format = args.oneOf(o.format, 'options.format', KERNEL_FORMATS, 'BoxLite records the concrete format, never auto')
  if (o.kernel === undefined) {
    if (o.initramfs !== undefined) {
      throw args.refuse('options.kernel', 'an absolute path when an initramfs is given', o.kernel,
        'Without a kernel, publishBoot() migrates the legacy boot/kernel and boot/initramfs')
    }
    return { kernel: '', initramfs: '', legacy: true, format }
  }
  return {
    kernel: args.path(o.kernel, 'options.kernel'),
    initramfs: o.initramfs === undefined ? '' : args.path(o.initramfs, 'options.initramfs'),
    legacy: false,
    format,
  }
}

const SHA256_EXPECTED = '"sha256:" and 64 lowercase hex digits'

/** current.json's bytes: BoxLite's (two-space indent, its key order, no trailing newline). */
export function formatBootManifest (manifest: BootManifest): string {
  if (manifest === undefined) throw args.refuse('manifest', 'a boot manifest object', manifest)
  const o = args.options(manifest, 'manifest', ['version', 'generation', 'format', 'kernelSha256', 'initramfsSha256'])
  const digest = (v: unknown, name: string): string => {
    const d = args.string(v, name, { maxBytes: 71, expected: SHA256_EXPECTED })
    if (!SHA256.test(d)) throw args.refuse(name, SHA256_EXPECTED, d)
    return d
  }
  const generation = args.string(o.generation, 'manifest.generation', { maxBytes: 64 })
  if (!isGenerationName(generation)) throw args.refuse('manifest.generation', '1-64 of [A-Za-z0-9_-]', generation)
  const m: BootManifest = {
    version: args.integer(o.version, 'manifest.version', BOOT_MANIFEST_VERSION, BOOT_MANIFEST_VERSION) as typeof BOOT_MANIFEST_VERSION,
    generation,
    format: args.oneOf(o.format, 'manifest.format', KERNEL_FORMATS),
    kernelSha256: digest(o.kernelSha256, 'manifest.kernelSha256'),
    ...(o.initramfsSha256 === undefined ? {} : { initramfsSha256: digest(o.initramfsSha256, 'manifest.initramfsSha256') }),
  }
  const doc: Record<string, unknown> = {
    version: m.version, generation: m.generation, format: m.format, kernel_sha256: m.kernelSha256,
  }
  if (m.initramfsSha256 !== undefined) doc['initramfs_sha256'] = m.initramfsSha256
  return JSON.stringify(doc, null, 2)
}

/**
 * Parse and check current.json: version 1, a valid generation name, a
 * concrete format, checksums of BoxLite's form. Anything else is a
 * LayoutError (EINVAL, malformed-record) naming what is wrong.
 */
export function parseBootManifest (text: string, file: string): BootManifest {
  args.string(text, 'text', { text: true, nonEmpty: false, maxBytes: BOOT_MANIFEST_CAP })
  args.string(file, 'file')
  const bad = (what: string): never => {
    throw layoutError('EINVAL', 'malformed-record', `${file} ${what}; publish the boot assets again (publishBoot())`, { path: file })
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return bad('is not valid JSON')
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return bad('is not a JSON object')
  const o = doc as Record<string, unknown>
  if (o['version'] !== BOOT_MANIFEST_VERSION) return bad(`has unsupported version ${JSON.stringify(o['version'])} (only ${BOOT_MANIFEST_VERSION} is known)`)
  if (!isGenerationName(o['generation'])) return bad(`names an invalid generation ${JSON.stringify(o['generation'])} (1-64 of [A-Za-z0-9_-])`)
  if (typeof o['format'] !== 'string' || !FORMATS.has(o['format'])) return bad(`has unsupported kernel format ${JSON.stringify(o['format'])}`)
  const kernel = o['kernel_sha256']
  if (typeof kernel !== 'string' || !SHA256.test(kernel)) return bad('has no valid kernel_sha256')
  const initramfs = o['initramfs_sha256']
  if (initramfs !== undefined && (typeof initramfs !== 'string' || !SHA256.test(initramfs))) return bad('has an invalid initramfs_sha256')
  return {
    version: BOOT_MANIFEST_VERSION,
    generation: o['generation'],
    format: o['format'] as KernelFormat,
    kernelSha256: kernel,
    ...(initramfs === undefined ? {} : { initramfsSha256: initramfs }),
  }
}

/** The paths of one generation under bootDir. */
export function bootAssetsOf (bootDir: string, manifest: BootManifest): BootAssets {
  const generationDir = joinPath(bootDir, BootFiles.GENERATIONS, manifest.generation)
  return {
    bootDir,
    manifestPath: joinPath(bootDir, BootFiles.MANIFEST),
    manifest,
    generationDir,
    kernelPath: joinPath(generationDir, BootFiles.KERNEL),
    ...(manifest.initramfsSha256 === undefined ? {} : { initramfsPath: joinPath(generationDir, BootFiles.INITRAMFS) }),
  }
}

/**
 * What readBoot() returns from the native facts: the manifest checked, and
 * each file's checksum as it is now compared with the recorded one.
 */
export function checkBootRead (bootDir: string, raw: { manifest: string, generation: string, kernelSha256: string, initramfsSha256: string | null }): BootAssets {
  const assets = bootAssetsOf(bootDir, parseBootManifest(raw.manifest, joinPath(bootDir, BootFiles.MANIFEST)))
  const m = assets.manifest
  // The native side hashed the generation its own scan found; the two
  // readings must agree (a duplicate key is refused there).
  if (raw.generation !== m.generation) {
    throw layoutError('EINVAL', 'malformed-record', `${assets.manifestPath} names its generation more than once; publish the boot assets again`,
      { path: assets.manifestPath })
  }
  const mismatch = (file: string, recorded: string, actual: string | null): never => {
    throw layoutError('EIO', 'checksum-mismatch',
      `${file} ${actual === null ? 'is missing' : `has checksum ${actual}`}, but ${assets.manifestPath} records ${recorded}: ` +
      'the generation was changed after it was published; publish the boot assets again (publishBoot())', { path: file })
  }
  if (raw.kernelSha256 !== m.kernelSha256) mismatch(assets.kernelPath, m.kernelSha256, raw.kernelSha256)
  if (m.initramfsSha256 !== undefined && raw.initramfsSha256 !== m.initramfsSha256) {
    mismatch(assets.initramfsPath!, m.initramfsSha256, raw.initramfsSha256)
  }
  return assets
}
