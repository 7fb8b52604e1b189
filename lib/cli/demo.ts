// `boxlite-layout demo`: the whole lifecycle on a throw-away home, timed
// step by step, ending with what fell back and why. `npm run demo:vm` (dev
// tooling in tools/guest-vm/, not shipped) runs the same demo with one more
// step, a QEMU guest's view of the read-only shared/.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { BoxLayout } from '../box.ts'
import { LayoutError } from '../errors.ts'
import { probe } from '../fs-facts.ts'
import { HomeLayout } from '../home.ts'
import { mintBoxId } from '../ids.ts'
import { connectUnix, listenUnix } from '../unix-socket.ts'
import type { Context } from './context.ts'
import { shellQuote, type Output, type Status } from './output.ts'

export interface DemoStep {
  step: string
  result: string
  ms: number
}

export interface DemoReport {
  home: string
  boxId: string
  kept: boolean
  /** With --keep: the command that removes what was kept. */
  cleanup?: string
  steps: DemoStep[]
  fallbacks: Array<{ what: string, why: string }>
}

async function timed (steps: DemoStep[], step: string, fn: () => Promise<string> | string): Promise<void> {
  const start = process.hrtime.bigint()
  const result = await fn()
  steps.push({ step, result, ms: Number(process.hrtime.bigint() - start) / 1e6 })
}

/** A shim set like a real install: the shim (0755) and libkrunfw.* beside it. */
function writeShimSet (dir: string): string {
  fs.mkdirSync(dir, { recursive: true })
  const shim = path.join(dir, 'boxlite-shim')
  fs.writeFileSync(shim, crypto.randomBytes(8 << 20), { mode: 0o755 })
  fs.writeFileSync(path.join(dir, 'libkrunfw.so.5'), crypto.randomBytes(4 << 20))
  fs.writeFileSync(path.join(dir, 'libkrunfw.so.5.1.0'), crypto.randomBytes(1 << 20))
  return shim
}

/** A step of the demo's own, run with the box prepared and shared/ mounted. */
export interface DemoStepHook {
  step: string
  run: (box: BoxLayout) => Promise<string>
}

export interface DemoOptions {
  keep: boolean
  /** Where the throw-away home goes (default /tmp). */
  parent?: string
  /** Runs right after the host's guest view (demo:vm's QEMU guest). */
  guestStep?: DemoStepHook
}

export async function demoReport (options: DemoOptions): Promise<DemoReport> {
  const root = fs.mkdtempSync(path.join(options.parent ?? '/tmp', 'blx-demo-'))
  const home = new HomeLayout({ home: path.join(root, 'home') })
  const box = home.box(mintBoxId(), { isolateMounts: true })
  const report: DemoReport = { home: home.home, boxId: box.boxId, kept: options.keep, steps: [], fallbacks: [] }
  const steps = report.steps
  let cleaned = false
  try {
    await timed(steps, 'home prepare', async () => {
      await home.prepare()
      return `${home.home} (${(await probe(root)).fsType.name})`
    })
    await timed(steps, 'box prepare', async () => {
      const r = await box.prepare()
      return `box ${box.boxId}; socket link ${r.socketLink.link}: ${box.sockets.bindingDir} -> sockets/`
    })
    await timed(steps, 'shared mount', async () => {
      const r = await box.mountShared()
      if (r.error !== undefined) {
        report.fallbacks.push({
          what: 'shared/ is a symlink to mounts/, not a read-only mount',
          why: r.error.code === 'EPERM'
            ? 'EPERM: mounting needs CAP_SYS_ADMIN; run as root or in unshare -Urm'
            : r.error.message,
        })
      }
      return `${r.method}${r.readOnly ? ', read-only' : ', WRITABLE by the guest'}`
    })
    await timed(steps, 'guest view', () => {
      fs.writeFileSync(path.join(box.mountsDir, 'hello.txt'), 'written by the host\n')
      const seen = fs.readFileSync(path.join(box.sharedDir, 'hello.txt'), 'utf8') === 'written by the host\n'
      let write = 'write ACCEPTED: the guest could change mounts/'
      try {
        fs.writeFileSync(path.join(box.sharedDir, 'from-guest.txt'), 'x')
      } catch (e) {
        write = `write refused (${(e as NodeJS.ErrnoException).code ?? 'error'})`
      }
      return `host file ${seen ? 'visible' : 'NOT visible'} in shared/; ${write}`
    })
    const guestStep = options.guestStep
    if (guestStep !== undefined) await timed(steps, guestStep.step, () => guestStep.run(box))
    let shim = ''
    await timed(steps, 'shim set', () => {
      shim = writeShimSet(path.join(home.tmpDir, 'dist'))
      return `generated ${shim} and libkrunfw.so.5{,.1.0} (13 MiB) to install`
    })
    await timed(steps, 'shim install', async () => {
      const r = await box.installShim(shim)
      const methods = [...new Set(r.files.map((f) => f.method))]
      const mb = r.files.reduce((n, f) => n + f.bytes, 0) / (1 << 20)
      if (!methods.includes('reflink') && !methods.includes('clonefile')) {
        report.fallbacks.push({
          what: `shim copied with ${methods.join('/')}, not reflinked`,
          why: `${(await probe(home.tmpDir)).fsType.name} cannot reflink; XFS (reflink=1), btrfs or APFS can`,
        })
      }
      return `${r.files.length} files, ${mb.toFixed(0)} MiB by ${methods.join(', ')}`
    })
    await timed(steps, 'socket', async () => {
      const server = await listenUnix(box.readySocketPath)
      server.on('connection', (c) => c.on('data', (d) => c.end(`pong:${d.toString()}`)))
      try {
        const client = await connectUnix(box.readySocketPath)
        const reply = await new Promise<string>((resolve, reject) => {
          let got = ''
          client.on('data', (d) => { got += d.toString() })
          client.once('end', () => resolve(got))
          client.once('error', reject)
          client.write('ping')
        })
        client.destroy()
        const inode = fs.lstatSync(path.join(box.socketsDir, 'ready.sock')).isSocket()
        return `round trip "${reply}" via ${box.readySocketPath}${inode ? ' (inode in sockets/)' : ''}`
      } finally {
        await new Promise((resolve) => server.close(resolve))
      }
    })
    await timed(steps, 'inspect', async () => {
      const i = await box.inspect()
      const reflinked = i.bin.filter((f) => f.reflinked === true).length
      return `shared ${i.shared.kind}${i.shared.readOnly ? ' (ro)' : ''}; link ${i.socketLink.state}; ` +
        `${i.bin.length} bin files, ${reflinked} sharing extents; shim ${i.shim.identity}`
    })
    if (!options.keep) {
      await timed(steps, 'cleanup', async () => {
        const r = await box.cleanup()
        cleaned = true
        return `${r.entries} entries removed, ${r.unmounted} unmounted, link ${r.socketLink.removed ? 'removed' : 'kept'}`
      })
    }
  } catch (e) {
    if (e instanceof LayoutError) steps.push({ step: 'failed', result: e.message, ms: 0 })
    throw e
  } finally {
    if (options.keep) {
      report.cleanup = `boxlite-layout box cleanup ${box.boxId} --home ${shellQuote(home.home)} && rm -r ${shellQuote(root)}`
    } else {
      if (!cleaned) await box.cleanup()
      // The box (and its mount) is gone: what is left is plain directories.
      fs.rmSync(root, { recursive: true, force: true })
    }
  }
  return report
}

/** The report as a table, or as JSON with --json. */
export function printDemo (out: Output, report: DemoReport): void {
  out.result(report, () => {
    out.line(`boxlite-layout demo: throw-away home ${report.home}`)
    out.line()
    out.table(['STEP', 'MS', 'RESULT'], report.steps.map((s) => [s.step, s.ms.toFixed(2).padStart(8), s.result]))
    out.line()
    const total = report.steps.reduce((n, s) => n + s.ms, 0)
    out.line(`total ${total.toFixed(2)} ms; ${report.kept ? 'kept' : 'throw-away home removed'}`)
    if (report.cleanup !== undefined) out.line(`remove it with: ${report.cleanup}`)
    const status: Status = report.fallbacks.length === 0 ? 'ok' : 'warn'
    out.line(report.fallbacks.length === 0
      ? `${out.status(status)} no fallbacks: read-only bind mount and reflinked shim copies`
      : `${out.status(status)} fell back: ${report.fallbacks.map((f) => `${f.what} (${f.why})`).join('; ')}`)
  })
}

export async function demo (ctx: Context): Promise<number> {
  const { options } = ctx.parsed
  printDemo(ctx.out, await demoReport({
    keep: options.keep === true,
    ...(typeof options.dir === 'string' ? { parent: options.dir } : {}),
  }))
  return 0
}
