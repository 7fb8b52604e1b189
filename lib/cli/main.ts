#!/usr/bin/env node
// boxlite-layout: the CLI for jailer setup scripts and operators (SPEC §8).
// Exit codes: 0 ok, 1 failure, 2 usage (bad arguments or ids).
import { Command, CommanderError, Option } from 'commander'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { LayoutError } from '../errors.ts'
import { HomeLayout } from '../home.ts'
import { mintBoxId } from '../ids.ts'
import { demo } from './demo.ts'
import { doctor } from './doctor.ts'
import { inspectBox } from './inspect.ts'
import { Output, type Status } from './output.ts'

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string }

interface GlobalOptions {
  home?: string
  json?: boolean
}

class UsageError extends Error {}

function homeFrom (opts: GlobalOptions): HomeLayout {
  return opts.home === undefined ? new HomeLayout() : new HomeLayout({ home: opts.home })
}

/** --home and --json are accepted before or after any command. */
function withGlobals (cmd: Command): Command {
  return cmd
    .addOption(new Option('--home <dir>', 'BoxLite home (default: $BOXLITE_HOME, else $HOME/.boxlite)'))
    .addOption(new Option('--json', 'print one JSON document (stable; see README)'))
}

function yesNo (b: boolean | null): string {
  return b === null ? 'unknown' : b ? 'yes' : 'no'
}

export function buildProgram (out: Output): Command {
  const program = withGlobals(new Command('boxlite-layout'))
    .description('BoxLite\'s host-side layout: read-only shared mounts, reflink shim copies, sun_path-safe sockets, locks')
    .version(pkg.version)
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showSuggestionAfterError(true)

  const globals = (cmd: Command): GlobalOptions => cmd.optsWithGlobals<GlobalOptions>()

  withGlobals(program.command('doctor'))
    .description('what works on this host: privilege, mount API, reflink, same-fs, sun_path headroom, stale state')
    .action((_opts, cmd: Command) => {
      const report = doctor(homeFrom(globals(cmd)))
      out.result(report, () => {
        out.line(`boxlite-layout doctor: home ${report.home}`)
        out.line()
        out.table(['CHECK', 'STATUS', 'DETAIL'], report.checks.map((c) => [c.name, out.status(c.status), c.detail]))
        const todo = report.checks.filter((c) => c.hint !== undefined && c.status !== 'ok')
        if (todo.length > 0) {
          out.line()
          for (const c of todo) out.line(`${out.status(c.status)} ${c.name}: ${c.hint!}`)
        }
        out.line()
        out.line(`${report.ok} ok, ${report.warn} warn, ${report.fail} fail`)
      })
      if (report.fail > 0) process.exitCode = 1
    })

  withGlobals(program.command('prepare'))
    .description('create the home: boxes, bases, tmp, images/{layers,manifests,disk-images}; check same filesystem')
    .action((_opts, cmd: Command) => {
      const home = homeFrom(globals(cmd))
      const r = home.prepareSync()
      const data = { home: r.home, sameFilesystem: r.sameFilesystem }
      out.result(data, () => {
        out.pairs([
          ['home', r.home],
          ['same filesystem', `yes (${r.sameFilesystem.devices[0]!}: tmp, bases, images/disk-images)`],
        ])
      })
    })

  const box = withGlobals(program.command('box')).description('prepare, inspect or clean up one box')

  withGlobals(box.command('prepare'))
    .description('create the box dir, its socket link and dirs; optionally mount shared/ and install the shim')
    .argument('<id>', 'box id: 1-128 of [A-Za-z0-9_-]')
    .option('--isolate-mounts', 'write into mounts/ and show it read-only at shared/')
    .option('--require-read-only', 'fail rather than fall back to a symlink (needs --isolate-mounts)')
    .option('--shim <path>', 'copy this shim and its libkrunfw.* siblings into bin/')
    .action((id: string, opts: { isolateMounts?: boolean, requireReadOnly?: boolean, shim?: string }, cmd: Command) => {
      if (opts.requireReadOnly === true && opts.isolateMounts !== true) {
        throw new UsageError('--require-read-only needs --isolate-mounts')
      }
      const home = homeFrom(globals(cmd))
      const layout = home.box(id, { isolateMounts: opts.isolateMounts === true })
      if (opts.shim !== undefined && !fs.existsSync(opts.shim)) {
        throw new LayoutError({ code: 'ENOENT', message: `ENOENT: shim ${opts.shim} does not exist`, path: opts.shim })
      }
      home.prepareSync()
      const prepared = layout.prepareSync()
      const shared = opts.isolateMounts === true
        ? layout.mountSharedSync({ require: opts.requireReadOnly === true ? 'read-only' : 'any' })
        : null
      const shim = opts.shim === undefined ? null : layout.installShimSync(opts.shim)
      const data = { boxId: layout.boxId, boxDir: layout.root, socketLink: prepared.socketLink, shared, shim }
      out.result(data, () => {
        out.pairs([
          ['box', `${layout.boxId} at ${layout.root}`],
          ['socket link', `${prepared.socketLink.link}: ${layout.sockets.bindingDir} -> ${layout.socketsDir}`],
          ['shared', shared === null ? 'not isolated (the host writes shared/ directly)'
            : `${shared.method}${shared.readOnly ? ' (read-only)' : ' (WRITABLE: symlink fallback)'}${shared.reused ? ', reused' : ''}`],
        ])
        if (shared?.fallback !== undefined) out.line(`${out.status('warn')} fell back to a symlink: ${shared.fallback.reason}`)
        if (shim !== null) {
          out.line()
          out.table(['FILE', 'METHOD', 'BYTES'], shim.files.map((f) => [f.name, f.method, String(f.bytes)]))
        }
      })
    })

  withGlobals(box.command('inspect'))
    .description('paths, mount and link state, bin files and how they were copied, shim identity, last exit')
    .argument('<id>', 'box id')
    .action((id: string, _opts, cmd: Command) => {
      const i = inspectBox(homeFrom(globals(cmd)), id)
      out.result(i, () => {
        const exit = (e: typeof i.exit) => e === null ? 'none' : 'malformed' in e ? `malformed: ${e.malformed}` : JSON.stringify(e)
        out.pairs([
          ['box', `${i.boxId} at ${i.boxDir}`],
          ['isolate mounts', yesNo(i.isolateMounts)],
          ['shared', `${i.shared.kind}${i.shared.kind === 'mount' ? (i.shared.readOnly ? ', read-only' : ', WRITABLE') : ''}` +
            `${i.shared.kind === 'mount' || i.shared.kind === 'symlink' ? (i.shared.showsMounts ? ', shows mounts/' : ', NOT mounts/') : ''}`],
          ['socket link', `${i.socketLink.state}: ${i.socketLink.path}${i.socketLink.target === undefined ? '' : ` -> ${i.socketLink.target}`}`],
          ['shim process', `${i.shim.identity}${i.shim.pid === undefined ? '' : ` (pid ${i.shim.pid})`}: ${i.shim.reason}`],
          ['exit', exit(i.exit)],
          ['exit.previous', exit(i.exitPrevious)],
        ])
        if (i.bin.length > 0) {
          out.line()
          out.table(['BIN FILE', 'BYTES', 'MODE', 'REFLINKED'], i.bin.map((f) => [f.name, String(f.bytes), f.mode, yesNo(f.reflinked)]))
        }
      })
    })

  withGlobals(box.command('cleanup'))
    .description('unmount everything in the box, remove it without following symlinks, remove its socket link')
    .argument('<id>', 'box id')
    .action((id: string, _opts, cmd: Command) => {
      const r = homeFrom(globals(cmd)).box(id).cleanupSync()
      const data = {
        removed: r.removed,
        entries: r.entries,
        unmounted: r.unmounted,
        socketLink: { removed: r.socketLink.removed, ...(r.socketLink.error === undefined ? {} : { error: r.socketLink.error.message }) },
      }
      out.result(data, () => {
        out.pairs([
          ['removed', r.removed ? `yes (${r.entries} entries)` : 'nothing there'],
          ['unmounted', String(r.unmounted)],
          ['socket link', r.socketLink.error?.message ?? (r.socketLink.removed ? 'removed' : 'absent')],
        ])
      })
    })

  withGlobals(program.command('gc'))
    .description('unmount leaked mounts, finish interrupted removals, drop dangling links and tmp leftovers')
    .option('--dry-run', 'report what would be done; change nothing')
    .action((opts: { dryRun?: boolean }, cmd: Command) => {
      const report = homeFrom(globals(cmd)).gcSync({ dryRun: opts.dryRun === true })
      out.result(report, () => {
        if (report.actions.length === 0) {
          out.line(`nothing to do in ${report.home}`)
        } else {
          out.table(['ACTION', 'DONE', 'PATH', 'WHY'], report.actions.map((a) => [
            a.kind,
            report.dryRun ? 'dry-run' : a.done ? out.status('ok') : out.status('fail'),
            a.path,
            a.error ?? a.reason,
          ]))
        }
        if (report.liveBoxes.length > 0) out.line(`left alone (live shim): ${report.liveBoxes.join(', ')}`)
      })
      if (report.actions.some((a) => !report.dryRun && !a.done)) process.exitCode = 1
    })

  withGlobals(program.command('id'))
    .description('mint a box id (12 base62 characters from the CSPRNG)')
    .action(() => {
      const id = mintBoxId()
      out.result({ id }, () => out.line(id))
    })

  withGlobals(program.command('demo'))
    .description('the whole lifecycle on a throw-away home, as a timed table')
    .option('--keep', 'keep the throw-away home (and the box) for a look afterwards')
    .option('--dir <parent>', 'create the throw-away home under this directory (default /tmp)')
    .action(async (opts: { keep?: boolean, dir?: string }) => {
      const report = await demo({ keep: opts.keep === true, ...(opts.dir === undefined ? {} : { parent: opts.dir }) })
      out.result(report, () => {
        out.line(`boxlite-layout demo: throw-away home ${report.home}`)
        out.line()
        out.table(['STEP', 'MS', 'RESULT'], report.steps.map((s) => [s.step, s.ms.toFixed(2).padStart(7), s.result]))
        out.line()
        const total = report.steps.reduce((n, s) => n + s.ms, 0)
        out.line(`total ${total.toFixed(2)} ms${report.kept ? `; kept: ${report.home}` : '; throw-away home removed'}`)
        const status: Status = report.fallbacks.length === 0 ? 'ok' : 'warn'
        out.line(report.fallbacks.length === 0
          ? `${out.status(status)} no fallbacks: read-only bind mount and reflinked shim copies`
          : `${out.status(status)} fell back: ${report.fallbacks.map((f) => `${f.what} (${f.reason})`).join('; ')}`)
      })
    })

  return program
}

/** Run the CLI; resolves to the exit code. */
export async function main (argv: string[], out = new Output({ json: argv.includes('--json') })): Promise<number> {
  const program = buildProgram(out)
  if (argv.length === 0) {
    program.outputHelp({ error: true })
    return 2
  }
  try {
    process.exitCode = 0
    await program.parseAsync(argv, { from: 'user' })
    return Number(process.exitCode ?? 0)
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return 0
      out.error({ code: 'ERR_USAGE', message: e.message.replace(/^error: /, '') + ' (see --help)' })
      return 2
    }
    if (e instanceof UsageError) {
      out.error({ code: 'ERR_USAGE', message: e.message })
      return 2
    }
    out.error(e)
    if (e instanceof LayoutError) return e.code === 'ERR_INVALID_ARG' ? 2 : 1
    if (!out.json && e instanceof Error && e.stack !== undefined) process.stderr.write(e.stack + '\n')
    return 1
  }
}

const invokedDirectly = process.argv[1] !== undefined &&
  fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)
if (invokedDirectly) {
  // `boxlite-layout doctor | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw e
  })
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (e: unknown) => {
    process.stderr.write(`boxlite-layout: ${String(e)}\n`)
    process.exitCode = 1
  })
}
