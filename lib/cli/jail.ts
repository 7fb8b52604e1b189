// `boxlite-layout box jail ID -- CMD…`: run a command the way BoxLite's
// Linux jailer runs the shim: under bubblewrap, granted exactly the box's
// sandbox policy; shim.pid written for the jailed process (with its
// start-time fingerprint), the exit record when it ends (exit.previous
// rotated first), and the command's exit code as ours.
import { spawn } from 'node:child_process'
import os from 'node:os'
import { invalidArg } from '../errors.ts'
import type { ExitRecord } from '../exit-record.ts'
import { validateBoxId } from '../ids.ts'
import type { VolumeGrant } from '../policy.ts'
import type { Context } from './main.ts'
import { shellQuote } from './output.ts'

function volumesOf (values: unknown): VolumeGrant[] {
  const list = Array.isArray(values) ? values as string[] : []
  return list.map((v) => {
    const readOnly = v.endsWith(':ro')
    const p = readOnly ? v.slice(0, -3) : v
    if (!p.startsWith('/')) throw invalidArg(`--volume needs an absolute directory; got ${JSON.stringify(v)}`)
    return { path: p, readOnly }
  })
}

/**
 * What the command's end means in BoxLite's terms. bubblewrap reports a
 * child killed by signal n as 128 + n, like a shell: that is what BoxLite
 * records for a signal too, so 129..192 reads as a signal.
 */
export function exitRecordFor (code: number): ExitRecord | null {
  if (code === 0) return null
  const signal = Object.entries(os.constants.signals).find(([, n]) => n === code - 128)?.[0]
  if (code > 128 && signal !== undefined) return { type: 'signal', exitCode: code, signal }
  return { type: 'error', exitCode: code, message: `exited with status ${code}`, errorKind: 'engine' }
}

export async function boxJail (ctx: Context): Promise<number> {
  const { options, positionals, trailing } = ctx.parsed
  const home = ctx.home()
  const box = home.box(validateBoxId(positionals[0]!))
  // The backing chain comes from qcow2 headers the shim can rewrite: only
  // the places BoxLite keeps bases are granted.
  const argv = await box.bwrapArgs(trailing, {
    volumes: volumesOf(options.volume),
    backingRoots: [home.basesDir, home.images.diskImagesDir],
  })
  if (options.print === true) {
    ctx.out.result(argv, () => ctx.out.line(argv.map(shellQuote).join(' ')))
    return 0
  }
  await box.rotateExit()
  // Status on fd 3: {"child-pid": N} once the jail runs, {"exit-code": N} at the end.
  const child = spawn(argv[0]!, ['--json-status-fd', '3', ...argv.slice(1)], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] })
  const forward = (signal: NodeJS.Signals) => { child.kill(signal) }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  let status = ''
  let pidWritten: Promise<unknown> | undefined
  child.stdio[3]!.on('data', (d: Buffer) => {
    status += d.toString()
    const m = /"child-pid"\s*:\s*(\d+)/.exec(status)
    if (m !== null && pidWritten === undefined) pidWritten = box.pidFile.write(Number(m[1]))
  })
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (exitCode, signal) => resolve(exitCode ?? 128 + (os.constants.signals[signal!] ?? 0)))
  })
  process.off('SIGINT', forward)
  process.off('SIGTERM', forward)
  await pidWritten
  const record = exitRecordFor(code)
  if (record !== null) await box.exitFile.write(record)
  return code
}
