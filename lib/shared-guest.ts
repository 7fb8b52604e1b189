// The guest-visible shared tree: rooted at a box's mounts/ on the host and
// at /run/boxlite/shared in the guest. Same names both sides. Pure paths,
// except a container's prepare(), which a BoxLayout binds to its box.
import * as args from './args.ts'
import { invalidArg } from './errors.ts'
import { checkId } from './ids.ts'
import type { NativeCall } from './native.ts'
import { joinPath, splitLast } from './paths.ts'

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
    this.base = args.path(base, 'base')
    this.containersDir = joinPath(base, SharedDirs.CONTAINERS)
  }

  /** The layout as the guest sees it. */
  static guest (): SharedGuestLayout {
    return new SharedGuestLayout(GUEST_SHARED_ROOT)
  }

  container (containerId: string): SharedContainerLayout {
    return new SharedContainerLayout(joinPath(this.containersDir, checkId(containerId, 'containerId')))
  }
}

/** What BoxLayout.container() gives a container layout: its prepare, as one native call. */
export interface ContainerBinding {
  prepare: () => NativeCall<void>
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
  readonly #binding: ContainerBinding | undefined

  constructor (root: string, binding?: ContainerBinding) {
    this.root = args.path(root, 'root')
    this.containerId = checkId(splitLast(root)[1], 'root (its last component, the container id)')
    if (binding !== undefined && typeof args.options(binding, 'binding', ['prepare']).prepare !== 'function') {
      throw args.refuse('binding.prepare', 'a function', undefined)
    }
    this.overlayfsDir = joinPath(root, SharedDirs.OVERLAYFS)
    this.upperDir = joinPath(this.overlayfsDir, SharedDirs.UPPER)
    this.workDir = joinPath(this.overlayfsDir, SharedDirs.WORK)
    this.diffDir = joinPath(this.overlayfsDir, SharedDirs.DIFF)
    this.rootfsDir = joinPath(root, SharedDirs.ROOTFS)
    this.volumesDir = joinPath(root, SharedDirs.VOLUMES)
    this.layersDir = joinPath(root, SharedDirs.LAYERS)
    this.exitFilePath = joinPath(root, SharedDirs.EXIT_FILE)
    this.#binding = binding
  }

  volumeDir (name: string): string {
    return joinPath(this.volumesDir, checkId(name, 'name'))
  }

  #prepare (): NativeCall<void> {
    if (this.#binding === undefined) {
      throw invalidArg('this container layout is not bound to a box; use box.container(id).prepare()')
    }
    return this.#binding.prepare()
  }

  /**
   * Creates overlayfs/upper, overlayfs/work, rootfs and volumes under the
   * box lock, each beneath the box without following a symlink (the guest
   * may have planted one).
   */
  async prepare (): Promise<void> { await this.#prepare().async() }
  prepareSync (): void { this.#prepare().sync() }
}
