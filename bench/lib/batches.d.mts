// Types for bench/lib/batches.mjs.
import type * as Lib from '../../lib/index.ts'

export type Form = 'sync' | 'async'
export interface LifecycleSteps { prepare: number, mount: number, shim: number, cleanup: number }
export function lifecycleBatch (api: typeof Lib, h: Lib.HomeLayout, n: number, form: Form, uid: number, shim: string, steps?: LifecycleSteps): Promise<void>
export function prepareCleanupBatch (api: typeof Lib, h: Lib.HomeLayout, n: number, form: Form, uid: number): Promise<void>

/** What bench/node-matrix.mjs is given (as JSON). */
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
export const MATRIX_LIFECYCLE: 'lifecycle'
export const MATRIX_PC: 'prepare+cleanup'
export const MATRIX_C: 'C'
