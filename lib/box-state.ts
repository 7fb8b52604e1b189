// What state each box of a home is in, as `box list` shows it: one
// inspect() per box, judged the way gc judges a shim (a pid file it cannot
// read counts as live).
import { LayoutError } from './errors.ts'
import type { BoxInspection } from './inspect.ts'

/** An entry of the boxes dir: a box, a box whose removal was interrupted, or something else. */
export interface BoxEntry {
  name: string
  kind: 'box' | 'trash' | 'stray'
}

/** What boxStatus needs of a home: its boxes, to inspect (HomeLayout has them). */
export interface StatusHome {
  box: (id: string) => { inspect: () => Promise<BoxInspection>, inspectSync: () => BoxInspection }
}

/**
 * live: its shim runs (or its pid file cannot be read); mounted: shared/ is
 * a mount; prepared: neither; trash: a removal was interrupted (gc finishes
 * it); stray: not a box (gc leaves it alone).
 */
export type BoxState = 'live' | 'mounted' | 'prepared' | 'trash' | 'stray'

export interface BoxStatus {
  name: string
  state: BoxState
  /** shared/: what it is and whether the guest could write through it. */
  shared: { kind: string, readOnly: boolean } | null
  socketLink: BoxInspection['socketLink']['state'] | null
  /** The sockets present in sockets/ and what a connect found (listening, refused, not-a-socket). */
  sockets: Array<{ name: string, state: BoxInspection['sockets'][number]['state'] }> | null
  shim: { pid: number | null, alive: boolean, identity: string } | null
  binFiles: number | null
  /** Why a box could not be inspected (its state is then 'prepared'). */
  error?: LayoutError
}

export function stateOf (i: BoxInspection): BoxState {
  if (i.shim.identity === 'verified' || i.shim.identity === 'legacy' || i.shim.identity === 'unreadable') return 'live'
  return i.shared.kind === 'mount' ? 'mounted' : 'prepared'
}

function statusOf (name: string, i: BoxInspection): BoxStatus {
  const shim = i.shim
  return {
    name,
    state: stateOf(i),
    shared: i.shared.kind === 'missing' ? null : { kind: i.shared.kind, readOnly: i.shared.readOnly },
    socketLink: i.socketLink.state,
    sockets: i.sockets.filter((s) => s.state !== 'missing').map((s) => ({ name: s.name, state: s.state })),
    shim: shim.identity === 'unreadable' || !('pid' in shim) || shim.pid === undefined
      ? null
      : { pid: shim.pid, alive: shim.identity !== 'absent', identity: shim.identity },
    binFiles: i.bin.length,
  }
}

const NOTHING = { shared: null, socketLink: null, sockets: null, shim: null, binFiles: null }

/** The status of one entry of boxes/; a box that cannot be inspected carries its error. */
export async function boxStatus (home: StatusHome, entry: BoxEntry): Promise<BoxStatus> {
  if (entry.kind !== 'box') return { name: entry.name, state: entry.kind, ...NOTHING }
  try {
    return statusOf(entry.name, await home.box(entry.name).inspect())
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return { name: entry.name, state: 'prepared', ...NOTHING, error: e }
  }
}

export function boxStatusSync (home: StatusHome, entry: BoxEntry): BoxStatus {
  if (entry.kind !== 'box') return { name: entry.name, state: entry.kind, ...NOTHING }
  try {
    return statusOf(entry.name, home.box(entry.name).inspectSync())
  } catch (e) {
    if (!(e instanceof LayoutError)) throw e
    return { name: entry.name, state: 'prepared', ...NOTHING, error: e }
  }
}
