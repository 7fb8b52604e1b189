// `boxlite-layout df`: the home's disk usage as a table (or --json), with a
// progress line on a terminal's stderr when the scan takes a while.
import type { UsageBytes } from '../disk-usage.ts'
import type { Context } from './context.ts'

/** A scan shorter than this shows no progress at all. */
const PROGRESS_AFTER_MS = 1000

/** 1536 -> "1.5K", binary units as du -h prints them. */
export function humanBytes (n: number | null): string {
  if (n === null) return '?'
  const units = ['B', 'K', 'M', 'G', 'T', 'P']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]!}`
}

function row (name: string, b: UsageBytes): string[] {
  return [name, String(b.files), humanBytes(b.apparentBytes), humanBytes(b.allocatedBytes), humanBytes(b.sharedBytes),
    humanBytes(b.exclusiveBytes), humanBytes(b.physicalBytes)]
}

export async function df (ctx: Context): Promise<number> {
  const { out } = ctx
  const started = Date.now()
  let shown = false
  const report = await ctx.home().diskUsage({
    onProgress: (p) => {
      if (Date.now() - started < PROGRESS_AFTER_MS) return
      shown = out.progress(`scanning: ${p.files} files, ${humanBytes(p.bytes)}`) || shown
    },
  })
  if (shown) out.progress(null)
  out.result(report, () => {
    const header = ['', 'FILES', 'APPARENT', 'ALLOCATED', 'SHARED', 'EXCLUSIVE', 'PHYSICAL']
    out.table(['AREA', ...header.slice(1)], report.areas.map((a) => row(a.name, a)))
    if (report.boxes.length > 0) {
      out.line()
      out.table(['BOX', ...header.slice(1)], report.boxes.map((b) => row(b.id, b)))
    }
    out.line()
    const t = report.total
    out.pairs([
      ['home', report.home],
      ['physical', report.extentsKnown
        ? `${humanBytes(t.physicalBytes)} (each shared extent once)`
        : 'unknown: the filesystem does not report shared extents (allocated bytes are what can be known)'],
      ['du would say', `${humanBytes(t.duBytes)} (each reflink counted again)`],
      ['filesystem', `${humanBytes(t.fsUsedBytes)} used of ${humanBytes(t.fsSizeBytes)}`],
    ])
    const s = report.skipped
    if (s.mounts + s.special + s.hardLinks > 0) {
      out.line(`not entered: ${s.mounts} mount(s); counted by stat only: ${s.special} FIFO/socket/device(s); ` +
        `hard links counted once: ${s.hardLinks}`)
    }
  })
  return 0
}
