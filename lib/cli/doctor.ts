// `boxlite-layout doctor`: what works on this host, each answer tried rather
// than guessed: a real read-only bind in a scratch box, a real clone on the
// home's filesystem, the home checked by the same code every operation uses.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cloneFile } from '../clone.ts'
import { LayoutError } from '../errors.ts'
import { newMountApiAvailable, probe } from '../fs-facts.ts'
import { HomeLayout } from '../home.ts'
import { mintBoxId } from '../ids.ts'
import { BoxSockets, currentUid, SOCKET_PATH_LIMIT, SocketNames } from '../sockets.ts'
import type { Context } from './context.ts'
import type { Status } from './output.ts'

export interface Check {
  name: string
  status: Status
  detail: string
  /** What to do, runnable as pasted where it is a command. */
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

/** CAP_SYS_ADMIN (bit 21) in the effective set; Linux only (no such thing elsewhere). */
export function hasSysAdmin (): boolean {
  if (process.platform !== 'linux') return false
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

/**
 * What privilege buys on this platform, from facts passed in (so each
 * platform's advice is testable anywhere). Only Linux mounts, and there it
 * takes CAP_SYS_ADMIN; on macOS no privilege gives a bind mount, so root is
 * told nothing about capabilities it cannot have.
 */
export function privilegeCheck (platform: NodeJS.Platform, uid: number, sysAdmin: boolean): Check {
  if (platform !== 'linux') {
    return check('privilege', 'ok', `uid ${uid}: enough for the layout; ${platform} has no bind mounts at any privilege, so shared/ is the reported symlink (see mount api)`)
  }
  if (sysAdmin) return check('privilege', 'ok', `uid ${uid} with CAP_SYS_ADMIN: read-only bind mounts possible`)
  return check('privilege', 'warn', `uid ${uid} without CAP_SYS_ADMIN: shared/ falls back to a symlink the guest could write through`,
    'run as root, or inside a user+mount namespace (unshare -Urm), or pass require: \'read-only\' to refuse the fallback')
}

/** A scratch dir on the home's filesystem (or its nearest existing ancestor's). */
function scratchNear (home: HomeLayout): { dir: string, base: string } {
  let base = fs.existsSync(home.tmpDir) ? home.tmpDir : home.home
  while (!fs.existsSync(base)) base = path.dirname(base)
  return { dir: fs.mkdtempSync(path.join(base, '.blx-doctor-')), base }
}

async function mountChecks (dir: string): Promise<Check[]> {
  if (process.platform !== 'linux') return [check('mount api', 'warn', 'no bind mounts on this platform: shared/ will be a symlink')]
  const api = newMountApiAvailable()
    ? check('mount api', 'ok', 'new mount API (open_tree + mount_setattr + move_mount): read-only before visible')
    : check('mount api', 'warn', 'classic mount(2) only (kernel < 5.12): read-only is applied mount by mount after the bind',
      'a kernel >= 5.12 makes the tree read-only before it becomes visible')
  if (!hasSysAdmin()) return [api, check('read-only bind', 'warn', 'not tried: no privilege to mount')]
  // The real thing, in a scratch home: prepare, mount, try a write, clean up.
  const box = new HomeLayout({ home: path.join(dir, 'home') }).box(mintBoxId(), { isolateMounts: true })
  try {
    await box.prepare()
    const r = await box.mountShared({ require: 'read-only' })
    let writable = true
    try {
      fs.writeFileSync(path.join(box.sharedDir, 'probe'), 'x')
    } catch (e) {
      writable = (e as NodeJS.ErrnoException).code !== 'EROFS'
    }
    return [api, writable
      ? check('read-only bind', 'fail', `tried: ${r.method} mount, but writes succeeded`, 'report this: the kernel ignored the read-only flag')
      : check('read-only bind', 'ok', `tried: ${r.method} mount, writes fail with EROFS`)]
  } catch (e) {
    return [api, check('read-only bind', 'warn', `tried and failed: ${describe(e)}; shared/ would fall back to a symlink`,
      'check for a seccomp or LSM policy that blocks mount syscalls')]
  } finally {
    await box.cleanup()
  }
}

async function reflinkCheck (dir: string, base: string): Promise<Check> {
  const src = path.join(dir, 'src')
  fs.writeFileSync(src, crypto.randomBytes(64 * 1024))
  const fsName = (await probe(dir)).fsType.name
  try {
    const r = await cloneFile(src, path.join(dir, 'dst'), { mode: 'force' })
    return check('reflink', 'ok', `tried: ${r.method} works on ${fsName} (${base}): shim copies cost almost nothing`)
  } catch (e) {
    const code = e instanceof LayoutError ? e.code : 'error'
    return check('reflink', 'warn', `tried: no reflink on ${fsName} (${base}, ${code}): each box gets a full copy of the shim`,
      'put BOXLITE_HOME on XFS (mkfs.xfs -m reflink=1), btrfs or APFS')
  }
}

async function homeChecks (ctx: Context, home: HomeLayout): Promise<Check[]> {
  if (!fs.existsSync(home.home)) {
    return [check('home', 'warn', `${home.home} does not exist yet`, `run \`${ctx.suggest('prepare')}\``)]
  }
  const out: Check[] = []
  try {
    // The same checks every operation makes: real directories, ours or
    // root's, not writable by group or others.
    await home.gc({ dryRun: true })
    out.push(check('home', 'ok', `${home.home} (${(await probe(home.home)).fsType.name}): its directories are real, yours and not writable by others`))
  } catch (e) {
    out.push(check('home', 'fail', describe(e), `fix it as the message says, then run \`${ctx.suggest('prepare')}\``))
    return out
  }
  try {
    await home.validateSameFilesystem()
    out.push(check('same filesystem', 'ok', 'tmp, bases and images/disk-images share one filesystem (atomic rename works)'))
  } catch (e) {
    const notPrepared = e instanceof LayoutError && e.reason === 'not-prepared'
    out.push(notPrepared
      ? check('same filesystem', 'warn', 'home not fully prepared', `run \`${ctx.suggest('prepare')}\``)
      : check('same filesystem', 'fail', describe(e), 'keep tmp/, bases/ and images/disk-images/ on one filesystem'))
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
  let st: fs.Stats
  try {
    st = fs.lstatSync(parent)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      out.push(check('socket link dir', 'fail', `cannot look at ${parent}: ${(e as Error).message}`))
      return out
    }
    out.push(check('socket link dir', 'ok', `${parent} will be created (0700) on first prepare`))
    return out
  }
  if (st.isSymbolicLink()) {
    out.push(check('socket link dir', 'fail', `${parent} is a symlink (possible squatting)`, 'find out who made it, then remove it'))
  } else if (!st.isDirectory()) {
    out.push(check('socket link dir', 'fail', `${parent} is not a directory`, `remove it: rm ${parent}`))
  } else if (st.uid !== currentUid()) {
    out.push(check('socket link dir', 'fail', `${parent} belongs to uid ${st.uid}`, `remove it as root: rm -r ${parent}`))
  } else if ((st.mode & 0o777) !== 0o700) {
    out.push(check('socket link dir', 'warn', `${parent} has mode ${(st.mode & 0o777).toString(8)}`, 'the next box prepare tightens it to 0700'))
  } else {
    out.push(check('socket link dir', 'ok', `${parent} is yours, 0700`))
  }
  return out
}

async function staleCheck (ctx: Context, home: HomeLayout): Promise<Check> {
  if (!fs.existsSync(home.boxesDir)) return check('stale state', 'ok', 'nothing to look at yet')
  try {
    const report = await home.gc({ dryRun: true })
    if (report.actions.length === 0) return check('stale state', 'ok', 'no leaked mounts, dangling links or leftovers')
    const counts = new Map<string, number>()
    for (const a of report.actions) counts.set(a.kind, (counts.get(a.kind) ?? 0) + 1)
    const summary = [...counts].map(([k, n]) => `${n} ${k}`).join(', ')
    return check('stale state', 'warn', `gc would do: ${summary}`, `run \`${ctx.suggest('gc')}\``)
  } catch (e) {
    return check('stale state', 'warn', `could not check: ${describe(e)}`)
  }
}

export async function doctorReport (ctx: Context): Promise<DoctorReport> {
  const home = ctx.home()
  const checks: Check[] = [platformCheck(), privilegeCheck(process.platform, currentUid(), hasSysAdmin())]
  const scratch = scratchNear(home)
  // mountChecks detaches its mount or throws, so the scratch dir is removed
  // only once nothing can be mounted inside it.
  checks.push(...await mountChecks(scratch.dir))
  checks.push(await reflinkCheck(scratch.dir, scratch.base))
  fs.rmSync(scratch.dir, { recursive: true, force: true })
  checks.push(...await homeChecks(ctx, home), ...socketChecks(home), await staleCheck(ctx, home))
  const count = (s: Status) => checks.filter((c) => c.status === s).length
  return { home: home.home, checks, ok: count('ok'), warn: count('warn'), fail: count('fail') }
}

export async function doctor (ctx: Context): Promise<number> {
  const report = await doctorReport(ctx)
  const { out } = ctx
  out.result(report, () => {
    out.line(`boxlite-layout doctor: home ${report.home}`)
    out.line()
    out.table(['CHECK', 'STATUS', 'DETAIL'], report.checks.map((c) => [c.name, out.status(c.status), c.detail]))
    const todo = report.checks.filter((c) => c.hint !== undefined && c.status !== 'ok')
    if (todo.length > 0) {
      out.line()
      for (const c of todo) out.line(`${out.status(c.status)} ${c.name}: ${c.hint!}`)
    }
    out.line()
    out.line(`${report.ok} ok, ${report.warn} warn, ${report.fail} fail`)
  })
  return report.fail > 0 ? 1 : 0
}
