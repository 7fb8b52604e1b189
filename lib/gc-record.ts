// The last gc runs, kept in the home so that `metrics` can say when gc last
// ran and what it did: {home}/.boxlite-layout-gc.json, beside the runtime
// lock file this package already keeps there (logs/ may not exist, and tmp/
// is what gc empties). Written atomically (temp + rename) under the runtime
// lock by the gc that ran; dry runs are not recorded.
import { LayoutError } from './errors.ts'
import { nativeCall, type NativeCall } from './native.ts'

export const GC_RECORD_NAME = '.boxlite-layout-gc.json'
const GC_RECORD_CAP = 4096

/** What the record needs of a home: its path (HomeLayout has it). */
export interface RecordedHome {
  readonly home: string
}

/** One applied gc run. */
export interface GcRunRecord {
  /** When it finished, seconds since the epoch. */
  finishedSec: number
  actions: number
  failed: number
  /** Bytes it freed (storage gc only). */
  bytes?: number
}

/** The last run of each gc. */
export interface GcRecord {
  repair?: GcRunRecord
  storage?: GcRunRecord
}

function parseRecord (text: string | null): GcRecord {
  if (text === null) return {}
  try {
    const value = JSON.parse(text) as unknown
    if (value === null || typeof value !== 'object') return {}
    const out: GcRecord = {}
    for (const key of ['repair', 'storage'] as const) {
      const run = (value as Record<string, unknown>)[key] as Partial<GcRunRecord> | undefined
      if (run !== undefined && typeof run.finishedSec === 'number' && typeof run.actions === 'number' && typeof run.failed === 'number') {
        out[key] = { finishedSec: run.finishedSec, actions: run.actions, failed: run.failed, ...(typeof run.bytes === 'number' ? { bytes: run.bytes } : {}) }
      }
    }
    return out
  } catch {
    // Not ours or torn by hand: metrics shows no last run rather than failing.
    return {}
  }
}

function readCall (home: RecordedHome): NativeCall<GcRecord> {
  return nativeCall('fileRead', [home.home, '', GC_RECORD_NAME, GC_RECORD_CAP],
    { doing: `cannot read the gc record ${home.home}/${GC_RECORD_NAME}` }, parseRecord)
}

function writeCall (home: RecordedHome, record: GcRecord): NativeCall<undefined> {
  return nativeCall('fileWrite', [home.home, '', GC_RECORD_NAME, `${JSON.stringify(record)}\n`, 0o644],
    { doing: `cannot write the gc record ${home.home}/${GC_RECORD_NAME}` })
}

export async function readGcRecord (home: RecordedHome): Promise<GcRecord> { return await readCall(home).async() }
export function readGcRecordSync (home: RecordedHome): GcRecord { return readCall(home).sync() }

/**
 * Record one applied run (the caller holds the runtime lock). Returns the
 * error met when the record could not be written: gc's work is done
 * either way, so the caller reports it as a warning.
 */
export async function noteGcRun (home: RecordedHome, which: keyof GcRecord, run: GcRunRecord): Promise<LayoutError | undefined> {
  try {
    const record = await readCall(home).async()
    await writeCall(home, { ...record, [which]: run }).async()
    return undefined
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return e
  }
}

export function noteGcRunSync (home: RecordedHome, which: keyof GcRecord, run: GcRunRecord): LayoutError | undefined {
  try {
    const record = readCall(home).sync()
    writeCall(home, { ...record, [which]: run }).sync()
    return undefined
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return e
  }
}
