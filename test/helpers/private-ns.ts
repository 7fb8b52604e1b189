// Tests that plant symlinks, squat /tmp/bl-{uid} or race the library run in
// a private mount namespace with their own tmpfs on /tmp: nothing they do
// (or get wrong) reaches the host's /tmp, its mount table or another test.
// unshare() cannot be used inside Node (threads), so the namespace is a
// child's: `unshare -m` runs a shell that covers /tmp and execs node.
import type { ExecutionContext } from 'ava'
import { repoRoot, run, tsNode, type ChildResult } from './fixtures.ts'

// Directories under /tmp that must stay visible (the clone itself when it
// lives there, as in CI's /tmp/fresh; a test's scratch dir) are held by an
// fd before the new tmpfs covers /tmp and bound back in place, so their
// absolute paths still work inside. Arguments: how many paths, the paths,
// then the command.
const ENTER = `
set -e
count=$1; shift
i=0; held=""
while [ "$i" -lt "$count" ]; do
  i=$((i + 1)); fd=$((i + 2)); p=$1; shift
  case "$p" in /tmp/*) eval "exec $fd<\\"\\$p\\""; held="$held $fd:$p" ;; esac
done
mount -t tmpfs -o mode=1777,size=1g blx-private-tmp /tmp
for h in $held; do
  fd=\${h%%:*}; p=\${h#*:}
  mkdir -p "$p"; mount --bind --no-canonicalize /proc/self/fd/$fd "$p"; eval "exec $fd<&-"
done
exec "$@"
`

/**
 * Run a command in a private mount namespace with a private /tmp, from the
 * repository root; keep lists directories (without spaces) that stay visible.
 */
export function runInPrivateNamespace (argv: string[], env: NodeJS.ProcessEnv = {}, keep: string[] = []): Promise<ChildResult> {
  const held = [repoRoot, ...keep]
  return run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', ENTER, 'sh', String(held.length), ...held, ...argv],
    { cwd: repoRoot, env: { ...process.env, ...env } })
}

/** Run a test fixture (TypeScript, under tsx) in a private mount namespace with a private /tmp. */
export function inPrivateNamespace (fixture: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return runInPrivateNamespace([process.execPath, ...tsNode(fixture, ...args)], env)
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
