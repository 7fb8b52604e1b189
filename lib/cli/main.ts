#!/usr/bin/env node
// boxlite-layout: the CLI for jailer setup scripts and operators. argv is
// parsed against the command table (spec.ts), then one handler runs: a
// short loop of library calls. Exit codes: 0 ok, 1 failure, 2 usage.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LayoutError } from '../errors.ts'
import { HomeLayout } from '../home.ts'
import { mintBoxId, validateBoxId } from '../ids.ts'
import { inheritedLockFd, RuntimeLock } from '../locks.ts'
import { packageRoot } from '../native.ts'
import { boxBootPublish, boxBootShow, boxCa, boxCleanup, boxInspect, boxList, boxPrepare } from './box-commands.ts'
import { Output, shellQuote, UsageError } from './output.ts'
import type { Context } from './context.ts'
import { findCommand, helpText, parse, secondsOption, type Parsed } from './spec.ts'

// The package's version, read from package.json wherever this file was built to.
const version = (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version

type Handler = (ctx: Context) => Promise<number>

async function prepare (ctx: Context): Promise<number> {
  const r = await ctx.home().prepare()
  ctx.out.result({ home: r.home, repaired: r.repaired, sameFilesystem: r.sameFilesystem }, () => {
    ctx.out.pairs([
      ['home', r.home],
      ['same filesystem', `yes (${r.sameFilesystem.devices[0]!}: tmp, bases, images/disk-images)`],
      ...r.repaired.map((p): [string, string] => ['tightened', `${p} (was writable by group or others)`]),
    ])
  })
  return 0
}

async function gcStorage (ctx: Context): Promise<number> {
  const { options } = ctx.parsed
  if (options['dry-run'] === true || options.exclude !== undefined) throw new UsageError('--storage takes --apply, --grace and --json only (it reports unless --apply)')
  const graceSeconds = secondsOption(ctx.parsed, 'grace')
  const apply = options.apply === true
  const runtimeLock = apply ? await ctx.inheritedLock() : undefined
  let report
  try {
    report = await ctx.home().gcStorage({
      apply,
      ...(graceSeconds === undefined ? {} : { graceSeconds }),
      ...(runtimeLock === undefined ? {} : { runtimeLock }),
    })
  } finally {
    runtimeLock?.release()
  }
  const { out } = ctx
  out.result(report, () => {
    if (report.actions.length === 0) out.line(`no orphaned storage in ${report.home}`)
    else {
      out.table(['KIND', 'DONE', 'BYTES', 'PATH'], report.actions.map((a) => [
        a.kind,
        report.dryRun ? 'dry-run' : a.done ? out.status('ok') : out.status('fail'),
        String(a.bytes),
        a.error === undefined ? a.path : `${a.path}: ${a.error.message}`,
      ]))
    }
    const t = report.totals
    out.line(`${report.dryRun ? 'would reclaim' : 'reclaimed'}: ${t.base.count} base(s) ${t.base.bytes} bytes, ` +
      `${t['disk-image'].count} disk image(s) ${t['disk-image'].bytes} bytes, ${t['tmp-leftover'].count} tmp leftover(s)`)
    out.line(`kept: ${report.kept.referenced} in a backing chain, ${report.kept.recent} within ${report.graceSeconds} s, ` +
      `${report.kept.database} named by the database, ${report.kept.unreadable} unreadable; database: ${report.database}`)
    for (const w of report.warnings) out.line(`${out.status('warn')} ${w.path}: ${w.why}${w.error === undefined ? '' : ` (${w.error.message})`}`)
    if (report.dryRun && report.actions.length > 0) out.line('dry run: nothing removed (add --apply)')
  })
  return report.actions.some((a) => !report.dryRun && !a.done) ? 1 : 0
}

async function metrics (ctx: Context): Promise<number> {
  if (ctx.out.json) throw new UsageError('metrics prints the Prometheus text format; --json does not apply (see gc --storage --json, box list --json)')
  const dir = ctx.parsed.options.textfile
  const text = await ctx.home().metrics()
  if (typeof dir === 'string') {
    // node_exporter's textfile collector reads *.prom: a temp name it skips,
    // renamed over the old file in the same directory.
    const tmp = path.join(dir, `.boxlite_layout.prom.${process.pid}`)
    fs.writeFileSync(tmp, text, { mode: 0o644, flag: 'wx' })
    try {
      fs.renameSync(tmp, path.join(dir, 'boxlite_layout.prom'))
    } catch (e) {
      fs.rmSync(tmp, { force: true })
      throw e
    }
  } else {
    ctx.out.line(text.trimEnd())
  }
  return 0
}

async function gc (ctx: Context): Promise<number> {
  if (ctx.parsed.options.storage === true) return await gcStorage(ctx)
  if (ctx.parsed.options.apply === true) throw new UsageError('--apply goes with --storage (gc itself repairs unless --dry-run)')
  const exclude = ctx.parsed.options.exclude
  const graceSeconds = secondsOption(ctx.parsed, 'grace')
  const dryRun = ctx.parsed.options['dry-run'] === true
  const options = {
    dryRun,
    ...(Array.isArray(exclude) ? { exclude: exclude.map((id) => validateBoxId(id)) } : {}),
    ...(graceSeconds === undefined ? {} : { graceSeconds }),
  }
  const runtimeLock = dryRun ? undefined : await ctx.inheritedLock()
  let report
  try {
    report = await ctx.home().gc({ ...options, ...(runtimeLock === undefined ? {} : { runtimeLock }) })
  } finally {
    runtimeLock?.release()
  }
  const { out } = ctx
  out.result(report, () => {
    if (report.actions.length === 0) out.line(`nothing to do in ${report.home}`)
    else {
      out.table(['ACTION', 'DONE', 'PATH', 'WHY'], report.actions.map((a) => [
        a.kind,
        report.dryRun ? 'dry-run' : a.done ? out.status('ok') : out.status('fail'),
        a.path,
        a.error?.message ?? a.why,
      ]))
    }
    if (report.liveBoxes.length > 0) out.line(`left alone (live shim): ${report.liveBoxes.join(', ')}`)
    if (report.skippedBoxes.length > 0) out.line(`left alone (being set up or excluded): ${report.skippedBoxes.join(', ')}`)
    for (const w of report.warnings) out.line(`${out.status('warn')} ${w.path}: ${w.why}${w.error === undefined ? '' : ` (${w.error.message})`}`)
  })
  return report.actions.some((a) => !report.dryRun && !a.done) ? 1 : 0
}

async function id (ctx: Context): Promise<number> {
  const boxId = mintBoxId()
  ctx.out.result({ id: boxId }, () => ctx.out.line(boxId))
  return 0
}

// doctor and demo (with its QEMU guest) load only when run: every other
// command starts without parsing them.
const HANDLERS: Record<string, Handler> = {
  doctor: async (ctx) => await (await import('./doctor.ts')).doctor(ctx),
  prepare,
  'box prepare': boxPrepare,
  'box inspect': boxInspect,
  'box cleanup': boxCleanup,
  'box list': boxList,
  'box ca': boxCa,
  df: async (ctx) => await (await import('./df.ts')).df(ctx),
  'box boot publish': boxBootPublish,
  'box boot show': boxBootShow,
  lock: async (ctx) => await (await import('./lock.ts')).lock(ctx),
  'box jail': async (ctx) => await (await import('./jail.ts')).boxJail(ctx),
  gc,
  metrics,
  id,
  demo: async (ctx) => await (await import('./demo.ts')).demo(ctx),
}

function contextFor (parsed: Parsed, out: Output): Context {
  const given = typeof parsed.options.home === 'string' ? parsed.options.home : undefined
  let made: HomeLayout | undefined
  const home = (): HomeLayout => (made ??= new HomeLayout(given === undefined ? {} : { home: given }))
  return {
    parsed,
    out,
    home,
    suggest: (command) => `boxlite-layout ${command}${given === undefined ? '' : ` --home ${shellQuote(given)}`}`,
    inheritedLock: async () => {
      const fd = inheritedLockFd()
      if (fd === undefined) return undefined
      return await RuntimeLock.adopt(home().home, fd) ?? undefined
    },
  }
}

/** The CLI's own arguments: what comes before "--" (after it is a jailed command's). */
function own (argv: string[]): string[] {
  const end = argv.indexOf('--')
  return end < 0 ? argv : argv.slice(0, end)
}

/** Run the CLI; resolves to the exit code. */
export async function main (argv: string[], out = new Output({ json: own(argv).includes('--json') })): Promise<number> {
  try {
    if (argv.length === 0 || (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h'))) {
      const text = helpText(version)
      if (argv.length === 0) {
        out.note(text)
        return 2
      }
      out.line(text)
      return 0
    }
    if (argv[0] === '--version' || argv[0] === '-V') {
      out.result({ version }, () => out.line(version))
      return 0
    }
    const found = findCommand(argv)
    if (found.command === undefined) {
      const wantsHelp = own(argv).includes('--help') || own(argv).includes('-h')
      if (found.group !== undefined && wantsHelp) {
        out.line(helpText(version, undefined, found.group))
        return 0
      }
      if (found.group !== undefined) out.note(helpText(version, undefined, found.group))
      throw new UsageError(found.group === undefined
        ? `unknown command ${JSON.stringify(argv.find((a) => !a.startsWith('-')) ?? argv[0])}; run \`boxlite-layout --help\``
        : found.group === 'box boot'
          ? 'box boot needs a command: publish or show'
          : `${found.group} needs a command: prepare, inspect, cleanup, list, ca, boot or jail`)
    }
    if (own(argv).includes('--help') || own(argv).includes('-h')) {
      out.line(helpText(version, found.command))
      return 0
    }
    const parsed = parse(found.command, argv)
    return await HANDLERS[found.command.name]!(contextFor(parsed, out))
  } catch (e) {
    out.error(e)
    if (e instanceof UsageError) return 2
    if (e instanceof LayoutError) return e.code === 'ERR_INVALID_ARG' ? 2 : 1
    if (!out.json && e instanceof Error && e.stack !== undefined) out.note(e.stack)
    return 1
  }
}

const invokedDirectly = process.argv[1] !== undefined &&
  fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url))
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (e: unknown) => {
    process.stderr.write(`boxlite-layout: ${String(e)}\n`)
    process.exitCode = 1
  })
}
