// `boxlite-layout doctor`: what works on this host, each answer tried rather
// than guessed (a real read-only bind, a real clone on the home's filesystem).
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cloneFileSync } from '../clone.ts'
import { LayoutError } from '../errors.ts'
import { probeSync } from '../fs-facts.ts'
import type { HomeLayout } from '../home.ts'
import { mintBoxId } from '../ids.ts'
import { binding } from '../native.ts'
import { BoxSockets, currentUid, SOCKET_PATH_LIMIT, SocketNames } from '../sockets.ts'
import type { Status } from './output.ts'

export interface Check {
  name: string
  status: Status
  detail: string
  hint?: string
}

export interface DoctorReport {
  home: string
  checks: Check[]
  ok: number
  warn: number
  fail: number
}

function check (name: string, status: Status, detail: string, hint?: string): Check {
  return { name, status, detail, ...(hint === undefined ? {} : { hint }) }
}

function describe (e: unknown): string {
  return e instanceof LayoutError ? e.message : String(e)
}

/** CAP_SYS_ADMIN (bit 21) in the effective set. */
export function hasSysAdmin (): boolean {
  if (process.platform !== 'linux') return process.getuid?.() === 0
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))
  return m !== null && (BigInt(`0x${m[1]!}`) & (1n << 21n)) !== 0n
}

function platformCheck (): Check {
  const detail = `${process.platform} ${os.release()} ${process.arch}, Node ${process.version}`
  if (process.platform === 'darwin') {
    return check('platform', 'ok', `${detail} (layout, clonefile, sockets; shared/ is a symlink: macOS has no bind mounts)`)
  }
  const [major = 0, minor = 0] = os.release().split('.').map((n) => Number.parseInt(n, 10))
  if (major > 4 || (major === 4 && minor >= 18)) return check('platform', 'ok', detail)
  return check('platform', 'fail', `${detail}: kernel older than 4.18`, 'upgrade the kernel (statx and FICLONE need 4.18)')
}

function privilegeCheck (): Check {
  const uid = currentUid()
  if (hasSysAdmin()) return check('privilege', 'ok', `uid ${uid} with CAP_SYS_ADMIN: read-only bind mounts possible`)
  return check('privilege', 'warn', `uid ${uid} without CAP_SYS_ADMIN: shared/ falls back to a symlink the guest could write through`,
    'run as root, or inside a user+mount namespace (unshare -Urm), or use require: \'read-only\' to refuse the fallback')
}

/** A scratch dir on the home's filesystem (or its nearest existing ancestor). */
function scratchNear (home: HomeLayout): { dir: string, base: string, remove: () => void } {
  let base = fs.existsSync(home.tmpDir) ? home.tmpDir : home.home
  while (!fs.existsSync(base)) base = path.dirname(base)
  const dir = fs.mkdtempSync(path.join(base, '.blx-doctor-'))
  return { dir, base, remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

function mountChecks (dir: string): Check[] {
  if (process.platform !== 'linux') return [check('mount api', 'warn', 'no bind mounts on this platform: shared/ will be a symlink')]
  const api = binding().newMountApiAvailable()
    ? check('mount api', 'ok', 'new mount API (open_tree + mount_setattr + move_mount): read-only before visible')
    : check('mount api', 'warn', 'classic mount(2) only (kernel < 5.12): read-only is applied mount by mount after the bind',
      'a kernel >= 5.12 makes the tree read-only before it becomes visible')
  if (!hasSysAdmin()) return [api, check('read-only bind', 'warn', 'not tried: no privilege to mount')]
  const src = path.join(dir, 'mounts')
  const dst = path.join(dir, 'shared')
  fs.mkdirSync(src)
  fs.mkdirSync(dst)
  let method: string
  try {
    method = binding().bindReadOnly(src, dst, false)
  } catch (e) {
    const code = (e as { errno?: number }).errno
    return [api, check('read-only bind', 'warn', `tried and failed (errno ${String(code)}): shared/ will fall back to a symlink`,
      'check for a seccomp or LSM policy that blocks mount syscalls')]
  }
  let ro = false
  try {
    fs.writeFileSync(path.join(dst, 'probe'), 'x')
  } catch (e) {
    ro = (e as NodeJS.ErrnoException).code === 'EROFS'
  } finally {
    binding().unmount(dst)
  }
  return [api, ro
      ? check('read-only bind', 'ok', `tried: ${method} mount, writes fail with EROFS`)
      : check('read-only bind', 'fail', `tried: ${method} mount, but writes succeeded`, 'report this: the kernel ignored MOUNT_ATTR_RDONLY')]
}

function reflinkCheck (dir: string, base: string): Check {
  const src = path.join(dir, 'src')
  fs.writeFileSync(src, crypto.randomBytes(64 * 1024))
  const fsName = probeSync(dir).fsType.name
  try {
    const r = cloneFileSync(src, path.join(dir, 'dst'), { mode: 'force' })
    return check('reflink', 'ok', `tried: ${r.method} works on ${fsName} (${base}): shim copies cost almost nothing`)
  } catch (e) {
    const code = e instanceof LayoutError ? e.code : 'error'
    return check('reflink', 'warn', `tried: no reflink on ${fsName} (${base}, ${code}): each box gets a full copy of the shim`,
      'put BOXLITE_HOME on XFS (mkfs.xfs -m reflink=1), btrfs or APFS')
  }
}

function homeChecks (home: HomeLayout): Check[] {
  const out: Check[] = []
  if (!fs.existsSync(home.home)) {
    out.push(check('home', 'warn', `${home.home} does not exist yet`, 'run `boxlite-layout prepare`'))
    return out
  }
  try {
    fs.accessSync(home.home, fs.constants.W_OK)
    out.push(check('home', 'ok', `${home.home} (${probeSync(home.home).fsType.name})`))
  } catch {
    out.push(check('home', 'fail', `${home.home} is not writable by uid ${currentUid()}`, 'fix its ownership or set BOXLITE_HOME'))
  }
  const dirs = [home.tmpDir, home.basesDir, home.images.diskImagesDir]
  if (dirs.every((d) => fs.existsSync(d))) {
    try {
      home.validateSameFilesystemSync()
      out.push(check('same filesystem', 'ok', 'tmp, bases and images/disk-images share one filesystem (atomic rename works)'))
    } catch (e) {
      out.push(check('same filesystem', 'fail', describe(e), 'keep tmp/, bases/ and images/disk-images/ on one filesystem'))
    }
  } else {
    out.push(check('same filesystem', 'warn', 'home not fully prepared', 'run `boxlite-layout prepare`'))
  }
  return out
}

function socketChecks (home: HomeLayout): Check[] {
  const sample = new BoxSockets(mintBoxId(), path.join(home.boxesDir, 'x'.repeat(12), 'sockets'))
  const out: Check[] = []
  const direct = Buffer.byteLength(path.join(sample.realDir, SocketNames.NET_KRUN))
  const via = direct < SOCKET_PATH_LIMIT ? '' : ` (the direct path would be ${direct} bytes: the link is what makes it fit)`
  if (sample.headroom() >= 0) {
    out.push(check('sun_path headroom', 'ok',
      `${sample.headroom()} bytes to spare with 12-char ids; ids up to ${12 + sample.headroom()} bytes fit${via}`))
  } else {
    out.push(check('sun_path headroom', 'fail', `even 12-char ids overflow ${SOCKET_PATH_LIMIT} bytes under ${sample.parentDir}`))
  }
  const parent = sample.parentDir
  let st: fs.Stats | undefined
  try {
    st = fs.lstatSync(parent)
  } catch {
    out.push(check('socket link dir', 'ok', `${parent} will be created (0700) on first prepare`))
    return out
  }
  if (st.isSymbolicLink()) {
    out.push(check('socket link dir', 'fail', `${parent} is a symlink (possible squatting)`, 'find out who made it, then remove it'))
  } else if (!st.isDirectory()) {
    out.push(check('socket link dir', 'fail', `${parent} is not a directory`, 'remove it'))
  } else if (st.uid !== currentUid()) {
    out.push(check('socket link dir', 'fail', `${parent} belongs to uid ${st.uid}`, 'remove it as root; it must be yours'))
  } else if ((st.mode & 0o777) !== 0o700) {
    out.push(check('socket link dir', 'warn', `${parent} has mode ${(st.mode & 0o777).toString(8)}`, 'prepare repairs it to 0700'))
  } else {
    out.push(check('socket link dir', 'ok', `${parent} is yours, 0700`))
  }
  return out
}

function staleCheck (home: HomeLayout): Check {
  if (!fs.existsSync(home.boxesDir)) return check('stale state', 'ok', 'nothing to look at yet')
  try {
    const report = home.gcSync({ dryRun: true })
    if (report.actions.length === 0) return check('stale state', 'ok', 'no leaked mounts, dangling links or leftovers')
    const counts = new Map<string, number>()
    for (const a of report.actions) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1)
    const summary = [...counts].map(([k, n]) => `${n} ${k}`).join(', ')
    return check('stale state', 'warn', `gc would do: ${summary}`, 'run `boxlite-layout gc`')
  } catch (e) {
    return check('stale state', 'warn', `could not check: ${describe(e)}`)
  }
}

export function doctor (home: HomeLayout): DoctorReport {
  const checks: Check[] = [platformCheck(), privilegeCheck()]
  const scratch = scratchNear(home)
  try {
    checks.push(...mountChecks(scratch.dir))
    checks.push(reflinkCheck(scratch.dir, scratch.base))
  } finally {
    scratch.remove()
  }
  checks.push(...homeChecks(home), ...socketChecks(home), staleCheck(home))
  const count = (s: Status) => checks.filter((c) => c.status === s).length
  return { home: home.home, checks, ok: count('ok'), warn: count('warn'), fail: count('fail') }
}
