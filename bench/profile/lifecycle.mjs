// The lifecycle of `npm run bench` (a), alone in a process, for `perf record`:
// warm up, then tell perf to start sampling (its --control fifo), run N
// boxes, tell it to stop. Writes its pid to CTL_FIFO.pid first, so the bench
// can remove the perf map (--perf-basic-prof: /tmp/perf-PID.map) even if
// interrupted; prints {"pid","n","ns"}.
//
//   node --perf-basic-prof bench/profile/lifecycle.mjs HOME SHIM UID N sync|async CTL_FIFO
import fs from 'node:fs'
import { HomeLayout, mintBoxId } from '../../dist/index.js'

const [home, shim, uidText, nText, form, ctl] = process.argv.slice(2)
// Where the bench finds our pid even if it is interrupted before we finish: /tmp/perf-PID.map is ours.
fs.writeFileSync(`${ctl}.pid`, String(process.pid))
const uid = Number(uidText)
const n = Number(nText)
const h = new HomeLayout({ home })

function syncBox () {
  const box = h.box(mintBoxId(), { isolateMounts: true, uid })
  box.prepareSync()
  box.mountSharedSync()
  box.installShimSync(shim)
  box.cleanupSync()
}

async function asyncBox () {
  const box = h.box(mintBoxId(), { isolateMounts: true, uid })
  await box.prepare()
  await box.mountShared()
  await box.installShim(shim)
  await box.cleanup()
}

async function batch (count) {
  for (let i = 0; i < count; i++) {
    if (form === 'async') await asyncBox()
    else syncBox()
  }
}

await batch(Math.min(200, n))
const control = fs.openSync(ctl, 'w')
fs.writeSync(control, 'enable\n')
const t = process.hrtime.bigint()
await batch(n)
const ns = Number(process.hrtime.bigint() - t)
fs.writeSync(control, 'disable\n')
fs.closeSync(control)
console.log(JSON.stringify({ pid: process.pid, n, ns }))
