// Observing flock from outside, through /proc/locks: "waiting" is an event
// the kernel shows (a "->" line on the file's inode), not a guess from time.
import fs from 'node:fs'

/** Resolve once some process is blocked in flock() on file; fail after a generous bound. */
export async function blockedOn (file: string, limitMs = 30_000): Promise<void> {
  const ino = fs.statSync(file).ino
  const deadline = Date.now() + limitMs
  for (;;) {
    const blocked = fs.readFileSync('/proc/locks', 'utf8').split('\n')
      .some((l) => l.includes('->') && l.includes('FLOCK') && l.split(/\s+/).some((f) => f.endsWith(`:${ino}`)))
    if (blocked) return
    if (Date.now() > deadline) throw new Error(`nobody blocked on ${file} within ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
