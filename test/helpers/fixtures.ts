// Real filesystems for tests, always cleaned up by exact path (even when the
// test fails): scratch dirs, tmpfs mounts, loop-mounted XFS and ext4.
import type { ExecutionContext } from 'ava'
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Mount points at or below dir, deepest first (test-side mountinfo read). */
export function mountsBelow (dir: string): string[] {
  const real = fs.existsSync(dir) ? fs.realpathSync(dir) : dir
  const out: string[] = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (f.length < 5) continue
    const mp = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
    if (mp === real || mp.startsWith(real + '/')) out.push(mp)
  }
  return out.reverse()
}

export function isMountPoint (p: string): boolean {
  return mountsBelow(p).includes(fs.realpathSync(p))
}

function unmountAll (dir: string): void {
  for (const mp of mountsBelow(dir)) {
    try {
      execFileSync('umount', ['-l', mp], { stdio: 'ignore' })
    } catch {
      // Already gone (a parent's lazy unmount took it).
    }
  }
}

/** A scratch dir under /tmp; teardown unmounts everything inside, then removes it. */
export function scratch (t: ExecutionContext, prefix = 'blx-test-'): string {
  const dir = fs.mkdtempSync(path.join('/tmp', prefix))
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
    if (fs.existsSync(dir) && mountsBelow(dir).includes(fs.realpathSync(dir))) execFileSync('umount', ['-l', dir])
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
    if (fs.existsSync(dir) && mountsBelow(dir).includes(fs.realpathSync(dir))) execFileSync('umount', [dir])
    execFileSync('losetup', ['-d', loop])
    fs.rmSync(image, { force: true })
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

/** Count of open fds of this process. */
export function fdCount (): number {
  return fs.readdirSync('/proc/self/fd').length
}
