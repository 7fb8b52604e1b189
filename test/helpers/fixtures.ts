// Real filesystems for tests, always cleaned up by exact path (even when the
// test fails): scratch dirs, tmpfs mounts, loop-mounted XFS and ext4; what
// goes in them (fake shim sets) and what they hold (pathsBelow); child
// processes.
import type { ExecutionContext } from 'ava'
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMountPoint, mountsBelow } from './mounts.ts'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The dir tests make their temporary dirs in: BLX_TEST_TMP when set (.ci/run
 * gives each run its own, so its leak check sees only its own mounts and
 * loop devices, not those of another run on the machine), else /tmp.
 */
export const testTmp = process.env.BLX_TEST_TMP === undefined || process.env.BLX_TEST_TMP === '' ? '/tmp' : process.env.BLX_TEST_TMP

function unmountAll (dir: string): void {
  for (const mp of mountsBelow(dir)) {
    try {
      execFileSync('umount', ['-l', mp], { stdio: 'ignore' })
    } catch {
      // Already gone (a parent's lazy unmount took it).
    }
  }
}

/** A scratch dir under testTmp; teardown unmounts everything inside, then removes it. */
export function scratch (t: ExecutionContext, prefix = 'blx-test-'): string {
  const dir = fs.mkdtempSync(path.join(testTmp, prefix))
  t.teardown(() => {
    unmountAll(dir)
    if (mountsBelow(dir).length === 0) fs.rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

export function mountTmpfs (t: ExecutionContext, dir: string, options = 'size=64m'): string {
  fs.mkdirSync(dir, { recursive: true })
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'blx-test', dir])
  t.teardown(() => {
    // Gone when the test renamed a parent; scratch()'s teardown finds it there.
    if (isMountPoint(dir)) execFileSync('umount', ['-l', dir])
  })
  return dir
}

export type LoopFsType = 'xfs' | 'ext4'

/**
 * A fresh loop-mounted filesystem at `dir`: XFS with reflink=1, or ext4
 * (no reflink). Teardown unmounts it and detaches its loop device.
 */
export function mountLoopFs (t: ExecutionContext, dir: string, type: LoopFsType, sizeMb = 300): string {
  const image = `${dir}.img`
  fs.mkdirSync(dir, { recursive: true })
  fs.closeSync(fs.openSync(image, 'w'))
  fs.truncateSync(image, sizeMb * 1024 * 1024)
  if (type === 'xfs') execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', image])
  else execFileSync('mkfs.ext4', ['-q', '-F', image])
  const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim()
  t.teardown(() => {
    try {
      if (isMountPoint(dir)) {
        try {
          execFileSync('umount', [dir], { stdio: 'pipe' })
        } catch {
          // EBUSY (an fd or a cwd still in it): detach now, freed once unused.
          execFileSync('umount', ['-l', dir])
        }
      }
    } finally {
      // Always this exact device; after a lazy unmount it autoclears on release.
      try {
        execFileSync('losetup', ['-d', loop])
      } finally {
        fs.rmSync(image, { force: true })
      }
    }
  })
  execFileSync('mount', [loop, dir])
  return dir
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Run a command to completion, collecting output. */
export function run (cmd: string, args: string[], options: SpawnOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/** Arguments to run a TypeScript file with this repo's loader: node --import tsx file. */
export function tsNode (file: string, ...args: string[]): string[] {
  return ['--import', 'tsx', path.join(repoRoot, file), ...args]
}

/**
 * tsx's transform cache: it writes there with fs.promises on the libuv pool,
 * at moments of its own, so an fd of it may be open at any instant.
 */
const tsxCacheDir = path.join(os.tmpdir(), `tsx-${process.getuid?.() ?? ''}`)

/**
 * This process's open fds, fd -> target, leaving out the test loader's
 * cache files (above): a count that includes them moves by one whenever a
 * cache write is in flight, which says nothing about the library.
 */
export function openFds (): Map<number, string> {
  const open = new Map<number, string>()
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // closed between the listing and the readlink (readdir's own fd, for one)
    }
    if (target === tsxCacheDir || target.startsWith(`${tsxCacheDir}/`)) continue
    open.set(Number(fd), target)
  }
  return open
}

/** Count of open fds of this process (see openFds for what it leaves out). */
export function fdCount (): number {
  return openFds().size
}

/** The fds of `after` that `before` did not have, as "fd -> target". */
export function newFds (before: Map<number, string>, after: Map<number, string>): string[] {
  return [...after].filter(([fd, target]) => before.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`)
}

/**
 * This process's fds open on anything under dir (a removed directory reads
 * as "path (deleted)"). Unlike a count, it is not moved by other tests'
 * child processes whose pipes close meanwhile.
 */
export function fdsUnder (dir: string): string[] {
  const open: string[] = []
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`)
      if (target === dir || target.startsWith(`${dir}/`)) open.push(`${fd} -> ${target}`)
    } catch {
      // Closed between the listing and the readlink (readdir's own fd, for one).
    }
  }
  return open
}

/** bytes of data numbered per 4 KiB block (xor seed): no two blocks, and no two seeds, alike. */
export function payload (bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i += 4096) b.writeUInt32LE((i / 4096) ^ seed, i)
  return b
}

/**
 * A fake shim set in dir (created if missing), as installShim finds it:
 * boxlite-shim (0755) and its libkrunfw.so.5 sibling (the process's default
 * mode, so a umask test sees what the library makes of it). Returns the
 * shim's path.
 */
export function writeShimSet (dir: string, { shimBytes = 64 << 10, libBytes = 16 << 10 } = {}): string {
  const shim = path.join(dir, 'boxlite-shim')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(shim, payload(shimBytes, 1), { mode: 0o755 })
  fs.chmodSync(shim, 0o755)
  fs.writeFileSync(path.join(dir, 'libkrunfw.so.5'), payload(libBytes, 2))
  return shim
}

/** Every path below dir (files, directories, links), relative to it and sorted; [] when dir does not exist. */
export function pathsBelow (dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : []
}

/** A minimal qcow2 image whose header names backing (or nothing); its directory made. */
export function qcow2 (file: string, backing?: string): void {
  const header = Buffer.alloc(512)
  header.write('QFI\xfb', 0, 'latin1')
  header.writeUInt32BE(3, 4)
  if (backing !== undefined) {
    header.writeBigUInt64BE(512n, 8)
    header.writeUInt32BE(Buffer.byteLength(backing), 16)
  }
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, backing === undefined ? header : Buffer.concat([header, Buffer.from(backing)]))
}
