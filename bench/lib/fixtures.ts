// Bench fixtures: a scratch root with loop-mounted XFS (reflink=1) and ext4,
// shim sets, a private socket-link uid, and a teardown that unmounts,
// detaches and removes everything the bench made, by exact path, even when
// the run fails or is interrupted.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export const root = fs.mkdtempSync('/tmp/blx-bench-')
const loops: string[] = []
/** Files and links outside root the bench made (socket links of /tmp/bl-0, perf maps): removed by exact path. */
const strays = new Set<string>()
/** Directories outside root the bench made: removed if empty. */
const strayDirs: string[] = []

/**
 * A private uid for the boxes' socket links: /tmp/bl-{uid} is then the
 * bench's alone (root makes it, owned by that uid) and goes at teardown.
 */
export const linkUid = (() => {
  for (let uid = 2_000_000_000 + (process.pid % 100_000); ; uid++) {
    if (!fs.existsSync(`/tmp/bl-${uid}`)) return uid
  }
})()
export const linkDir = `/tmp/bl-${linkUid}`

/** A path outside root the bench may create (a socket link, a perf map): removed at teardown. */
export function stray (p: string): string {
  strays.add(p)
  return p
}

/** A directory outside root the bench creates if missing: removed at teardown if it made it and it is empty. */
export function strayDir (dir: string): void {
  if (!fs.existsSync(dir)) strayDirs.push(dir)
}

function mountsBelow (dir: string): string[] {
  const out: string[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\040/g, ' ')
    if (mp !== undefined && (mp === dir || mp.startsWith(dir + '/'))) out.push(mp)
  }
  return out.reverse()
}

const hooks: Array<() => void> = []
/** Extra clean-up to run at teardown (first, before the mounts go). */
export function atTeardown (fn: () => void): void {
  hooks.push(fn)
}

let tornDown = false
export function teardown (): void {
  if (tornDown) return
  tornDown = true
  for (const fn of hooks) {
    try { fn() } catch { /* best effort: the rest must still run */ }
  }
  for (const mp of mountsBelow(root)) {
    try { execFileSync('umount', ['-l', mp], { stdio: 'ignore' }) } catch { /* a parent's lazy unmount took it */ }
  }
  for (const loop of loops) {
    try { execFileSync('losetup', ['-d', loop], { stdio: 'ignore' }) } catch { /* already detached */ }
  }
  if (mountsBelow(root).length === 0) fs.rmSync(root, { recursive: true, force: true })
  else console.error(`bench: mounts left under ${root}; not removing it`)
  // Only links and plain files: never follow anything out of /tmp/bl-{uid}.
  for (const p of strays) {
    try { fs.unlinkSync(p) } catch { /* gone already */ }
  }
  fs.rmSync(linkDir, { recursive: true, force: true })
  for (const d of strayDirs) {
    try { fs.rmdirSync(d) } catch { /* not empty: someone else uses it now */ }
  }
}

process.on('exit', teardown)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => { teardown(); process.exit(130) })
}

/** A fresh loop filesystem mounted at root/name (direct I/O where the host allows it). */
export function loopFs (name: string, type: 'xfs' | 'ext4', sizeMb: number): string {
  const dir = path.join(root, name)
  const image = `${dir}.img`
  fs.mkdirSync(dir)
  fs.closeSync(fs.openSync(image, 'w'))
  fs.truncateSync(image, sizeMb * 1024 * 1024)
  if (type === 'xfs') execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image])
  else execFileSync('mkfs.ext4', ['-q', '-F', image])
  // Direct I/O: the loop device writes straight to the image, so the host's page cache holds no second, dirty copy
  // that would be written back later, in the middle of some other implementation's timed batch.
  let loop: string
  try {
    loop = execFileSync('losetup', ['--direct-io=on', '--find', '--show', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim()
  }
  loops.push(loop)
  execFileSync('mount', [loop, dir])
  return dir
}

function fill (file: string, bytes: number, seed: number, mode = 0o644): void {
  const block = Buffer.alloc(1 << 20)
  const fd = fs.openSync(file, 'w', mode)
  for (let off = 0; off < bytes; off += block.length) {
    block.writeUInt32LE(seed ^ off, 0)
    fs.writeSync(fd, block, 0, Math.min(block.length, bytes - off))
  }
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.chmodSync(file, mode)
}

/** The 3-file set of the lifecycle workload: 40 MB shim + 4 MB + 1 MB. Returns the shim's path. */
export function lifecycleShimSet (dir: string): string {
  fs.mkdirSync(dir, { recursive: true })
  fill(path.join(dir, 'boxlite-shim'), 40 << 20, 1, 0o755)
  fill(path.join(dir, 'libkrunfw.so.5'), 4 << 20, 2)
  fill(path.join(dir, 'libkrunfw.so.5.1.0'), 1 << 20, 3)
  return path.join(dir, 'boxlite-shim')
}

/** The 15-file, 71 MB set: a 40 MB shim, ten 1-5 MB libkrunfw.* libraries, four small ones. Returns the shim's path. */
export function fullShimSet (dir: string): string {
  fs.mkdirSync(dir, { recursive: true })
  fill(path.join(dir, 'boxlite-shim'), 40 << 20, 1, 0o755)
  for (let i = 0; i < 10; i++) fill(path.join(dir, `libkrunfw.so.${i}`), ((i % 5) + 1) << 20, 10 + i)
  for (let i = 0; i < 4; i++) fill(path.join(dir, `libkrunfw.meta.${i}`), 256 << 10, 20 + i)
  return path.join(dir, 'boxlite-shim')
}

export function emptyDir (dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.unlinkSync(path.join(dir, f))
}

/** Compile the raw C peers now, with the machine's compiler. */
export function compileC (): string {
  const out = path.join(root, 'blx_bench')
  const src = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'c', 'blx_bench.c')
  execFileSync('cc', ['-O2', '-Wall', '-Wno-format-truncation', '-o', out, src])
  return out
}

/** Newest mtime (ms) of the files under dir whose name passes keep. */
function newest (dir: string, keep: (f: string) => boolean): number {
  let t = 0
  for (const f of fs.readdirSync(dir, { recursive: true })) {
    const p = path.join(dir, String(f))
    if (keep(p)) t = Math.max(t, fs.statSync(p).mtimeMs)
  }
  return t
}

/**
 * dist/ (the CLI rows, the strace and the profile run it) rebuilt with
 * `npm run build:ts` when it is missing or older than lib/. Returns whether
 * it was rebuilt.
 */
export function ensureDist (repo: string): boolean {
  const cli = path.join(repo, 'dist', 'cli.cjs')
  const index = path.join(repo, 'dist', 'index.js')
  const src = newest(path.join(repo, 'lib'), (p) => p.endsWith('.ts'))
  if (fs.existsSync(cli) && fs.existsSync(index) && Math.min(fs.statSync(cli).mtimeMs, fs.statSync(index).mtimeMs) >= src) return false
  execFileSync(process.execPath, [path.join(repo, 'scripts', 'build.mjs')], { cwd: repo, stdio: ['ignore', 'ignore', 'inherit'] })
  return true
}
