// examples/runtime-start.mjs: what a runtime does when it starts: take the
// home's runtime lock (a second runtime gets EBUSY), prepare the home, and
// repair what a crashed predecessor left (leaked mounts, half-removed boxes,
// interrupted copies, dangling socket links, tmp/ leftovers).
// Usage: node examples/runtime-start.mjs [HOME]   (default: $BOXLITE_HOME, else ~/.boxlite)
import { HomeLayout } from 'boxlite-layout'

const home = new HomeLayout(process.argv[2] === undefined ? {} : { home: process.argv[2] })
await home.prepare()
const lock = await home.acquireRuntimeLock()
try {
  const report = await home.gc({ runtimeLock: lock })
  for (const a of report.actions) console.log(`${a.done ? 'done' : 'FAILED'}: ${a.kind} ${a.path}${a.error === undefined ? '' : ` (${a.error})`}`)
  for (const w of report.warnings) console.log(`left alone: ${w.path}: ${w.reason}`)
  console.log(`${report.actions.length} repairs; live boxes: ${report.liveBoxes.join(', ') || 'none'}; boxes: ${(await home.boxIds()).length}`)
  // … the runtime runs here, holding the lock …
} finally {
  lock.release()
}
