// Tests that plant symlinks, squat /tmp/bl-{uid} or race the library run in
// a private mount namespace with their own tmpfs on /tmp: nothing they do
// (or get wrong) reaches the host's /tmp, its mount table or another test.
// unshare() cannot be used inside Node (threads), so the namespace is a
// child's: `unshare -m` runs a shell that covers /tmp and execs node.
import type { ExecutionContext } from 'ava'
import { repoRoot, run, tsNode, type ChildResult } from './fixtures.ts'

// When the clone itself lives under /tmp (CI clones to /tmp/fresh), it is
// held by an fd before the new tmpfs covers /tmp and bound back in place,
// so every absolute path of the repository still works inside.
const ENTER = `
set -e
repo="$1"; shift
case "$repo" in /tmp/*) exec 3<"$repo" ;; esac
mount -t tmpfs -o mode=1777,size=1g blx-private-tmp /tmp
case "$repo" in /tmp/*) mkdir -p "$repo"; mount --bind --no-canonicalize /proc/self/fd/3 "$repo"; exec 3<&- ;; esac
exec "$@"
`

/** Run a test fixture (TypeScript, under tsx) in a private mount namespace with a private /tmp. */
export function inPrivateNamespace (fixture: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', ENTER, 'sh', repoRoot,
    process.execPath, ...tsNode(fixture, ...args)], { cwd: repoRoot, env: { ...process.env, ...env } })
}

/** The JSON document a fixture printed last, or a failure naming what it said. */
export function lastJson<T> (t: ExecutionContext, r: ChildResult): T {
  const line = r.stdout.trim().split('\n').at(-1) ?? ''
  try {
    return JSON.parse(line) as T
  } catch {
    t.fail(`fixture exited ${String(r.code)} without a result:\n${r.stdout}\n${r.stderr}`)
    throw new Error('no result')
  }
}
