// Node fs calls as plan effects (sync and Promise forms), errors re-labelled
// as LayoutError with the caller's context.
import fs from 'node:fs'
import { fromNodeError, type ErrorContext } from './errors.ts'
import { effect, type Effect } from './native.ts'

function wrap<A extends unknown[], R> (
  sync: (...a: A) => R, async: (...a: A) => Promise<R>,
): (args: A, ctx?: ErrorContext) => Effect<R> {
  return (args, ctx = {}) => effect(
    () => { try { return sync(...args) } catch (e) { throw fromNodeError(e, ctx) } },
    async () => { try { return await async(...args) } catch (e) { throw fromNodeError(e, ctx) } },
  )
}

const p = fs.promises

export const fsMkdir = wrap(
  (path: string, mode: number) => { fs.mkdirSync(path, { mode }) },
  async (path: string, mode: number) => { await p.mkdir(path, { mode }) },
)
export const fsRmdir = wrap((path: string) => fs.rmdirSync(path), (path: string) => p.rmdir(path))
export const fsUnlink = wrap((path: string) => fs.unlinkSync(path), (path: string) => p.unlink(path))
export const fsSymlink = wrap(
  (target: string, path: string) => fs.symlinkSync(target, path),
  (target: string, path: string) => p.symlink(target, path),
)
export const fsRename = wrap(
  (from: string, to: string) => fs.renameSync(from, to),
  (from: string, to: string) => p.rename(from, to),
)
export const fsReaddir = wrap((path: string) => fs.readdirSync(path), (path: string) => p.readdir(path))
export const fsLstat = wrap((path: string) => fs.lstatSync(path), (path: string) => p.lstat(path))
export const fsStat = wrap((path: string) => fs.statSync(path), (path: string) => p.stat(path))
export const fsChmod = wrap(
  (path: string, mode: number) => fs.chmodSync(path, mode),
  (path: string, mode: number) => p.chmod(path, mode),
)
export const fsReadFile = wrap(
  (path: string) => fs.readFileSync(path, 'utf8'),
  (path: string) => p.readFile(path, 'utf8'),
)

/** Write via a temp file in the same dir + rename: readers see old or new. */
export const fsWriteFileAtomic = wrap(
  (path: string, data: string | Uint8Array, mode: number) => {
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    try {
      fs.writeFileSync(tmp, data, { mode, flag: 'wx' })
      fs.chmodSync(tmp, mode) // the umask must not loosen or tighten what we promise
      fs.renameSync(tmp, path)
    } catch (e) {
      fs.rmSync(tmp, { force: true })
      throw e
    }
  },
  async (path: string, data: string | Uint8Array, mode: number) => {
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    try {
      await p.writeFile(tmp, data, { mode, flag: 'wx' })
      await p.chmod(tmp, mode)
      await p.rename(tmp, path)
    } catch (e) {
      await p.rm(tmp, { force: true })
      throw e
    }
  },
)
