// installShim (SPEC §3): every box gets its own copy of the shim and its
// libkrunfw.* libraries in bin/, so boxes share no text pages. On XFS,
// btrfs or APFS the copy is a reflink and costs almost nothing.
import path from 'node:path'
import { cloneFilesPlan, makeCloneJob, type CloneMethod, type CloneMode } from './clone.ts'
import { invalidArg, layoutError } from './errors.ts'
import { fsReaddir, fsStat } from './fs-effects.ts'
import { nativeOp, perform, type Plan } from './native.ts'

export const SHIM_LIBRARY_PREFIX = 'libkrunfw.'

export interface InstallShimOptions {
  /** Clone mode for every file (default 'auto'); 'force' demands reflinks. */
  mode?: CloneMode
}

export interface InstalledFile {
  name: string
  method: CloneMethod
  bytes: number
}

export interface InstallShimResult {
  binDir: string
  files: InstalledFile[]
}

export function * installShimPlan (binDir: string, shimPath: string, options: InstallShimOptions): Plan<InstallShimResult> {
  if (typeof shimPath !== 'string' || shimPath === '') throw invalidArg('installShim() needs the path of the shim binary')
  const shim = path.resolve(shimPath)
  const shimDir = path.dirname(shim)
  const ctx = { doing: 'cannot install the shim' }

  // Check the input before creating bin/: bad input leaves nothing behind.
  const st = yield * perform(fsStat([shim], ctx))
  if (!st.isFile()) {
    throw layoutError(st.isDirectory() ? 'EISDIR' : 'EINVAL',
      `the shim must be a regular file; ${shim} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`,
      { path: shim })
  }
  const siblings = yield * perform(fsReaddir([shimDir], ctx))
  const names = [
    path.basename(shim),
    ...siblings.filter((n) => n.startsWith(SHIM_LIBRARY_PREFIX) && n !== path.basename(shim)).sort(),
  ]

  yield * perform(nativeOp('makeDirs', [[binDir], 0o777], ctx))
  const jobs = names.map((name) => makeCloneJob(path.join(shimDir, name), path.join(binDir, name), {
    mode: options.mode ?? 'auto',
    skipUnchanged: true,
  }))
  const results = yield * cloneFilesPlan(jobs)
  return {
    binDir,
    files: results.map((r, i) => ({ name: names[i]!, method: r.method, bytes: r.bytes })),
  }
}
