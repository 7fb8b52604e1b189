// The "Node without the addon" peer: what a runtime hand-rolls today with
// fs and child_process (mount and umount are programs, not syscalls, here):
// no lock, no checks, files copied in place.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

const SHIM_FILES = ['boxlite-shim', 'libkrunfw.so.5', 'libkrunfw.so.5.1.0']

export function lifecycle (home: string, shimDir: string, links: string, n: number, prefix: string): void {
  fs.mkdirSync(links, { recursive: true, mode: 0o700 })
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${String(i).padStart(6, '0')}`
    const box = path.join(home, 'boxes', id)
    fs.mkdirSync(path.join(box, 'sockets'), { recursive: true })
    fs.symlinkSync(path.join(box, 'sockets'), path.join(links, id))
    for (const d of ['tmp', 'disks', 'mounts', 'logs', 'shared', 'bin']) fs.mkdirSync(path.join(box, d))
    execFileSync('mount', ['--bind', path.join(box, 'mounts'), path.join(box, 'shared')])
    execFileSync('mount', ['-o', 'remount,bind,ro', path.join(box, 'shared')])
    for (const f of SHIM_FILES) {
      fs.copyFileSync(path.join(shimDir, f), path.join(box, 'bin', f), fs.constants.COPYFILE_FICLONE_FORCE)
    }
    execFileSync('umount', [path.join(box, 'shared')])
    fs.rmSync(box, { recursive: true })
    fs.unlinkSync(path.join(links, id))
  }
}

export function bindro (src: string, dst: string, n: number): void {
  for (let i = 0; i < n; i++) {
    execFileSync('mount', ['--bind', src, dst])
    execFileSync('mount', ['-o', 'remount,bind,ro', dst])
    execFileSync('umount', [dst])
  }
}

/** Node's own copy loop: copyFileSync per file (FICLONE_FORCE or plain). */
export function cloneSet (srcDir: string, dstDir: string, force: boolean): void {
  for (const f of fs.readdirSync(srcDir)) {
    fs.copyFileSync(path.join(srcDir, f), path.join(dstDir, f), force ? fs.constants.COPYFILE_FICLONE_FORCE : 0)
  }
}

export function sameFs (paths: string[], n: number): number {
  let same = 0
  for (let i = 0; i < n; i++) {
    const devs = paths.map((p) => fs.statSync(p).dev)
    if (devs.every((d) => d === devs[0])) same++
  }
  return same
}

export async function sockBindClose (sockPath: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const server = net.createServer()
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(sockPath, resolve) })
    await new Promise((resolve) => server.close(resolve))
  }
}
