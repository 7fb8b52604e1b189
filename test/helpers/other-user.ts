// Running the package as another user (uid 65534): the clone may live where
// that user cannot read it (root's home is 0700, so is a mktemp -d), so such
// tests run a readable copy of what the CLI needs at run time.
import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { repoRoot, testTmp } from './fixtures.ts'

export const NOBODY = 65534

/** argv prefix that runs a command as uid/gid 65534 with no groups. */
export const asNobody = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups']

function readableByNobody (file: string): boolean {
  return spawnSync(asNobody[0]!, [...asNobody.slice(1), 'test', '-r', file], { stdio: 'ignore' }).status === 0
}

/**
 * A package root uid 65534 can run dist/cli.cjs from: the repo when it can
 * read it, else a copy of dist/, package.json, the loaded addon and the
 * runtime dependency that loads it, removed at teardown.
 */
export function packageForNobody (t: ExecutionContext): string {
  const require = createRequire(import.meta.url)
  const addon = (require('node-gyp-build') as { resolve: (dir: string) => string }).resolve(repoRoot)
  if (readableByNobody(path.join(repoRoot, 'dist', 'cli.cjs')) && readableByNobody(addon)) return repoRoot
  const copy = fs.mkdtempSync(path.join(testTmp, 'blx-pkg-'))
  t.teardown(() => fs.rmSync(copy, { recursive: true, force: true }))
  fs.chmodSync(copy, 0o755)
  for (const rel of ['dist', 'package.json', path.join('node_modules', 'node-gyp-build'), path.relative(repoRoot, addon)]) {
    fs.cpSync(path.join(repoRoot, rel), path.join(copy, rel), { recursive: true })
  }
  for (const entry of fs.readdirSync(copy, { recursive: true })) {
    const p = path.join(copy, String(entry))
    fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o755 : 0o644)
  }
  return copy
}
