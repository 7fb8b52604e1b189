// The JS-side batches of `npm run bench`, through the public API only: one
// module, so the main run (Node 20) and bench/node-matrix.ts (under Node 22
// and 24) time exactly the same loop.
import type * as Lib from '../../lib/index.ts'

type Api = typeof Lib
export type Form = 'sync' | 'async'
export interface LifecycleSteps { prepare: number, mount: number, shim: number, cleanup: number }

const now = (): bigint => process.hrtime.bigint()
const since = (t: bigint): number => Number(process.hrtime.bigint() - t)

/** n box lifecycles (prepare, mountShared, installShim, cleanup; isolateMounts), each step's ns added to steps. */
export async function lifecycleBatch (api: Api, h: Lib.HomeLayout, n: number, form: Form, uid: number, shim: string, steps?: LifecycleSteps): Promise<void> {
  const s = steps ?? { prepare: 0, mount: 0, shim: 0, cleanup: 0 }
  for (let i = 0; i < n; i++) {
    const box = h.box(api.mintBoxId(), { uid, isolateMounts: true })
    let t0 = now()
    if (form === 'sync') box.prepareSync(); else await box.prepare()
    s.prepare += since(t0); t0 = now()
    if (form === 'sync') box.mountSharedSync(); else await box.mountShared()
    s.mount += since(t0); t0 = now()
    if (form === 'sync') box.installShimSync(shim); else await box.installShim(shim)
    s.shim += since(t0); t0 = now()
    if (form === 'sync') box.cleanupSync(); else await box.cleanup()
    s.cleanup += since(t0)
  }
}

/** n boxes prepared and cleaned up without a mount (isolateMounts: false): BoxLite's own prepare() + cleanup(). */
export async function prepareCleanupBatch (api: Api, h: Lib.HomeLayout, n: number, form: Form, uid: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const box = h.box(api.mintBoxId(), { uid, isolateMounts: false })
    if (form === 'sync') {
      box.prepareSync()
      box.cleanupSync()
    } else {
      await box.prepare()
      await box.cleanup()
    }
  }
}

/** What bench/node-matrix.ts is given (as JSON), and the keys of what it prints. */
export interface MatrixInputs {
  home: string
  homeC: string
  shim: string
  shimDir: string
  linkDir: string
  uid: number
  cBin: string
  rounds: number
  boxes: number
  pcBoxes: number
}
export const MATRIX_LIFECYCLE = 'lifecycle'
export const MATRIX_PC = 'prepare+cleanup'
export const MATRIX_C = 'C' // raw C: same syscalls for the lifecycle, the BoxLite replay for prepare+cleanup
