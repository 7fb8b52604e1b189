// `npm run demo:vm [-- --json] [--keep] [--dir PARENT]`: the CLI's demo with
// one more step, "guest view (VM)": a small Linux guest under QEMU mounts the
// box's shared/ over 9p, reads a host file, tries every kind of write, and
// watches a host write arrive. A dev tool: it needs tsx, QEMU, busybox-static
// and apt (for the kernel, fetched once), and it is not in the package.
import { parseArgs } from 'node:util'
import type { BoxLayout } from '../../lib/box.ts'
import { demoReport, printDemo } from '../../lib/cli/demo.ts'
import { Output } from '../../lib/cli/output.ts'
import { hostWriteProbe, PROBE_TEXT, readProbeStep, seedProbeFiles, writeProbeSteps } from './probes.ts'
import { bootGuest, guestAvailability, prepareGuestImage, type GuestImage } from './vm.ts'

/**
 * BOXLITE_LAYOUT_GUEST_TIMEOUT_MS raises the guest's limit (vm.ts's default
 * otherwise): a TCG guest on a loaded machine can need minutes.
 */
function guestTimeoutMs (): number | undefined {
  const raw = process.env.BOXLITE_LAYOUT_GUEST_TIMEOUT_MS
  if (raw === undefined || raw === '') return undefined
  const ms = Number(raw)
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error(`BOXLITE_LAYOUT_GUEST_TIMEOUT_MS must be a positive integer of milliseconds, not ${JSON.stringify(raw)}`)
  return ms
}

/** What the guest saw, or why there is no guest here (the rest of the demo runs either way). */
async function guestView (box: BoxLayout): Promise<string> {
  const available = await guestAvailability()
  if (!available.ok) return `skipped: ${available.reason}`
  // Availability only asked apt for the URL: the download itself can still fail.
  let image: GuestImage
  try {
    image = await prepareGuestImage()
  } catch (e) {
    return `skipped: the guest kernel could not be fetched: ${(e as Error).message}`
  }
  const timeoutMs = guestTimeoutMs()
  await seedProbeFiles(box.mountsDir)
  const hostWrite = hostWriteProbe(box.mountsDir)
  const run = await bootGuest({
    sharedDir: box.sharedDir,
    steps: [readProbeStep(), ...writeProbeSteps(), hostWrite.step],
    onMarker: hostWrite.onMarker,
    image,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  })
  const [read, ...rest] = run.steps
  const seen = rest.pop()!
  const writes = rest.map((s) => `${s.name} ${s.exitCode === 0 ? 'SUCCEEDED' : s.errno ?? `exit ${s.exitCode}`}`)
  return `read ${read!.exitCode === 0 && read!.stdout === PROBE_TEXT ? 'ok' : 'FAILED'}; ${writes.join(', ')}; ` +
    `host write ${seen.exitCode === 0 ? seen.stdout.split('\n')[0]! : 'NOT seen'} (${(run.durationMs / 1000).toFixed(1)} s boot)`
}

const { values } = parseArgs({
  options: { json: { type: 'boolean' }, keep: { type: 'boolean' }, dir: { type: 'string' } },
  strict: true,
})
const out = new Output({ json: values.json === true })
try {
  printDemo(out, await demoReport({
    keep: values.keep === true,
    ...(values.dir === undefined ? {} : { parent: values.dir }),
    guestStep: { step: 'guest view (VM)', run: guestView },
  }))
} catch (e) {
  out.error(e)
  process.exitCode = 1
}
