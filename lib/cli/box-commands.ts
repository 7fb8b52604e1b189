// `box prepare|inspect|cleanup|list`: each a loop of library calls, one per
// box, rendered as a table for people or one JSON document for scripts.
import path from 'node:path'
import type { BoxLayout, CleanupResult, InstallShimResult, MountSharedResult } from '../box.ts'
import { LayoutError } from '../errors.ts'
import type { HomeLayout } from '../home.ts'
import { validateBoxId } from '../ids.ts'
import type { BoxInspection, ExitView } from '../inspect.ts'
import type { EnsureResult } from '../sockets.ts'
import { errorObject, UsageError, type Output } from './output.ts'
import type { Context } from './main.ts'

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

export async function boxPrepare (ctx: Context): Promise<number> {
  const { options } = ctx.parsed
  const isolate = options['isolate-mounts'] === true
  if (options['require-read-only'] === true && !isolate) throw new UsageError('--require-read-only needs --isolate-mounts')
  const boxIds = ids(ctx)
  const shimPath = typeof options.shim === 'string' ? path.resolve(options.shim) : undefined
  const home = ctx.home()
  await home.prepare()
  const results = await eachBox<PreparedBox>(boxIds, async (id) => {
    const box = home.box(id, { isolateMounts: isolate })
    const prepared = await box.prepare()
    const shared = isolate ? await box.mountShared({ require: options['require-read-only'] === true ? 'read-only' : 'any' }) : null
    const shim = shimPath === undefined ? null : await box.installShim(shimPath)
    return { boxDir: prepared.boxDir, socketLink: prepared.socketLink, repaired: prepared.repaired, shared, shim }
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
      if (r.shared?.fallback !== undefined) ctx.out.line(`${ctx.out.status('warn')} fell back to a symlink: ${r.shared.fallback.reason}`)
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
  const results = await eachBox<Omit<CleanupResult, 'socketLink'> & { socketLink: { removed: boolean, error?: string } }>(boxIds, async (id) => {
    const r = await home.box(id).cleanup()
    return { ...r, socketLink: { removed: r.socketLink.removed, ...(r.socketLink.error === undefined ? {} : { error: r.socketLink.error.message }) } }
  })
  ctx.out.result({ home: home.home, boxes: results }, () => {
    const rows = results.filter((r) => !('error' in r)).map((r) => {
      const ok = r as Exclude<typeof r, { error: unknown }>
      return [ok.boxId, ok.removed ? `yes (${ok.entries} entries)` : 'nothing there', String(ok.unmounted),
        ok.socketLink.error ?? (ok.socketLink.removed ? 'removed' : 'absent')]
    })
    if (rows.length > 0) ctx.out.table(['BOX', 'REMOVED', 'UNMOUNTED', 'SOCKET LINK'], rows)
    renderErrors(ctx.out, results)
  })
  return failures(results) > 0 ? 1 : 0
}

function exitText (e: ExitView): string {
  if (e === null) return 'none'
  if ('malformed' in e) return `malformed: ${e.malformed}`
  if ('unreadable' in e) return `unreadable: ${e.unreadable}`
  return JSON.stringify(e)
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
      ['shim process', `${i.shim.identity}${'pid' in i.shim && i.shim.pid !== undefined ? ` (pid ${i.shim.pid})` : ''}: ${i.shim.reason}`],
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

export type BoxState = 'live' | 'mounted' | 'prepared' | 'trash' | 'stray'

export interface BoxListRow {
  name: string
  state: BoxState
  /** shared/: what it is and whether the guest could write through it. */
  shared: { kind: string, readOnly: boolean } | null
  socketLink: BoxInspection['socketLink']['state'] | null
  shim: { pid: number | null, alive: boolean, identity: string } | null
  binFiles: number | null
  /** Why a box could not be inspected. */
  error?: Record<string, unknown>
}

function stateOf (i: BoxInspection): BoxState {
  if (i.shim.identity === 'verified' || i.shim.identity === 'legacy' || i.shim.identity === 'unreadable') return 'live'
  return i.shared.kind === 'mount' ? 'mounted' : 'prepared'
}

function rowOf (name: string, i: BoxInspection): BoxListRow {
  const shim = i.shim
  return {
    name,
    state: stateOf(i),
    shared: i.shared.kind === 'missing' ? null : { kind: i.shared.kind, readOnly: i.shared.readOnly },
    socketLink: i.socketLink.state,
    shim: shim.identity === 'unreadable' || !('pid' in shim) || shim.pid === undefined
      ? null
      : { pid: shim.pid, alive: shim.identity !== 'absent', identity: shim.identity },
    binFiles: i.bin.length,
  }
}

async function listRow (home: HomeLayout, name: string, kind: 'box' | 'trash' | 'stray'): Promise<BoxListRow> {
  const empty = { shared: null, socketLink: null, shim: null, binFiles: null }
  if (kind !== 'box') return { name, state: kind, ...empty }
  let box: BoxLayout
  try {
    box = home.box(name)
    return rowOf(name, await box.inspect())
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return { name, state: 'prepared', ...empty, error: errorObject(e) }
  }
}

export async function boxList (ctx: Context): Promise<number> {
  const home = ctx.home()
  const rows: BoxListRow[] = []
  for (const entry of await home.boxEntries()) rows.push(await listRow(home, entry.name, entry.kind))
  ctx.out.result({ home: home.home, boxes: rows }, () => {
    if (rows.length === 0) {
      ctx.out.line(`no boxes in ${home.home}`)
      return
    }
    ctx.out.table(['BOX', 'STATE', 'SHARED', 'LINK', 'SHIM', 'BIN'], rows.map((r) => [
      r.name,
      r.state,
      r.shared === null ? '-' : `${r.shared.kind} ${r.shared.readOnly ? 'ro' : 'rw'}`,
      r.socketLink ?? '-',
      r.shim === null ? '-' : `${r.shim.pid ?? '?'} ${r.shim.alive ? 'alive' : 'gone'}`,
      r.binFiles === null ? '-' : String(r.binFiles),
    ]))
    for (const r of rows) if (r.error !== undefined) ctx.out.printError(r.error)
  })
  return 0
}
