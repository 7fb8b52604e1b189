// A home's state in the Prometheus text exposition format (0.0.4), for a
// fleet's dashboards: boxes by state, what gc would repair, what storage gc
// would reclaim, when each gc last ran. Everything is read with the dry
// runs (no lock, nothing changed). The numbers are gauges: each says how
// things are now, or what the last run did.
import type { BoxState } from './box-state.ts'
import type { AreaUsage } from './disk-usage.ts'
import { readGcRecord, type GcRecord } from './gc-record.ts'
import type { GcReport } from './gc.ts'
import type { BoxStatus } from './box-state.ts'
import type { StorageGcKind, StorageGcReport } from './storage-gc.ts'

/** What the metrics read of a disk usage report: each area's physical and shared bytes. */
export interface MetricsUsage {
  areas: Array<Pick<AreaUsage, 'name' | 'physicalBytes' | 'sharedBytes'>>
}

export interface HomeMetricsOptions {
  /**
   * Bytes per area (boxlite_layout_area_*_bytes) from a report the caller
   * already has (a DiskUsageReport will do); without it metrics() walks the
   * home with diskUsage().
   */
  usage?: MetricsUsage
}

/** What the metrics read of a home (HomeLayout has it): its dry runs and readings. */
export interface MetricsHome {
  readonly home: string
  boxes: () => Promise<BoxStatus[]>
  gc: (options: { dryRun: true }) => Promise<GcReport>
  gcStorage: () => Promise<StorageGcReport>
  diskUsage: () => Promise<MetricsUsage>
}

/** Everything one exposition is made of. */
export interface MetricsFacts {
  boxes: BoxStatus[]
  gc: GcReport
  storage: StorageGcReport
  lastGc: GcRecord
  usage: MetricsUsage
}

const BOX_STATES: BoxState[] = ['live', 'mounted', 'prepared', 'trash', 'stray']
const STORAGE_KINDS: StorageGcKind[] = ['base', 'disk-image', 'tmp-leftover']

function labelValue (v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

class Exposition {
  #lines: string[] = []

  gauge (name: string, help: string, samples: Array<[labels: Record<string, string>, value: number]>): void {
    if (samples.length === 0) return
    this.#lines.push(`# HELP boxlite_layout_${name} ${help}`, `# TYPE boxlite_layout_${name} gauge`)
    for (const [labels, value] of samples) {
      const text = Object.entries(labels).map(([k, v]) => `${k}="${labelValue(v)}"`).join(',')
      this.#lines.push(`boxlite_layout_${name}${text === '' ? '' : `{${text}}`} ${Number.isFinite(value) ? String(value) : 'NaN'}`)
    }
  }

  text (): string { return this.#lines.join('\n') + '\n' }
}

/** The exposition text for the facts (pure: no I/O). */
export function formatMetrics (facts: MetricsFacts): string {
  const x = new Exposition()
  x.gauge('boxes', 'Entries of boxes/ by state (live, mounted, prepared, trash, stray).',
    BOX_STATES.map((state) => [{ state }, facts.boxes.filter((b) => b.state === state).length]))
  x.gauge('leaked_mounts', 'Mounts inside boxes no live shim owns (gc would detach them).',
    [[{}, facts.gc.actions.filter((a) => a.kind === 'unmount').length]])
  const links = (state: string) => facts.boxes.filter((b) => b.socketLink === state).length
  x.gauge('socket_link_problems', 'Socket links in /tmp/bl-{uid} that are wrong: dangling (gc would remove), foreign, not a link, or missing for a live box.', [
    [{ problem: 'dangling' }, facts.gc.actions.filter((a) => a.kind === 'remove-link').length],
    [{ problem: 'foreign' }, links('foreign')],
    [{ problem: 'not-a-link' }, links('not-a-link')],
    [{ problem: 'missing' }, facts.boxes.filter((b) => b.state === 'live' && b.socketLink === 'missing').length],
  ])
  x.gauge('gc_pending_actions', 'Repairs gc would make now.', [[{}, facts.gc.actions.length]])
  // null where the extent map cannot be known (macOS): those areas are left out.
  const areas = facts.usage.areas
  x.gauge('area_physical_bytes', 'Bytes each home area adds to the filesystem, reflinked extents counted once.',
    areas.flatMap((a) => a.physicalBytes === null ? [] : [[{ area: a.name }, a.physicalBytes]]))
  x.gauge('area_shared_bytes', 'Bytes of each home area in extents shared with another file.',
    areas.flatMap((a) => a.sharedBytes === null ? [] : [[{ area: a.name }, a.sharedBytes]]))

  x.gauge('storage_reclaimable_bytes', 'Bytes of orphaned storage gc --storage --apply would remove (st_size).',
    STORAGE_KINDS.map((kind) => [{ kind }, facts.storage.totals[kind].bytes]))
  x.gauge('storage_orphans', 'Orphaned files gc --storage --apply would remove.',
    STORAGE_KINDS.map((kind) => [{ kind }, facts.storage.totals[kind].count]))
  x.gauge('storage_unreadable_files', 'Stored files (bases, disk images) that could not be read: kept, see gc --storage.',
    [[{}, facts.storage.kept.unreadable]])
  x.gauge('storage_chains_complete', '1 when every backing chain could be read (storage gc can decide), else 0.',
    [[{}, facts.storage.chainsComplete ? 1 : 0]])
  const runs = (['repair', 'storage'] as const).flatMap((gc) => {
    const run = facts.lastGc[gc]
    return run === undefined ? [] : [{ gc, run }]
  })
  x.gauge('last_gc_timestamp_seconds', 'When each gc (repair: gc; storage: gc --storage) last finished an applied run.',
    runs.map(({ gc, run }) => [{ gc }, run.finishedSec]))
  x.gauge('last_gc_actions', 'Actions of the last applied run of each gc.', runs.map(({ gc, run }) => [{ gc }, run.actions]))
  x.gauge('last_gc_failed_actions', 'Actions of the last applied run of each gc that failed.', runs.map(({ gc, run }) => [{ gc }, run.failed]))
  x.gauge('last_gc_reclaimed_bytes', 'Bytes the last applied gc --storage removed.',
    runs.filter(({ run }) => run.bytes !== undefined).map(({ gc, run }) => [{ gc }, run.bytes!]))
  return x.text()
}

async function collect (home: MetricsHome, options: HomeMetricsOptions): Promise<MetricsFacts> {
  return {
    boxes: await home.boxes(),
    gc: await home.gc({ dryRun: true }),
    storage: await home.gcStorage(),
    lastGc: await readGcRecord(home),
    usage: options.usage ?? await home.diskUsage(),
  }
}

/** The home's metrics, as `boxlite-layout metrics` prints them. Reads only. */
export async function homeMetrics (home: MetricsHome, options: HomeMetricsOptions = {}): Promise<string> {
  return formatMetrics(await collect(home, options))
}
