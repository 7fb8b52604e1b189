// The image cache under {home}/images (SPEC §1).
import crypto from 'node:crypto'
import path from 'node:path'
import { invalidArg } from './errors.ts'
import { nativeOp, perform, runAsync, runSync, type Plan } from './native.ts'

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

  constructor (imagesDir: string) {
    this.root = imagesDir
    this.layersDir = path.join(imagesDir, 'layers')
    this.extractedDir = path.join(imagesDir, 'extracted')
    this.diskImagesDir = path.join(imagesDir, 'disk-images')
    this.manifestsDir = path.join(imagesDir, 'manifests')
    this.configsDir = path.join(imagesDir, 'configs')
    this.localDir = path.join(imagesDir, 'local')
  }

  /**
   * Cache dir of a local OCI bundle: `local/{P}-{M}`, P = first 8 hex chars
   * of SHA-256 of the bundle path as given, M = the manifest digest without
   * `sha256:`, cut to 8 chars. A new manifest means a new directory.
   */
  localBundleCacheDir (bundlePath: string, manifestDigest: string): string {
    if (typeof bundlePath !== 'string' || bundlePath === '') throw invalidArg('bundle path must be a non-empty string')
    if (typeof manifestDigest !== 'string' || !DIGEST.test(manifestDigest)) {
      throw invalidArg(`manifest digest must look like "sha256:<hex>"; got ${JSON.stringify(manifestDigest)}`)
    }
    const p = crypto.createHash('sha256').update(bundlePath).digest('hex').slice(0, 8)
    const stripped = manifestDigest.startsWith('sha256:') ? manifestDigest.slice('sha256:'.length) : manifestDigest
    const m = stripped.slice(0, 8)
    return path.join(this.localDir, `${p}-${m}`)
  }

  * #preparePlan (): Plan<void> {
    const dirs = [this.layersDir, this.extractedDir, this.diskImagesDir, this.manifestsDir, this.configsDir]
    yield * perform(nativeOp('makeDirs', [dirs, 0o777], { doing: 'cannot prepare the image cache' }))
  }

  /** Creates layers, extracted, disk-images, manifests, configs. */
  prepare (): Promise<void> {
    return runAsync(this.#preparePlan())
  }

  prepareSync (): void {
    runSync(this.#preparePlan())
  }
}
