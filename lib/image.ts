// The image cache under {home}/images.
import * as args from './args.ts'
import { nativeCall, type DirArgs, type NativeCall } from './native.ts'
import { joinPath, splitLast } from './paths.ts'

// OCI digest grammar (algorithm ":" encoded), or a bare encoded part.
const DIGEST = /^(?:[a-z0-9]+(?:[+._-][a-z0-9]+)*:)?[a-zA-Z0-9=_-]+$/

export class ImageLayout {
  readonly root: string
  readonly layersDir: string
  readonly extractedDir: string
  readonly diskImagesDir: string
  readonly manifestsDir: string
  readonly configsDir: string
  readonly localDir: string
  /** images/ reached beneath the home (HomeLayout.images) or as given. */
  readonly #dir: DirArgs

  constructor (imagesDir: string, anchor?: { root: string, rel: string }) {
    args.path(imagesDir, 'imagesDir')
    this.root = imagesDir
    this.layersDir = joinPath(imagesDir, 'layers')
    this.extractedDir = joinPath(imagesDir, 'extracted')
    this.diskImagesDir = joinPath(imagesDir, 'disk-images')
    this.manifestsDir = joinPath(imagesDir, 'manifests')
    this.configsDir = joinPath(imagesDir, 'configs')
    this.localDir = joinPath(imagesDir, 'local')
    const [parent, name] = splitLast(imagesDir)
    this.#dir = anchor === undefined ? [parent, name] : args.anchor(anchor)
  }

  /**
   * Cache dir of a local OCI bundle: `local/{P}-{M}`, P = first 8 hex chars
   * of SHA-256 of the bundle path as given, M = the manifest digest without
   * `sha256:`, cut to 8 chars. A new manifest means a new directory.
   */
  localBundleCacheDir (bundlePath: string, manifestDigest: string): string {
    // Hashed, never opened: only a string's length and NUL are judged.
    args.string(bundlePath, 'bundlePath')
    args.string(manifestDigest, 'manifestDigest', { maxBytes: 1024 })
    if (!DIGEST.test(manifestDigest)) {
      throw args.refuse('manifestDigest', 'an OCI digest like "sha256:<hex>"', manifestDigest)
    }
    // node:crypto on first use, as in ids.ts: the CLI's start-up never needs it.
    const p = process.getBuiltinModule('node:crypto').createHash('sha256').update(bundlePath).digest('hex').slice(0, 8)
    const stripped = manifestDigest.startsWith('sha256:') ? manifestDigest.slice('sha256:'.length) : manifestDigest
    return joinPath(this.localDir, `${p}-${stripped.slice(0, 8)}`)
  }

  #prepare (): NativeCall<void> {
    return nativeCall('imagesPrepare', this.#dir, { doing: 'cannot prepare the image cache' }, () => undefined)
  }

  /** Creates layers, extracted, disk-images, manifests, configs (0755, never through a symlink). */
  async prepare (): Promise<void> { await this.#prepare().async() }
  prepareSync (): void { this.#prepare().sync() }
}
