// The mount table as tests see it: /proc/self/mountinfo, read and parsed on
// the test side only (the library itself never reads it).
import fs from 'node:fs'

/** One line of /proc/self/mountinfo, paths unescaped. */
export interface MountInfo {
  /** The mount id, as mountinfo writes it. */
  id: string
  /** The directory of the mounted filesystem shown at mountPoint (a bind mount's source). */
  root: string
  mountPoint: string
  /** Per-mount options, e.g. "ro,nosuid,relatime". */
  options: string
  /** The optional fields ("shared:1 master:2"), empty when there are none. */
  propagation: string
}

/** mountinfo's octal escapes (\040 for a space and so on) undone. */
function unescapeMountPath (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
}

/** Every mount of this process's namespace, in mountinfo's order (parents before what covers them). */
export function mountTable (): MountInfo[] {
  const out: MountInfo[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    const dash = f.indexOf('-', 6)
    if (f.length < 6 || dash < 0) continue
    out.push({
      id: f[0]!,
      root: unescapeMountPath(f[3]!),
      mountPoint: unescapeMountPath(f[4]!),
      options: f[5]!,
      propagation: f.slice(6, dash).join(' '),
    })
  }
  return out
}

function realOrAsIs (p: string): string {
  return fs.existsSync(p) ? fs.realpathSync(p) : p
}

/** Mount points at or below dir, deepest first. */
export function mountsBelow (dir: string): string[] {
  const real = realOrAsIs(dir)
  return mountTable().map((m) => m.mountPoint)
    .filter((mp) => mp === real || mp.startsWith(real + '/'))
    .reverse()
}

/** The mount exactly at mountPoint (the topmost, when several are stacked there), if any. */
export function mountAt (mountPoint: string): MountInfo | undefined {
  const real = realOrAsIs(mountPoint)
  return mountTable().reverse().find((m) => m.mountPoint === real)
}

/** Whether p exists and something is mounted exactly there. */
export function isMountPoint (p: string): boolean {
  return fs.existsSync(p) && mountAt(p) !== undefined
}
