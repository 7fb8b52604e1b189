// examples/runtime-start.mjs: what a runtime does when it starts: take the
// home's runtime lock (a second runtime gets EBUSY), prepare the home,
// repair what a crashed predecessor left (leaked mounts, half-removed boxes,
// interrupted copies, dangling socket links, tmp/ leftovers), then, given a
// shim, run a box's shim in BoxLite's jail, restarting it while it fails.
// Usage: node examples/runtime-start.mjs [HOME [SHIM [ARG...]]]
//   (HOME default: $BOXLITE_HOME, else ~/.boxlite; a shim needs root, and bwrap on Linux)
import path from 'node:path'
import { HomeLayout, mintBoxId } from 'boxlite-layout'

const [homeDir, shimPath, ...shimArgs] = process.argv.slice(2)
const home = new HomeLayout(homeDir === undefined ? {} : { home: homeDir })
await home.prepare()
const lock = await home.acquireRuntimeLock()
try {
  const report = await home.gc({ runtimeLock: lock })
  for (const a of report.actions) console.log(`${a.done ? 'done' : 'FAILED'}: ${a.kind} ${a.path}${a.error === undefined ? '' : ` (${a.error})`}`)
  for (const w of report.warnings) console.log(`left alone: ${w.path}: ${w.why}${w.error === undefined ? '' : ` (${w.error.message})`}`)
  console.log(`${report.actions.length} repairs; live boxes: ${report.liveBoxes.join(', ') || 'none'}; boxes: ${(await home.boxIds()).length}`)
  if (shimPath !== undefined) {
    const box = home.box(mintBoxId(), { isolateMounts: true })
    try {
      await box.prepare()
      await box.mountShared()
      await box.installShim(shimPath)
      for (let run = 1; run <= 3; run++) {
        // Rotates exit, makes what the jail grants, writes shim.pid (the
        // jailed pid and its fingerprint); stderr goes to shim.stderr.
        const shim = await box.jail([path.join(box.binDir, path.basename(shimPath)), ...shimArgs])
        const end = await shim.exit // the shim's own exit record, or one written for it
        if (end.record === null) {
          console.log(`run ${run}: pid ${shim.pid} exited cleanly`)
          break
        }
        console.log(`run ${run}: pid ${shim.pid} ended: ${end.record.type}, exit code ${end.record.exitCode} (recorded by the ${end.recordBy})`)
      }
    } finally {
      await box.cleanup()
    }
  }
} finally {
  lock.release()
}
