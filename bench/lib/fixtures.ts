// Bench fixtures: a scratch root with loop-mounted XFS and ext4, shim sets,
// and a teardown that unmounts and detaches everything by exact path even
// when the run fails or is interrupted.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export const root = fs.mkdtempSync('/tmp/blx-bench-')
const loops: string[] = []

function mountsBelow (dir: string): string[] {
  const out: string[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]
    if (mp !== undefined && (mp === dir || mp.startsWith(dir + '/'))) out.push(mp)
  }
  return out.reverse()
}

let tornDown = false
export function teardown (): void {
  if (tornDown) return
  tornDown = true
  for (const mp of mountsBelow(root)) {
    try { execFileSync('umount', ['-l', mp], { stdio: 'ignore' }) } catch { /* a parent's lazy unmount took it */ }
  }
  for (const loop of loops) {
    try { execFileSync('losetup', ['-d', loop], { stdio: 'ignore' }) } catch { /* already detached */ }
  }
  if (mountsBelow(root).length === 0) fs.rmSync(root, { recursive: true, force: true })
  else console.error(`bench: mounts left under ${root}; not removing it`)
}

process.on('exit', teardown)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => { teardown(); process.exit(130) })
}

/** A fresh loop filesystem mounted at root/name. */
export function loopFs (name: string, type: 'xfs' | 'ext4', sizeMb: number): string {
  const dir = path.join(root, name)
  const image = `${dir}.img`
  fs.mkdirSync(dir)
  fs.closeSync(fs.openSync(image, 'w'))
  fs.truncateSync(image, sizeMb * 1024 * 1024)
  if (type === 'xfs') execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image])
  else execFileSync('mkfs.ext4', ['-q', '-F', image])
  const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim()
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

/** The 3-file set of the lifecycle workload: 40 MB shim + 4 MB + 1 MB. */
export function lifecycleShimSet (dir: string): string {
  fs.mkdirSync(dir, { recursive: true })
  fill(path.join(dir, 'boxlite-shim'), 40 << 20, 1, 0o755)
  fill(path.join(dir, 'libkrunfw.so.5'), 4 << 20, 2)
  fill(path.join(dir, 'libkrunfw.so.5.1.0'), 1 << 20, 3)
  return path.join(dir, 'boxlite-shim')
}

/** The 15-file, 71 MB set: a 40 MB shim, ten 1-5 MB libraries, four small files. */
export function fullShimSet (dir: string): void {
  fs.mkdirSync(dir, { recursive: true })
  fill(path.join(dir, 'boxlite-shim'), 40 << 20, 1, 0o755)
  for (let i = 0; i < 10; i++) fill(path.join(dir, `libkrunfw.so.${i}`), ((i % 5) + 1) << 20, 10 + i)
  for (let i = 0; i < 4; i++) fill(path.join(dir, `libkrunfw.meta.${i}`), 256 << 10, 20 + i)
}

export function emptyDir (dir: string): void {
  for (const f of fs.readdirSync(dir)) fs.unlinkSync(path.join(dir, f))
}

/** Compile the raw C baselines now, with the machine's compiler. */
export function compileC (): string {
  const out = path.join(root, 'blx_bench')
  const src = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'c', 'blx_bench.c')
  execFileSync('cc', ['-O2', '-Wall', '-Wno-format-truncation', '-o', out, src])
  return out
}
