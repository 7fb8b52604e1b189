// The guest-visible shared tree (SPEC §1): rooted at a box's mounts dir on
// the host and at /run/boxlite/shared in the guest. Same names both sides.
import path from 'node:path'
import { validateContainerId, validateVolumeName } from './ids.ts'
import { nativeOp, perform, runAsync, runSync, type Plan } from './native.ts'

export const GUEST_SHARED_ROOT = '/run/boxlite/shared'

export const SharedDirs = {
  MOUNTS: 'mounts',
  SHARED: 'shared',
  CONTAINERS: 'containers',
  OVERLAYFS: 'overlayfs',
  UPPER: 'upper',
  WORK: 'work',
  DIFF: 'diff',
  ROOTFS: 'rootfs',
  VOLUMES: 'volumes',
  LAYERS: 'layers',
  EXIT_FILE: 'exit.json',
} as const

export class SharedGuestLayout {
  readonly base: string
  readonly containersDir: string

  constructor (base: string) {
    this.base = base
    this.containersDir = path.join(base, SharedDirs.CONTAINERS)
  }

  /** The layout as the guest sees it. */
  static guest (): SharedGuestLayout {
    return new SharedGuestLayout(GUEST_SHARED_ROOT)
  }

  container (containerId: string): SharedContainerLayout {
    return new SharedContainerLayout(path.join(this.containersDir, validateContainerId(containerId)))
  }
}

export class SharedContainerLayout {
  readonly root: string
  readonly containerId: string
  readonly overlayfsDir: string
  readonly upperDir: string
  readonly workDir: string
  readonly diffDir: string
  readonly rootfsDir: string
  readonly volumesDir: string
  readonly layersDir: string
  /** `{"exit_code":N}`, written by the guest when the container exits. */
  readonly exitFilePath: string

  constructor (root: string) {
    this.root = root
    this.containerId = validateContainerId(path.basename(root))
    this.overlayfsDir = path.join(root, SharedDirs.OVERLAYFS)
    this.upperDir = path.join(this.overlayfsDir, SharedDirs.UPPER)
    this.workDir = path.join(this.overlayfsDir, SharedDirs.WORK)
    this.diffDir = path.join(this.overlayfsDir, SharedDirs.DIFF)
    this.rootfsDir = path.join(root, SharedDirs.ROOTFS)
    this.volumesDir = path.join(root, SharedDirs.VOLUMES)
    this.layersDir = path.join(root, SharedDirs.LAYERS)
    this.exitFilePath = path.join(root, SharedDirs.EXIT_FILE)
  }

  volumeDir (name: string): string {
    return path.join(this.volumesDir, validateVolumeName(name))
  }

  * #preparePlan (): Plan<void> {
    yield * perform(nativeOp('makeDirs', [[this.upperDir, this.workDir, this.rootfsDir, this.volumesDir], 0o777], {
      doing: `cannot prepare container ${this.containerId}`,
    }))
  }

  /** Creates overlayfs/upper, overlayfs/work, rootfs and volumes. */
  prepare (): Promise<void> {
    return runAsync(this.#preparePlan())
  }

  prepareSync (): void {
    runSync(this.#preparePlan())
  }
}
