// Observing flock from outside, through /proc/locks: "waiting" is an event
// the kernel shows (a "->" line on the file's inode), not a guess from time.
import fs from 'node:fs'

/**
 * How /proc/locks names a file: MAJ:MIN:INO, major and minor of its device
 * in hex (glibc's major()/minor() of st_dev), the inode in decimal. The
 * device counts: an inode number alone repeats across filesystems.
 */
function procLocksId (file: string): string {
  const { dev, ino } = fs.statSync(file, { bigint: true })
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn)
  const hex = (n: bigint): string => n.toString(16).padStart(2, '0')
  return `${hex(major)}:${hex(minor)}:${ino}`
}

/** Resolve once some process is blocked in flock() on file; fail after a generous bound. */
export async function blockedOn (file: string, limitMs = 30_000): Promise<void> {
  const id = procLocksId(file)
  const deadline = Date.now() + limitMs
  for (;;) {
    const blocked = fs.readFileSync('/proc/locks', 'utf8').split('\n')
      .some((l) => l.includes('->') && l.includes('FLOCK') && l.split(/\s+/).includes(id))
    if (blocked) return
    if (Date.now() > deadline) throw new Error(`nobody blocked on ${file} within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
