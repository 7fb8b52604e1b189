// `boxlite-layout box jail ID -- CMD…`: box.jail() from a shell. The
// command runs jailed as BoxLite's runtime runs the shim (bubblewrap on
// Linux, sandbox-exec on macOS); shim.pid, shim.stderr and the exit record
// are the library's; our exit code is the command's. --print shows the
// command instead (for --platform, on any host) and changes nothing.
import { invalidArg } from '../errors.ts'
import { validateBoxId } from '../ids.ts'
import type { JailPlatform } from '../jail.ts'
import type { VolumeGrant } from '../policy.ts'
import type { Context } from './context.ts'
import { shellQuote, UsageError } from './output.ts'

function volumesOf (values: unknown): VolumeGrant[] {
  const list = Array.isArray(values) ? values as string[] : []
  return list.map((v) => {
    const readOnly = v.endsWith(':ro')
    const p = readOnly ? v.slice(0, -3) : v
    if (!p.startsWith('/')) throw invalidArg(`--volume needs an absolute directory; got ${JSON.stringify(v)}`)
    return { path: p, readOnly }
  })
}

function platformOf (value: unknown, print: boolean): JailPlatform {
  const platform = value ?? process.platform
  if (platform !== 'linux' && platform !== 'darwin') throw new UsageError(`--platform must be linux or darwin; got ${String(platform)}`)
  if (platform !== process.platform && !print) throw new UsageError(`--platform ${platform} only works with --print on ${process.platform}`)
  return platform
}

export async function boxJail (ctx: Context): Promise<number> {
  const { options, positionals, trailing } = ctx.parsed
  const home = ctx.home()
  const box = home.box(validateBoxId(positionals[0]!))
  const print = options.print === true
  const platform = platformOf(options.platform, print)
  // The backing chain comes from qcow2 headers the shim can rewrite: only
  // the places BoxLite keeps bases are granted.
  const jailOptions = {
    volumes: volumesOf(options.volume),
    backingRoots: [home.basesDir, home.images.diskImagesDir],
    network: options['no-network'] !== true,
    stdin: 'inherit' as const,
    stdout: 'inherit' as const,
  }
  if (print) {
    const argv = await box.jailArgv(trailing, { ...jailOptions, platform })
    ctx.out.result(argv, () => ctx.out.line(argv.map(shellQuote).join(' ')))
    return 0
  }
  const shim = await box.jail(trailing, jailOptions)
  // A signal for us is one for the shim; the jail then ends with its status.
  const forward = (signal: NodeJS.Signals) => { shim.kill(signal) }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  try {
    const end = await shim.exit
    return end.code ?? (end.record?.exitCode ?? 1)
  } finally {
    process.off('SIGINT', forward)
    process.off('SIGTERM', forward)
  }
}
