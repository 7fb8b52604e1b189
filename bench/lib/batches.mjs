// The JS-side batches of `npm run bench`, through the public API only: one
// module, so the main run, the strace -c count (bench/trace/prepare-cleanup.mjs)
// and bench/node-matrix.mjs (under Node 22 and 24) run exactly the same loop.
// Plain JavaScript: the processes that run it alone load no TypeScript
// loader (tsx's esbuild service would be one more process on the CPU and in
// strace -f).

const now = () => process.hrtime.bigint()
const since = (t) => Number(process.hrtime.bigint() - t)

/** n box lifecycles (prepare, mountShared, installShim, cleanup; isolateMounts), each step's ns added to steps. */
export async function lifecycleBatch (api, h, n, form, uid, shim, steps) {
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
export async function prepareCleanupBatch (api, h, n, form, uid) {
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

/** The keys of what bench/node-matrix.mjs prints. */
export const MATRIX_LIFECYCLE = 'lifecycle'
export const MATRIX_PC = 'prepare+cleanup'
/** Raw C: same syscalls for the lifecycle, the BoxLite replay for prepare + cleanup. */
export const MATRIX_C = 'C'
