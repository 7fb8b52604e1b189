// A tiny real Linux guest under QEMU, for proving from inside a VM what a
// box's shared/ looks like to a guest (read-only bind of mounts/ -> EROFS on
// every write) and for `npm run demo:vm`. Dev tooling, not the product: the
// guest tests and demo:vm use it; the published package (and the CLI bundle)
// holds none of it, so the shipped CLI never runs QEMU or apt-get.
//
// The guest
//   Debian 12's generic kernel (linux-image-<abi>-amd64; the cloud flavour
//   lacks 9p), its vmlinux cut out of vmlinuz and booted through the PVH
//   entry; /bin/busybox from busybox-static as the whole userland; the
//   virtio-pci and 9p modules. /init mounts sharedDir over 9p at
//   GUEST_MOUNT_POINT, runs the steps, reports each one as a marker line and
//   powers off. TCG by default, as /dev/kvm on some hosts is a software
//   virtualisation that stock kernels stall on; BOXLITE_LAYOUT_GUEST_ACCEL=kvm
//   opts in to KVM.
//
// Steps
//   A step is { name, run }: `run` is busybox sh text, eval'd in a subshell
//   whose cwd is the mount point, stdin /dev/null. Its exit code, stdout and
//   stderr (first 16 KiB each) come back; when it failed, `errno` is the code
//   whose strerror text appears first in stderr (busybox reports failures as
//   "mkdir: can't create directory 'd': Read-only file system").
//   Steps travel inside the initramfs: it is assembled per boot in memory
//   (busybox + modules + /init + the steps, ~3 MB, a few ms), so nothing
//   per-run is cached and nothing cached can go stale. The kernel command
//   line is too small for steps and fw_cfg needs another module.
//
// Markers
//   The guest has two serial ports. ttyS1 is the kernel console, logged to a
//   file and returned as `console`. ttyS0 is a control channel to QEMU's
//   stdio that only /init writes, so kernel log lines (which printk can drop
//   into the middle of a console line) never touch a marker. Each
//   guest-to-host message is one line
//     @@BLX-<nonce>:<kind>:<fields>:END
//   with a per-boot random nonce and hex-encoded payloads. Kinds: R (a step's
//   result: index, exit code, hex stdout, hex stderr), H (the guest waits for
//   the host), F (init failed before the steps: hex message), D (all done).
//
// Host interaction
//   Step text may call `await_host NAME`: the guest sends an H marker, the
//   runner awaits onMarker(NAME) and then writes "blx-go <nonce>" to the
//   control channel, which await_host reads before returning.
//   `wait_for PATH [MAX_POLLS]` polls every 100 ms (default at most 100
//   polls, 10 s) and prints "seen after N polls" or "not seen after N polls".
//   So "the host writes mounts/x while the guest runs" is the step
//     await_host host-write && wait_for x && cat x
//   with an onMarker that writes the file.
//
// Cache ($BOXLITE_LAYOUT_CACHE, else $XDG_CACHE_HOME/boxlite-layout, else
// ~/.cache/boxlite-layout)
//   guest/<package>_<version>.<hash>/{vmlinux, modules/*.ko, kernel.json}
//   <hash> covers the wanted module list and this layout, so changing either
//   fetches afresh. The newest complete entry is used without asking apt
//   (apt-cache alone costs ~1 s); delete the directory to pick up a newer
//   kernel. Entries are built in a .tmp-<pid>-* sibling and renamed into
//   place; a process that loses the rename race uses the winner's entry.
//
// Cleanup
//   QEMU is SIGKILLed (and the per-boot temp dir removed) on timeout, on any
//   error and when this process exits or gets SIGINT/SIGTERM/SIGHUP;
//   bootGuest settles only once QEMU is gone, so callers can unmount
//   sharedDir right after. A process killed with SIGKILL cannot clean up:
//   its guest powers itself off after a watchdog (timeout + 5 s) and the
//   next boot removes its temp dir.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { shellQuote } from '../../lib/cli/output.ts'
import { GUEST_SHARED_ROOT } from '../../lib/shared-guest.ts'

export interface GuestStep {
  name: string
  /** busybox sh text, run with cwd at the share's mount point. */
  run: string
}

export interface GuestStepResult {
  name: string
  exitCode: number
  /** When the step failed: e.g. 'EROFS', read off the strerror text in stderr. */
  errno?: string
  stdout: string
  stderr: string
}

export interface GuestRun {
  steps: GuestStepResult[]
  /** The guest's kernel console: boot messages and anything /init printed. */
  console: string
  /** From QEMU's start to its exit. */
  durationMs: number
}

export interface GuestImage {
  kernelPackage: string
  kernelVersion: string
  /** `uname -r` of the guest. */
  kernelRelease: string
  vmlinux: string
  /** The .ko files to insmod, in load order; built-in modules are absent. */
  modules: string[]
}

export interface PrepareOptions {
  /** Progress lines for a person (fetching, extracting). */
  log?: (line: string) => void
}

export interface GuestBootOptions {
  /** Host directory the guest mounts over 9p (a box's shared/). */
  sharedDir: string
  steps: GuestStep[]
  /** Called for each `await_host NAME` in step text; the guest waits for it. */
  onMarker?: (name: string) => Promise<void> | void
  /** QEMU is killed after this long (default 60 s). */
  timeoutMs?: number
  /** Default: prepareGuestImage(). */
  image?: GuestImage
}

export type GuestAvailability = { ok: true } | { ok: false, reason: string }

/** Where the guest sees sharedDir: the guest-side shared root, as in a BoxLite guest. */
export const GUEST_MOUNT_POINT = GUEST_SHARED_ROOT

/** The guest failed to boot, to run its steps or to finish in time. */
export class GuestVmError extends Error {
  readonly console: string

  constructor (message: string, consoleText: string) {
    super(message)
    this.name = 'GuestVmError'
    this.console = consoleText
  }
}

const KERNEL_METAPACKAGE = 'linux-image-amd64'
const BUSYBOX = '/bin/busybox'
const QEMU = 'qemu-system-x86_64'
const DEFAULT_TIMEOUT_MS = 60_000
/** Per stream and step: enough for any probe, short enough for a serial line. */
const OUTPUT_CAP_BYTES = 16 * 1024
/** Per-boot temp dirs (initramfs, console log): <prefix><pid>-XXXXXX. */
const RUN_DIR_PREFIX = 'blx-guest-'
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])

/**
 * Load order for a 9p share on virtio-pci (each after its dependencies, per
 * the modules' own depends=). Modules the kernel has built in are skipped.
 */
const MODULES = [
  'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci',
  'netfs', 'fscache', '9pnet', '9pnet_virtio', '9p',
]
/** Bump when what a cache entry holds changes. */
const CACHE_LAYOUT = 'kernel+modules v1'
const CACHE_SUFFIX = '.' + crypto.createHash('sha256').update(`${CACHE_LAYOUT}\n${MODULES.join('\n')}`).digest('hex').slice(0, 12)

/** Applets /init and the guest helpers use. */
const APPLETS = ['sh', 'mount', 'mkdir', 'insmod', 'hexdump', 'head', 'stty', 'sleep', 'poweroff']

/** strerror texts (glibc, which busybox-static links) of the codes a probe meets. */
const ERRNO_TEXTS: ReadonlyArray<readonly [string, string]> = [
  ['EROFS', 'Read-only file system'],
  ['EACCES', 'Permission denied'],
  ['EPERM', 'Operation not permitted'],
  ['ENOENT', 'No such file or directory'],
  ['EEXIST', 'File exists'],
  ['ENOTDIR', 'Not a directory'],
  ['EISDIR', 'Is a directory'],
  ['ENOTEMPTY', 'Directory not empty'],
  ['ELOOP', 'Too many levels of symbolic links'],
  ['EINVAL', 'Invalid argument'],
  ['EXDEV', 'Invalid cross-device link'],
  ['EBUSY', 'Device or resource busy'],
  ['EOPNOTSUPP', 'Operation not supported'],
  ['EIO', 'Input/output error'],
  // QEMU's 9p server refuses to open special files it made (CVE-2023-2861),
  // so a guest's mkfifo or mknod on a passthrough/none share fails with it.
  ['ENXIO', 'No such device or address'],
]

/** The errno whose text comes first in a failed command's stderr. */
export function errnoFromStderr (stderr: string): string | undefined {
  let found: { code: string, at: number } | undefined
  for (const [code, text] of ERRNO_TEXTS) {
    const at = stderr.indexOf(text)
    if (at >= 0 && (found === undefined || at < found.at)) found = { code, at }
  }
  return found?.code
}

// ---------------------------------------------------------------------------
// Availability

export async function guestAvailability (): Promise<GuestAvailability> {
  if (process.platform !== 'linux') {
    return { ok: false, reason: 'the guest VM needs a Linux host: it is built from Debian packages (a kernel, busybox-static)' }
  }
  if (findExecutable(QEMU) === undefined) {
    return { ok: false, reason: `${QEMU} is not installed: apt-get install qemu-system-x86` }
  }
  const busybox = await checkBusybox()
  if (busybox !== undefined) return { ok: false, reason: busybox }
  if (findCachedKernel(guestCacheDir()) !== undefined) return { ok: true }
  for (const [tool, pkg] of [['apt-get', 'apt'], ['dpkg-deb', 'dpkg'], ['tar', 'tar'], ['xz', 'xz-utils']] as const) {
    if (findExecutable(tool) === undefined) {
      return { ok: false, reason: `the guest kernel is not cached and fetching it needs ${tool}: apt-get install ${pkg}` }
    }
  }
  try {
    const pkg = await candidateKernelPackage()
    const uris = await run('apt-get', ['download', '--print-uris', pkg])
    if (uris.code !== 0 || !uris.stdout.includes('.deb')) {
      return { ok: false, reason: `apt cannot fetch ${pkg}: run apt-get update (${lastLine(uris.stderr)})` }
    }
  } catch (err) {
    return { ok: false, reason: (err as Error).message }
  }
  return { ok: true }
}

/** Why /bin/busybox cannot be the guest's userland, or undefined if it can. */
async function checkBusybox (): Promise<string | undefined> {
  const fix = 'apt-get install busybox-static'
  let elf: Buffer
  try {
    elf = await fsp.readFile(BUSYBOX)
  } catch {
    return `${BUSYBOX} is missing: ${fix}`
  }
  const EM_X86_64 = 62
  const PT_INTERP = 3
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf.readUInt16LE(18) !== EM_X86_64) {
    return `${BUSYBOX} is not an x86-64 executable, so it cannot run in the x86-64 guest: ${fix} (amd64)`
  }
  const phoff = Number(elf.readBigUInt64LE(32))
  const phentsize = elf.readUInt16LE(54)
  const phnum = elf.readUInt16LE(56)
  if (phoff + phnum * phentsize > elf.length) return `${BUSYBOX} is a truncated executable: ${fix}`
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) {
      return `${BUSYBOX} is dynamically linked and the guest has no libc: ${fix}`
    }
  }
  const list = await run(BUSYBOX, ['--list'])
  const have = new Set(list.stdout.split('\n'))
  const missing = APPLETS.filter((a) => !have.has(a))
  if (missing.length > 0) return `${BUSYBOX} lacks the applets ${missing.join(', ')}: ${fix}`
  return undefined
}

// ---------------------------------------------------------------------------
// Kernel cache

export function cacheRoot (): string {
  const explicit = process.env.BOXLITE_LAYOUT_CACHE
  if (explicit !== undefined && explicit !== '') return explicit
  const xdg = process.env.XDG_CACHE_HOME
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.cache'), 'boxlite-layout')
}

function guestCacheDir (): string {
  return path.join(cacheRoot(), 'guest')
}

interface KernelRecord {
  kernelPackage: string
  kernelVersion: string
  kernelRelease: string
  /** Module names present as files under modules/, in load order. */
  modules: string[]
  builtIn: string[]
}

/** The most recently built complete cache entry for the current module list. */
function findCachedKernel (dir: string): string | undefined {
  let names: string[]
  try {
    names = fs.readdirSync(dir)
  } catch {
    return undefined
  }
  let newest: { entry: string, mtimeMs: number } | undefined
  for (const name of names) {
    if (!name.endsWith(CACHE_SUFFIX) || name.startsWith('.')) continue
    const entry = path.join(dir, name)
    try {
      const { mtimeMs } = fs.statSync(path.join(entry, 'kernel.json'))
      if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { entry, mtimeMs }
    } catch {
      // Not a complete entry.
    }
  }
  return newest?.entry
}

/** The kernel and modules, fetched and extracted on first use, then cached. */
export async function prepareGuestImage (options: PrepareOptions = {}): Promise<GuestImage> {
  const dir = guestCacheDir()
  const entry = findCachedKernel(dir) ?? await fetchKernel(dir, options.log ?? (() => {}))
  const record = JSON.parse(await fsp.readFile(path.join(entry, 'kernel.json'), 'utf8')) as KernelRecord
  return {
    kernelPackage: record.kernelPackage,
    kernelVersion: record.kernelVersion,
    kernelRelease: record.kernelRelease,
    vmlinux: path.join(entry, 'vmlinux'),
    modules: record.modules.map((m) => path.join(entry, 'modules', `${m}.ko`)),
  }
}

/** The ABI-versioned package linux-image-amd64 currently points at. */
async function candidateKernelPackage (): Promise<string> {
  const deps = await run('apt-cache', ['depends', KERNEL_METAPACKAGE])
  const pkg = /Depends: (linux-image-\S+-amd64)/.exec(deps.stdout)?.[1]
  if (deps.code !== 0 || pkg === undefined) {
    throw new Error(`apt knows no ${KERNEL_METAPACKAGE} to take the guest kernel from: run apt-get update (Debian 12 sources)`)
  }
  return pkg
}

async function fetchKernel (dir: string, log: (line: string) => void): Promise<string> {
  await fsp.mkdir(dir, { recursive: true })
  await removeAbandoned(dir, '.tmp-')
  const pkg = await candidateKernelPackage()
  const build = await fsp.mkdtemp(path.join(dir, `.tmp-${process.pid}-`))
  try {
    log(`fetching ${pkg} (apt-get download)`)
    await mustRun('apt-get', ['download', pkg], { cwd: build })
    const deb = (await fsp.readdir(build)).find((f) => f.endsWith('.deb'))
    if (deb === undefined) throw new Error(`apt-get download ${pkg} left no .deb`)
    const debPath = path.join(build, deb)
    const version = (await mustRun('dpkg-deb', ['--field', debPath, 'Version'])).stdout.trim()

    log(`extracting the kernel and ${MODULES.length} modules from ${deb}`)
    const tree = path.join(build, 'deb')
    await fsp.mkdir(tree)
    await extractFromDeb(debPath, tree, [
      './boot/vmlinuz-*',
      './lib/modules/*/modules.builtin',
      ...MODULES.map((m) => `./lib/modules/*/${m}.ko*`),
    ])
    const release = (await fsp.readdir(path.join(tree, 'lib/modules')))[0]
    if (release === undefined) throw new Error(`${deb} has no lib/modules`)
    await cutVmlinux(path.join(tree, 'boot', `vmlinuz-${release}`), path.join(build, 'vmlinux'))
    const { present, builtIn } = await collectModules(path.join(tree, 'lib/modules', release), path.join(build, 'modules'))

    const record: KernelRecord = { kernelPackage: pkg, kernelVersion: version, kernelRelease: release, modules: present, builtIn }
    await fsp.writeFile(path.join(build, 'kernel.json'), JSON.stringify(record, null, 2) + '\n')
    await fsp.rm(tree, { recursive: true })
    await fsp.rm(debPath)
    // mkdtemp made it 0700; a cache shared through BOXLITE_LAYOUT_CACHE must be readable.
    await fsp.chmod(build, 0o755)

    const entry = path.join(dir, `${pkg}_${version}${CACHE_SUFFIX}`)
    try {
      await fsp.rename(build, entry)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err
      // Another process finished the same entry first; theirs is as good.
      await fsp.rm(build, { recursive: true, force: true })
    }
    log(`cached ${pkg} ${version} in ${entry}`)
    return entry
  } catch (err) {
    await fsp.rm(build, { recursive: true, force: true })
    throw err
  }
}

/**
 * <prefix><pid>-* directories whose process is gone: it was SIGKILLed while
 * fetching or booting. Best effort: another user's are not ours to remove.
 */
async function removeAbandoned (dir: string, prefix: string): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    if (!name.startsWith(prefix)) continue
    const pid = /^(\d+)-/.exec(name.slice(prefix.length))?.[1]
    if (pid === undefined || processAlive(Number(pid))) continue
    await fsp.rm(path.join(dir, name), { recursive: true, force: true }).catch(() => {})
  }
}

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * `dpkg-deb --fsys-tarfile | tar -x` of the members matching patterns. A
 * pattern for a module the kernel has built in matches nothing, which tar
 * reports as an error; collectModules checks completeness instead.
 */
async function extractFromDeb (deb: string, into: string, patterns: string[]): Promise<void> {
  const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] })
  const tar = spawn('tar', ['-x', '-C', into, '--wildcards', ...patterns], { stdio: [dpkg.stdout, 'ignore', 'pipe'] })
  // tar has its own copy of the pipe; ours would keep dpkg-deb writing if tar died.
  dpkg.stdout.destroy()
  const [dpkgDone, tarDone] = await Promise.all([finished(dpkg), finished(tar)])
  if (dpkgDone.code !== 0) throw new Error(`dpkg-deb --fsys-tarfile ${deb} failed: ${lastLine(dpkgDone.stderr)}`)
  const realErrors = tarDone.stderr.split('\n').filter((l) =>
    l !== '' && !l.endsWith('Not found in archive') && !l.includes('Exiting with failure status due to previous errors'))
  if (tarDone.code !== 0 && (tarDone.code !== 2 || realErrors.length > 0)) {
    throw new Error(`extracting ${deb} failed: ${realErrors.join('; ')}`)
  }
}

/** vmlinuz is a bzImage around an xz stream of the vmlinux ELF. */
async function cutVmlinux (vmlinuz: string, vmlinux: string): Promise<void> {
  const image = await fsp.readFile(vmlinuz)
  const at = image.indexOf(XZ_MAGIC)
  if (at < 0) throw new Error(`${vmlinuz} holds no xz stream; only xz-compressed kernels are supported`)
  const stream = `${vmlinux}.xz`
  await fsp.writeFile(stream, image.subarray(at))
  // --single-stream: the bzImage trailer after the stream is not an error.
  await xzDecompress(stream, vmlinux, ['--single-stream'])
  await fsp.rm(stream)
  const head = Buffer.alloc(4)
  const fd = await fsp.open(vmlinux)
  try {
    await fd.read(head, 0, 4, 0)
  } finally {
    await fd.close()
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`what ${vmlinuz} decompressed to is not an ELF vmlinux`)
}

/**
 * Copy each wanted module, decompressing .ko.xz up front: busybox insmod reads
 * xz only if built to, and decompressing under TCG would cost boot time.
 */
async function collectModules (moduleRoot: string, into: string): Promise<{ present: string[], builtIn: string[] }> {
  const files = new Map<string, string>()
  for (const rel of await fsp.readdir(path.join(moduleRoot, 'kernel'), { recursive: true })) {
    const match = /([^/]+)\.ko(\.xz)?$/.exec(rel)
    if (match?.[1] !== undefined) files.set(match[1], path.join(moduleRoot, 'kernel', rel))
  }
  const builtInList = await fsp.readFile(path.join(moduleRoot, 'modules.builtin'), 'utf8')
  const builtInNames = new Set(builtInList.split('\n').map((l) => path.basename(l, '.ko')))
  await fsp.mkdir(into)
  const present: string[] = []
  const builtIn: string[] = []
  for (const name of MODULES) {
    const file = files.get(name)
    const target = path.join(into, `${name}.ko`)
    if (file?.endsWith('.xz') === true) {
      await xzDecompress(file, target, [])
      present.push(name)
    } else if (file !== undefined) {
      await fsp.copyFile(file, target)
      present.push(name)
    } else if (builtInNames.has(name)) {
      builtIn.push(name)
    } else {
      throw new Error(`the kernel has module ${name} neither as a file nor built in`)
    }
  }
  return { present, builtIn }
}

async function xzDecompress (from: string, to: string, flags: string[]): Promise<void> {
  const input = await fsp.open(from)
  const output = await fsp.open(to, 'w')
  try {
    await mustRun('xz', ['--decompress', '--stdout', ...flags], { stdio: [input.fd, output.fd, 'pipe'] })
  } finally {
    await input.close()
    await output.close()
  }
}

// ---------------------------------------------------------------------------
// Initramfs

/**
 * PID 1. Helpers for step text: await_host NAME, wait_for PATH [MAX_POLLS].
 * /blx/env.sh (per boot) sets BLX_NONCE, BLX_MODULES, BLX_MOUNT,
 * BLX_WATCHDOG_S and BLX_CAP; /blx/steps.sh calls blx_step per step.
 */
const INIT_SCRIPT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
. /blx/env.sh
# The control channel, held open so the host's input is never dropped.
exec 3<>/dev/ttyS0
# The go-ahead for await_host should not come back as an echo.
stty -echo <&3

blx_hex() { hexdump -ve '1/1 "%02x"'; }
blx_mark() { echo "@@BLX-$BLX_NONCE:$1:END" >&3; }
blx_fail() { blx_mark "F:$(printf %s "$1" | blx_hex)"; poweroff -f; }

blx_step() {
  ( cd "$BLX_MOUNT" && eval "$2" ) </dev/null >/tmp/blx.out 2>/tmp/blx.err
  blx_rc=$?
  blx_mark "R:$1:$blx_rc:$(head -c "$BLX_CAP" /tmp/blx.out | blx_hex):$(head -c "$BLX_CAP" /tmp/blx.err | blx_hex)"
}

await_host() {
  blx_mark "H:$(printf %s "$1" | blx_hex)"
  while read -r blx_reply <&3; do
    [ "$blx_reply" = "blx-go $BLX_NONCE" ] && return 0
  done
  return 1
}

wait_for() {
  blx_polls=0
  while [ "$blx_polls" -lt "\${2:-100}" ]; do
    blx_polls=$((blx_polls + 1))
    if [ -e "$1" ]; then echo "seen after $blx_polls polls"; return 0; fi
    sleep 0.1
  done
  echo "not seen after $blx_polls polls"
  return 1
}

(sleep "$BLX_WATCHDOG_S"; echo "guest watchdog: no end after $BLX_WATCHDOG_S s, powering off" >/dev/console; poweroff -f) &
for m in $BLX_MODULES; do
  insmod "/lib/modules/$m.ko" || blx_fail "insmod $m failed"
done
mkdir -p "$BLX_MOUNT"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none shared "$BLX_MOUNT" || blx_fail "mounting the 9p share at $BLX_MOUNT failed"
. /blx/steps.sh
blx_mark D
poweroff -f
`

/** newc cpio: what the kernel unpacks into its rootfs. */
class CpioWriter {
  private readonly chunks: Buffer[] = []
  private ino = 1

  dir (name: string): void {
    this.entry(name, 0o040755, Buffer.alloc(0))
  }

  file (name: string, data: Buffer | string, mode = 0o644): void {
    this.entry(name, 0o100000 | mode, typeof data === 'string' ? Buffer.from(data) : data)
  }

  charDevice (name: string, major: number, minor: number): void {
    this.entry(name, 0o020600, Buffer.alloc(0), major, minor)
  }

  finish (): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0))
    return Buffer.concat(this.chunks)
  }

  private entry (name: string, mode: number, data: Buffer, rdevMajor = 0, rdevMinor = 0): void {
    const nameBytes = Buffer.from(`${name}\0`)
    const fields = [this.ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0]
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''))
    this.chunks.push(header, nameBytes, padding(header.length + nameBytes.length), data, padding(data.length))
  }
}

function padding (length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4)
}

async function buildInitramfs (image: GuestImage, env: Record<string, string>, steps: GuestStep[]): Promise<Buffer> {
  const cpio = new CpioWriter()
  for (const dir of ['bin', 'dev', 'proc', 'sys', 'tmp', 'lib', 'lib/modules', 'blx']) cpio.dir(dir)
  // The kernel opens it for PID 1's stdio before /init can mount devtmpfs.
  cpio.charDevice('dev/console', 5, 1)
  cpio.file('bin/busybox', await fsp.readFile(BUSYBOX), 0o755)
  for (const module of image.modules) cpio.file(`lib/modules/${path.basename(module)}`, await fsp.readFile(module))
  cpio.file('init', INIT_SCRIPT, 0o755)
  cpio.file('blx/env.sh', Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}\n`).join(''))
  cpio.file('blx/steps.sh', steps.map((s, i) => `blx_step ${i} ${shellQuote(s.run)}\n`).join(''))
  return cpio.finish()
}

// ---------------------------------------------------------------------------
// Booting

/** Boot once, run every step in order against sharedDir, power off. */
export async function bootGuest (options: GuestBootOptions): Promise<GuestRun> {
  const stat = await fsp.stat(options.sharedDir)
  if (!stat.isDirectory()) throw new Error(`sharedDir ${options.sharedDir} is not a directory`)
  const image = options.image ?? await prepareGuestImage()
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const nonce = crypto.randomBytes(8).toString('hex')
  const env = {
    BLX_NONCE: nonce,
    BLX_MODULES: image.modules.map((m) => path.basename(m, '.ko')).join(' '),
    BLX_MOUNT: GUEST_MOUNT_POINT,
    BLX_WATCHDOG_S: String(Math.ceil(timeoutMs / 1000) + 5),
    BLX_CAP: String(OUTPUT_CAP_BYTES),
  }
  await removeAbandoned(os.tmpdir(), RUN_DIR_PREFIX)
  const leftovers: Leftovers = { runDir: await fsp.mkdtemp(path.join(os.tmpdir(), `${RUN_DIR_PREFIX}${process.pid}-`)) }
  watch(leftovers)
  try {
    const initrd = path.join(leftovers.runDir, 'initrd.cpio')
    await fsp.writeFile(initrd, await buildInitramfs(image, env, options.steps))
    const files = { initrd, consoleLog: path.join(leftovers.runDir, 'console.log') }
    return await runQemu(options, image, files, nonce, timeoutMs, leftovers)
  } finally {
    await fsp.rm(leftovers.runDir, { recursive: true, force: true })
    unwatch(leftovers)
  }
}

interface RunFiles {
  initrd: string
  /** Where QEMU writes the guest's kernel console (ttyS1). */
  consoleLog: string
}

/** QEMU option values escape a comma by doubling it. */
function optionValue (text: string): string {
  return text.replaceAll(',', ',,')
}

function qemuArgs (image: GuestImage, files: RunFiles, sharedDir: string): string[] {
  const accel = process.env.BOXLITE_LAYOUT_GUEST_ACCEL === 'kvm' ? 'kvm' : 'tcg'
  return [
    '-accel', accel, '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    // ttyS0: the control channel on our stdio; ttyS1: the console, to a file.
    '-serial', 'stdio',
    '-chardev', `file,id=console,path=${optionValue(files.consoleLog)}`, '-serial', 'chardev:console',
    '-kernel', image.vmlinux, '-initrd', files.initrd,
    // no_timer_check: under TCG on a busy host the 8254 can miss the kernel's
    // IO-APIC timer check, which then panics ("IO-APIC + timer doesn't work").
    '-append', 'console=ttyS1 quiet panic=-1 no_timer_check',
    // security_model=none: guest file operations become the same host
    // syscalls (EROFS comes back as EROFS), as with passthrough, except that
    // chowning a new file to the guest's root may fail quietly. Unprivileged,
    // passthrough answers every create with EPERM: that would pass for
    // protection on a plain writable shared/.
    '-fsdev', `local,id=fs0,path=${optionValue(path.resolve(sharedDir))},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=fs0,mount_tag=shared',
  ]
}

function readConsole (consoleLog: string): string {
  try {
    return fs.readFileSync(consoleLog, 'utf8')
  } catch {
    return ''
  }
}

function runQemu (options: GuestBootOptions, image: GuestImage, files: RunFiles, nonce: string, timeoutMs: number, leftovers: Leftovers): Promise<GuestRun> {
  const marker = new RegExp(`^@@BLX-${nonce}:([RHFD]):(?:([0-9a-f:]*):)?END$`)
  const started = process.hrtime.bigint()
  const qemu = spawn(QEMU, qemuArgs(image, files, options.sharedDir), { stdio: ['pipe', 'pipe', 'pipe'] })
  leftovers.qemu = qemu

  let pending = ''
  let qemuStderr = ''
  const results: GuestStepResult[] = []
  let done = false
  let failure: GuestVmError | undefined
  let hostWork = Promise.resolve()

  /** Where the guest got to and the end of its console, for error messages. */
  const whereItStopped = (consoleText: string): string => {
    const next = options.steps[results.length]
    const progress = `${results.length} of ${options.steps.length} steps reported` +
      (next === undefined ? '' : `, the next being "${next.name}"`)
    const lines = consoleText.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '')
    return `${progress}; the guest console last said:\n${lines.slice(-10).join('\n') || '(nothing)'}`
  }
  const fail = (message: string): void => {
    if (failure === undefined) {
      const consoleText = readConsole(files.consoleLog)
      failure = new GuestVmError(`${message}; ${whereItStopped(consoleText)}`, consoleText)
    }
    qemu.kill('SIGKILL')
  }

  const onLine = (line: string): void => {
    // trimEnd: the guest tty turns each \n into \r\n.
    const match = marker.exec(line.trimEnd())
    if (match === null) return
    const [, kind = '', body = ''] = match
    const fields = body.split(':')
    if (kind === 'R') {
      const [index = '', code = '', out = '', err = ''] = fields
      const step = options.steps[Number(index)]
      if (step === undefined || Number(index) !== results.length) {
        fail(`the guest reported step ${index} out of order`)
        return
      }
      const exitCode = Number(code)
      const stderr = Buffer.from(err, 'hex').toString()
      const result: GuestStepResult = { name: step.name, exitCode, stdout: Buffer.from(out, 'hex').toString(), stderr }
      const errno = exitCode === 0 ? undefined : errnoFromStderr(stderr)
      if (errno !== undefined) result.errno = errno
      results.push(result)
    } else if (kind === 'H') {
      const name = Buffer.from(fields[0] ?? '', 'hex').toString()
      hostWork = hostWork.then(async () => {
        if (options.onMarker === undefined) throw new Error(`the guest ran await_host ${name} but bootGuest got no onMarker`)
        await options.onMarker(name)
        qemu.stdin.write(`blx-go ${nonce}\n`)
      }).catch((err: unknown) => {
        fail(`onMarker(${JSON.stringify(name)}) failed: ${(err as Error).message}`)
      })
    } else if (kind === 'F') {
      fail(`guest init failed: ${Buffer.from(fields[0] ?? '', 'hex').toString()}`)
    } else {
      done = true
    }
  }

  qemu.stdout.setEncoding('utf8')
  qemu.stdout.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) onLine(line)
  })
  qemu.stderr.setEncoding('utf8')
  qemu.stderr.on('data', (chunk: string) => { qemuStderr += chunk })
  // QEMU gone before reading the go-ahead: its exit is reported below.
  qemu.stdin.on('error', () => {})

  const timer = setTimeout(() => {
    fail(`the guest did not finish within ${timeoutMs / 1000} s`)
  }, timeoutMs)

  return new Promise((resolve, reject) => {
    let spawnError: Error | undefined
    qemu.on('error', (err) => { spawnError = err })
    qemu.on('close', (code, signal) => {
      clearTimeout(timer)
      delete leftovers.qemu
      if (pending !== '') onLine(pending)
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6
      const consoleText = readConsole(files.consoleLog)
      if (spawnError !== undefined) {
        reject(new GuestVmError(`could not run ${QEMU}: ${spawnError.message}`, consoleText))
      } else if (failure !== undefined) {
        reject(failure)
      } else if (leftovers.killedFor !== undefined) {
        reject(new GuestVmError(`the guest was stopped because this process got ${leftovers.killedFor}`, consoleText))
      } else if (!done || results.length !== options.steps.length) {
        const how = signal !== null ? `was killed by ${signal}` : `exited with ${code}`
        const stderr = qemuStderr.trim() === '' ? '' : `; QEMU said: ${qemuStderr.trim()}`
        reject(new GuestVmError(`QEMU ${how} before the guest finished${stderr}; ${whereItStopped(consoleText)}`, consoleText))
      } else {
        resolve({ steps: results, console: consoleText, durationMs })
      }
    })
  })
}

// ---------------------------------------------------------------------------
// Nothing outlives this process

/** What a boot in progress leaves behind if this process ends mid-way. */
interface Leftovers {
  runDir: string
  qemu?: ChildProcess
  /** Set when a signal to this process is why QEMU was killed. */
  killedFor?: NodeJS.Signals
}

const inProgress = new Set<Leftovers>()
const FATAL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

function cleanUpInProgress (): void {
  for (const leftovers of inProgress) {
    leftovers.qemu?.kill('SIGKILL')
    fs.rmSync(leftovers.runDir, { recursive: true, force: true })
  }
}

function onFatalSignal (signal: NodeJS.Signals): void {
  for (const leftovers of inProgress) leftovers.killedFor = signal
  cleanUpInProgress()
  stopWatching()
  // Listening changed the signal's default; restore it unless others handle it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

function stopWatching (): void {
  process.removeListener('exit', cleanUpInProgress)
  for (const signal of FATAL_SIGNALS) process.removeListener(signal, onFatalSignal)
}

function watch (leftovers: Leftovers): void {
  if (inProgress.size === 0) {
    process.on('exit', cleanUpInProgress)
    for (const signal of FATAL_SIGNALS) process.on(signal, onFatalSignal)
  }
  inProgress.add(leftovers)
}

function unwatch (leftovers: Leftovers): void {
  inProgress.delete(leftovers)
  if (inProgress.size === 0) stopWatching()
}

// ---------------------------------------------------------------------------
// Child processes

interface Finished {
  code: number | null
  stdout: string
  stderr: string
}

/** Waits for the exit, collecting whatever output is still ours to read. */
function finished (child: ChildProcess): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  if (child.stdout?.readable === true) child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

function run (cmd: string, args: string[], options: { cwd?: string, stdio?: StdioOptions } = {}): Promise<Finished> {
  return finished(spawn(cmd, args, { cwd: options.cwd, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] }))
}

async function mustRun (cmd: string, args: string[], options: { cwd?: string, stdio?: StdioOptions } = {}): Promise<Finished> {
  const result = await run(cmd, args, options)
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${result.code}): ${lastLine(result.stderr)}`)
  return result
}

function lastLine (text: string): string {
  return text.trim().split('\n').at(-1) ?? ''
}

function findExecutable (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // Not in this PATH entry.
    }
  }
  return undefined
}
