// What every subcommand handler is given: the parsed command line, the
// output, and the home and lock it works on, resolved lazily by main.ts.
import type { HomeLayout } from '../home.ts'
import type { RuntimeLock } from '../locks.ts'
import type { Output } from './output.ts'
import type { Parsed } from './spec.ts'

export interface Context {
  parsed: Parsed
  out: Output
  /** The home --home names, else $BOXLITE_HOME, else $HOME/.boxlite. */
  home: () => HomeLayout
  /** A command to suggest, runnable as pasted: it repeats --home when one was given. */
  suggest: (command: string) => string
  /**
   * The runtime lock a parent `boxlite-layout lock` holds for this home, as
   * named by $BOXLITE_LAYOUT_LOCK_FD; undefined when none is inherited.
   */
  inheritedLock: () => Promise<RuntimeLock | undefined>
}
