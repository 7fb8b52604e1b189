// A sentinel outside the home: files and directories of several modes whose
// every byte, mode and owner is recorded, so an attack that steered a write,
// chmod, rename or delete through a planted path shows up as a difference.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export interface SentinelEntry {
  path: string
  type: 'file' | 'dir' | 'link'
  mode: number
  uid: number
  sha256?: string
}

/** Make the sentinel tree at dir: a 0600 secret, a 0644 file, a 0755 and a 0700 directory. */
export function plantSentinel (dir: string): string {
  fs.mkdirSync(path.join(dir, 'private'), { recursive: true, mode: 0o700 })
  fs.chmodSync(path.join(dir, 'private'), 0o700)
  fs.writeFileSync(path.join(dir, 'secret'), 'TOPSECRET host data\n', { mode: 0o600 })
  fs.chmodSync(path.join(dir, 'secret'), 0o600)
  fs.writeFileSync(path.join(dir, 'public'), 'public host data\n', { mode: 0o644 })
  fs.writeFileSync(path.join(dir, 'private', 'key'), 'KEYMATERIAL\n', { mode: 0o600 })
  fs.writeFileSync(path.join(dir, '.x.blx-0123456789abcdef'), 'looks like a partial copy, is not ours\n')
  fs.chmodSync(dir, 0o755)
  return dir
}

/** Every entry below dir (dir included), sorted: path, type, mode, owner, content hash. */
export function snapshot (dir: string): SentinelEntry[] {
  const out: SentinelEntry[] = []
  const visit = (p: string) => {
    const st = fs.lstatSync(p)
    const rel = path.relative(dir, p) || '.'
    if (st.isSymbolicLink()) {
      out.push({ path: rel, type: 'link', mode: st.mode & 0o7777, uid: st.uid, sha256: fs.readlinkSync(p) })
    } else if (st.isDirectory()) {
      out.push({ path: rel, type: 'dir', mode: st.mode & 0o7777, uid: st.uid })
      for (const name of fs.readdirSync(p).sort()) visit(path.join(p, name))
    } else {
      out.push({ path: rel, type: 'file', mode: st.mode & 0o7777, uid: st.uid, sha256: crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') })
    }
  }
  visit(dir)
  return out
}
