// `box prepare|inspect|cleanup|list`: each a loop of library calls, one per
// box, rendered as a table for people or one JSON document for scripts.
import fs from 'node:fs'
import path from 'node:path'
import type { BootAssets, KernelFormat, PublishBootResult } from '../boot.ts'
import { KERNEL_FORMATS } from '../boot.ts'
import type { CleanupResult, InstallShimResult, MountSharedResult } from '../box.ts'
import { invalidArg, LayoutError } from '../errors.ts'
import { validateBoxId } from '../ids.ts'
import type { BoxInspection, ExitView } from '../inspect.ts'
import type { EnsureResult } from '../sockets.ts'
import { errorObject, UsageError, type Output } from './output.ts'
import type { Context } from './context.ts'

function yesNo (b: boolean | null): string {
  return b === null ? 'unknown' : b ? 'yes' : 'no'
}

/** Ids are checked before anything touches the disk: one bad id, nothing done. */
function ids (ctx: Context): string[] {
  return ctx.parsed.positionals.map((id) => validateBoxId(id))
}

/** Run fn for each id; a LayoutError is that box's result, not the end of the loop. */
async function eachBox<T> (boxIds: string[], fn: (id: string) => Promise<T>): Promise<Array<({ boxId: string } & T) | { boxId: string, error: Record<string, unknown> }>> {
  const out: Array<({ boxId: string } & T) | { boxId: string, error: Record<string, unknown> }> = []
  for (const boxId of boxIds) {
    try {
      out.push({ boxId, ...await fn(boxId) })
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e
      out.push({ boxId, error: errorObject(e) })
    }
  }
  return out
}

function failures (results: Array<object>): number {
  return results.filter((r) => 'error' in r).length
}

function renderErrors (out: Output, results: Array<object>): void {
  for (const r of results) {
    if ('error' in r) out.printError((r as { error: Record<string, unknown> }).error)
  }
}

export interface PreparedBox {
  boxDir: string
  socketLink: EnsureResult
  repaired: string[]
  shared: MountSharedResult | null
  shim: InstallShimResult | null
}

/**
 * The shim --shim names: an existing regular file (symlinks to one are
 * fine: it is the operator's own path), checked before anything is created.
 */
function shimArgument (given: string | boolean | string[] | undefined): string | undefined {
  if (typeof given !== 'string') return undefined
  if (given === '') throw new UsageError('--shim needs the path of the shim binary')
  const shimPath = path.resolve(given)
  let st: fs.Stats
  try {
    st = fs.statSync(shimPath)
  } catch (e) {
    throw invalidArg(`--shim ${given}: nothing usable at ${shimPath} (${(e as NodeJS.ErrnoException).code ?? 'stat failed'}); give the path of the boxlite-shim binary`)
  }
  if (!st.isFile()) throw invalidArg(`--shim ${given}: ${shimPath} is not a regular file; give the path of the boxlite-shim binary`)
  return shimPath
}

export async function boxPrepare (ctx: Context): Promise<number> {
  const { options } = ctx.parsed
  const isolate = options['isolate-mounts'] === true
  if (options['require-read-only'] === true && !isolate) throw new UsageError('--require-read-only needs --isolate-mounts')
  // Everything that can be checked is checked before anything is created.
  const boxIds = ids(ctx)
  const home = ctx.home()
  for (const id of boxIds) home.box(id).sockets.checkLength()
  const shimPath = shimArgument(options.shim)
  const before = new Set(await home.boxIds())
  await home.prepare()
  const results = await eachBox<PreparedBox>(boxIds, async (id) => {
    const box = home.box(id, { isolateMounts: isolate })
    try {
      const prepared = await box.prepare()
      const shared = isolate ? await box.mountShared({ require: options['require-read-only'] === true ? 'read-only' : 'any' }) : null
      const shim = shimPath === undefined ? null : await box.installShim(shimPath)
      return { boxDir: prepared.boxDir, socketLink: prepared.socketLink, repaired: prepared.repaired, shared, shim }
    } catch (e) {
      // A box this call made is removed again (its link too): a failed
      // prepare leaves nothing behind. A box that was there is left as is.
      if (!before.has(id)) await box.cleanup()
      throw e
    }
  })
  ctx.out.result({ home: home.home, boxes: results }, () => {
    for (const r of results) {
      if ('error' in r) continue
      const box = home.box(r.boxId)
      ctx.out.pairs([
        ['box', `${r.boxId} at ${r.boxDir}`],
        ['socket link', `${r.socketLink.link}: ${box.sockets.bindingDir} -> ${box.socketsDir}`],
        ['shared', r.shared === null
          ? 'not isolated (the host writes shared/ directly)'
          : `${r.shared.method}${r.shared.readOnly ? ' (read-only)' : ' (WRITABLE: symlink fallback)'}${r.shared.reused ? ', reused' : ''}`],
      ])
      if (r.shared?.error !== undefined) ctx.out.line(`${ctx.out.status('warn')} fell back to a symlink: ${r.shared.error.message}`)
      if (r.shim !== null) {
        ctx.out.line()
        ctx.out.table(['FILE', 'METHOD', 'BYTES'], r.shim.files.map((f) => [f.name, f.method, String(f.bytes)]))
      }
      ctx.out.line()
    }
    renderErrors(ctx.out, results)
  })
  return failures(results) > 0 ? 1 : 0
}

export async function boxCleanup (ctx: Context): Promise<number> {
  const boxIds = ids(ctx)
  const home = ctx.home()
  const results = await eachBox<CleanupResult>(boxIds, async (id) => await home.box(id).cleanup({ force: ctx.parsed.options.force === true }))
  ctx.out.result({ home: home.home, boxes: results }, () => {
    const rows = results.filter((r) => !('error' in r)).map((r) => {
      const ok = r as Exclude<typeof r, { error: unknown }>
      return [ok.boxId, ok.removed ? `yes (${ok.entries} entries)` : 'nothing there', String(ok.unmounted),
        ok.socketLink.error?.message ?? (ok.socketLink.removed ? 'removed' : 'absent')]
    })
    if (rows.length > 0) ctx.out.table(['BOX', 'REMOVED', 'UNMOUNTED', 'SOCKET LINK'], rows)
    renderErrors(ctx.out, results)
  })
  return failures(results) > 0 ? 1 : 0
}

function exitText (e: ExitView): string {
  if (e === null) return 'none'
  if ('malformed' in e) return `malformed: ${e.error.message}`
  if ('unreadable' in e) return `unreadable: ${e.error.message}`
  return JSON.stringify(e)
}

/** The sockets present, each with what a connect found: "box.sock listening, net.sock refused". */
function socketsText (sockets: Array<{ name: string, state: string }>): string {
  const present = sockets.filter((s) => s.state !== 'missing')
  return present.length === 0 ? 'none' : present.map((s) => `${s.name} ${s.state}`).join(', ')
}

function sharedText (i: BoxInspection): string {
  const s = i.shared
  if (s.kind === 'mount') return `mount, ${s.readOnly ? 'read-only' : 'WRITABLE'}${s.showsMounts ? ', shows mounts/' : ', NOT mounts/'}`
  if (s.kind === 'symlink') return `symlink (writable fallback)${s.showsMounts ? ' to mounts/' : `, NOT to mounts/: ${s.linkTarget ?? ''}`}`
  return s.kind
}

export async function boxInspect (ctx: Context): Promise<number> {
  const [id] = ids(ctx)
  const i = await ctx.home().box(id!).inspect()
  ctx.out.result(i, () => {
    ctx.out.pairs([
      ['box', `${i.boxId} at ${i.boxDir}`],
      ['isolate mounts', yesNo(i.isolateMounts)],
      ['shared', sharedText(i)],
      ['socket link', `${i.socketLink.state}: ${i.socketLink.path}${i.socketLink.target === undefined ? '' : ` -> ${i.socketLink.target}`}`],
      ['sockets', socketsText(i.sockets)],
      ['shim process', `${i.shim.identity}${'pid' in i.shim && i.shim.pid !== undefined ? ` (pid ${i.shim.pid})` : ''}: ${i.shim.why}${i.shim.error === undefined ? '' : ` (${i.shim.error.message})`}`],
      ['exit', exitText(i.exit)],
      ['exit.previous', exitText(i.exitPrevious)],
    ])
    if (i.bin.length > 0) {
      ctx.out.line()
      ctx.out.table(['BIN FILE', 'BYTES', 'MODE', 'REFLINKED'], i.bin.map((f) => [f.name, String(f.bytes), f.mode, yesNo(f.reflinked)]))
    }
  })
  return 0
}

export async function boxList (ctx: Context): Promise<number> {
  const home = ctx.home()
  const rows = await home.boxes()
  ctx.out.result({ home: home.home, boxes: rows }, () => {
    if (rows.length === 0) {
      ctx.out.line(`no boxes in ${home.home}`)
      return
    }
    ctx.out.table(['BOX', 'STATE', 'SHARED', 'LINK', 'SOCKETS', 'SHIM', 'BIN'], rows.map((r) => [
      r.name,
      r.state,
      r.shared === null ? '-' : `${r.shared.kind} ${r.shared.readOnly ? 'ro' : 'rw'}`,
      r.socketLink ?? '-',
      r.sockets === null ? '-' : socketsText(r.sockets),
      r.shim === null ? '-' : `${r.shim.pid ?? '?'} ${r.shim.alive ? 'alive' : 'gone'}`,
      r.binFiles === null ? '-' : String(r.binFiles),
    ]))
    for (const r of rows) if (r.error !== undefined) ctx.out.error(r.error)
  })
  return 0
}

/** The most a PEM file given to `box ca` may hold: a CA certificate or key is a few KiB. */
const PEM_CAP = 1024 * 1024

/** An operator's PEM file: a regular file (opened without blocking on a FIFO), capped. */
function pemFile (option: string, given: string | boolean | string[] | undefined): Buffer {
  if (typeof given !== 'string' || given === '') throw new UsageError(`box ca needs --${option} FILE`)
  let fd: number
  try {
    fd = fs.openSync(given, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    throw invalidArg(`--${option} ${given}: cannot open it (${(e as NodeJS.ErrnoException).code ?? 'open failed'})`)
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw invalidArg(`--${option} ${given} is not a regular file`)
    if (st.size > PEM_CAP) throw invalidArg(`--${option} ${given} is ${st.size} bytes, more than a PEM file holds (${PEM_CAP})`)
    return fs.readFileSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

export async function boxCa (ctx: Context): Promise<number> {
  const [id] = ids(ctx)
  const cert = pemFile('cert', ctx.parsed.options.cert)
  const key = pemFile('key', ctx.parsed.options.key)
  const box = ctx.home().box(id!)
  await box.writeCa({ cert, key })
  ctx.out.result({ boxId: box.boxId, cert: box.caCertPath, key: box.caKeyPath }, () => {
    ctx.out.pairs([['box', box.boxId], ['cert', `${box.caCertPath} (0644)`], ['key', `${box.caKeyPath} (0600)`]])
  })
  return 0
}

/**
 * --format auto: the format a kernel's first bytes say (ELF, gzip, bzip2,
 * zstd), else raw. A PE with a gzip payload (pe-gz) cannot be told from its
 * first bytes: name it.
 */
function kernelFormat (given: string | boolean | string[] | undefined, kernel: string | undefined): KernelFormat {
  const format = typeof given === 'string' ? given : 'auto'
  if (format !== 'auto') {
    if (!(KERNEL_FORMATS as readonly string[]).includes(format)) {
      throw new UsageError(`--format must be one of ${KERNEL_FORMATS.join(', ')} or auto; got ${JSON.stringify(format)}`)
    }
    return format as KernelFormat
  }
  if (kernel === undefined) throw new UsageError('migrating the legacy boot/kernel needs --format (its format is not recorded anywhere)')
  const head = Buffer.alloc(4)
  let fd: number
  try {
    fd = fs.openSync(kernel, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    throw invalidArg(`--kernel ${kernel}: cannot open it (${(e as NodeJS.ErrnoException).code ?? 'open failed'})`)
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw invalidArg(`--kernel ${kernel} is not a regular file`)
    fs.readSync(fd, head, 0, 4, 0)
  } finally {
    fs.closeSync(fd)
  }
  if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) return 'elf'
  if (head[0] === 0x1f && head[1] === 0x8b) return 'image-gz'
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'image-bz2'
  if (head.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'image-zstd'
  return 'raw'
}

function pathOption (ctx: Context, name: string): string | undefined {
  const given = ctx.parsed.options[name]
  if (given === undefined) return undefined
  if (typeof given !== 'string' || given === '') throw new UsageError(`--${name} needs a FILE`)
  return path.resolve(given)
}

/** The JSON both `box boot` commands print about the current generation. */
function bootJson (boxId: string, bootDir: string, assets: BootAssets | null): Record<string, unknown> {
  return {
    boxId,
    bootDir,
    generation: assets?.manifest.generation ?? null,
    format: assets?.manifest.format ?? null,
    kernel: assets === null ? null : { path: assets.kernelPath, sha256: assets.manifest.kernelSha256 },
    initramfs: assets?.initramfsPath === undefined ? null : { path: assets.initramfsPath, sha256: assets.manifest.initramfsSha256 },
  }
}

function bootPairs (doc: Record<string, unknown>): Array<[string, string]> {
  const file = (f: unknown) => f === null ? 'none' : `${(f as { path: string }).path} (${(f as { sha256: string }).sha256})`
  return [['box', String(doc['boxId'])], ['generation', String(doc['generation'] ?? 'none')], ['format', String(doc['format'] ?? '-')],
    ['kernel', file(doc['kernel'])], ['initramfs', file(doc['initramfs'])]]
}

export async function boxBootPublish (ctx: Context): Promise<number> {
  const [id] = ids(ctx)
  const kernel = pathOption(ctx, 'kernel')
  const initramfs = pathOption(ctx, 'initramfs')
  if (kernel === undefined && initramfs !== undefined) throw new UsageError('--initramfs needs --kernel')
  const format = kernelFormat(ctx.parsed.options.format, kernel)
  const box = ctx.home().box(id!)
  const r: PublishBootResult = await box.publishBoot({
    ...(kernel === undefined ? {} : { kernel }), ...(initramfs === undefined ? {} : { initramfs }), format,
  })
  const doc = {
    ...bootJson(box.boxId, box.bootDir, r),
    pruned: r.pruned,
    legacyRemoved: r.legacyRemoved,
    leftoversRemoved: r.leftoversRemoved,
    // Not `error`: a top-level error is the failure document.
    pruneError: r.error ?? null,
  }
  ctx.out.result(doc, () => {
    ctx.out.pairs([...bootPairs(doc), ['pruned', r.pruned.join(', ') || 'none'],
      ...(r.legacyRemoved.length === 0 ? [] : [['migrated', r.legacyRemoved.map((f) => `boot/${f}`).join(', ')] as [string, string]])])
    if (r.error !== undefined) ctx.out.note(`published, but tidying failed: ${r.error.message}`)
  })
  return 0
}

export async function boxBootShow (ctx: Context): Promise<number> {
  const [id] = ids(ctx)
  const box = ctx.home().box(id!)
  const doc = bootJson(box.boxId, box.bootDir, await box.readBoot())
  ctx.out.result(doc, () => ctx.out.pairs(bootPairs(doc)))
  return 0
}
