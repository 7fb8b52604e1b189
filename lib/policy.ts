// BoxLite's sandbox policy for a box (what its Linux jailer grants the shim)
// and the bubblewrap argv that enforces it. The facts come from one native
// call (which paths exist and what they are, never following a symlink; the
// qcow2 backing chains); the rules are here, in BoxLite's order.
import * as args from './args.ts'
import { layoutError, type ErrorContext } from './errors.ts'
import { nativeErrorValue, type NativePolicyFacts } from './native.ts'
import { joinPath } from './paths.ts'

export interface PolicyGrant {
  path: string
  writable: boolean
  /**
   * Where the shim reaches `path`, when not at `path` itself: shared/, when
   * shared/ is this package's own symlink to mounts/ (no bind mounts, as on
   * macOS). mounts/ is what is granted; a jail recreates the link.
   */
  via?: string
  /**
   * A block device a disk is backed by (a backing file under /dev): bound
   * as a device node (bubblewrap's --dev-bind), since any other bind is
   * nodev and the shim could not open it.
   */
  device?: boolean
}

export interface VolumeGrant {
  /** A host directory the box's containers use. */
  path: string
  /** Granted read-only; default writable. */
  readOnly?: boolean
}

export interface SandboxPolicyOptions {
  /** User volume directories, granted after everything else. */
  volumes?: VolumeGrant[]
  /**
   * Where a disk's backing files may live (e.g. the home's bases/ and
   * images/disk-images/). The chain comes from qcow2 headers the shim can
   * rewrite, so a runtime that does not trust them names the places it
   * stores bases: any other backing file is refused. Default: not confined,
   * as BoxLite does.
   */
  backingRoots?: string[]
  /**
   * The box runs with nested virtualisation: grant (read-only) the KVM
   * module parameters a VMM probes to see whether the host allows it,
   * where they exist. Default false.
   */
  nestedVirtualization?: boolean
}

export interface BwrapOptions extends SandboxPolicyOptions {
  /** The jailed process outlives its parent: no --die-with-parent. */
  detached?: boolean
}

/**
 * The system CA stores a shim may need, granted read-only where they exist.
 * The bundle files inside directories already granted
 * (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt)
 * are not listed: the directory's bind brings them, and bubblewrap 0.12 and
 * later fail re-binding a file whose directory bind supplied a symlink there.
 */
export const CA_STORES = [
  '/etc/ssl/certs', '/etc/pki/tls/certs', '/etc/ca-certificates', '/etc/ssl/cert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
] as const

/** What a VMM reads to learn whether KVM allows nested virtualisation (nestedVirtualization). */
export const NESTED_VIRT_PROBES = ['/sys/module/kvm_intel/parameters/nested', '/sys/module/kvm_amd/parameters/nested'] as const

/** Where device nodes live: a backing file here is granted as the node alone, never its directory. */
const DEVICE_DIR = '/dev/'

/** Host paths bound read-only into every jail, where they exist. */
export const SYSTEM_RO_BINDS = ['/usr', '/lib', '/lib64', '/bin', '/sbin', '/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf'] as const

/** Devices a VMM needs, bound where they exist. */
export const DEVICE_BINDS = ['/dev/kvm', '/dev/net/tun'] as const

/** What the policy needs to know of the box (BoxLayout provides it). */
export interface PolicyBox {
  readonly boxId: string
  readonly root: string
  readonly home: string | undefined
  readonly sockets: { readonly realDir: string, readonly bindingDir: string, readonly parentDir: string }
}

/** The keys of BwrapOptions, for args.options(). */
export const POLICY_OPTION_KEYS = ['volumes', 'backingRoots', 'nestedVirtualization', 'detached'] as const

/** A checked copy of BwrapOptions, from the keys args.options() read. */
export function policyOptionsOf (o: Partial<Record<typeof POLICY_OPTION_KEYS[number], unknown>>): BwrapOptions {
  return {
    ...(o.volumes === undefined
      ? {}
      : {
          volumes: args.array(o.volumes, 'options.volumes').map((v, i) => {
            const vol = args.options(v, `options.volumes[${i}]`, ['path', 'readOnly'])
            if (vol.path === undefined) throw args.refuse(`options.volumes[${i}].path`, 'an absolute path', undefined)
            return {
              path: args.path(vol.path, `options.volumes[${i}].path`),
              ...(vol.readOnly === undefined ? {} : { readOnly: args.boolean(vol.readOnly, `options.volumes[${i}].readOnly`) }),
            }
          }),
        }),
    ...(o.backingRoots === undefined
      ? {}
      : { backingRoots: args.array(o.backingRoots, 'options.backingRoots').map((r, i) => args.path(r, `options.backingRoots[${i}]`)) }),
    ...(o.nestedVirtualization === undefined ? {} : { nestedVirtualization: args.boolean(o.nestedVirtualization, 'options.nestedVirtualization') }),
    ...(o.detached === undefined ? {} : { detached: args.boolean(o.detached, 'options.detached') }),
  }
}

export function checkPolicyOptions (options: unknown): BwrapOptions {
  return policyOptionsOf(args.options(options, 'options', POLICY_OPTION_KEYS))
}

function checkAbsolute (what: string, p: unknown): void {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) {
    throw args.refuse(what, 'an absolute path', p)
  }
}

/** The host paths whose existence the policy depends on, in a fixed order. */
export function policyHostPaths (box: PolicyBox, options: SandboxPolicyOptions): string[] {
  for (const v of options.volumes ?? []) checkAbsolute('options.volumes[].path', v?.path)
  for (const r of options.backingRoots ?? []) checkAbsolute('options.backingRoots[]', r)
  return [
    box.sockets.bindingDir, box.sockets.parentDir,
    ...(box.home === undefined ? [] : [joinPath(box.home, 'bases')]),
    ...CA_STORES,
    ...(options.volumes ?? []).map((v) => v.path),
    ...(options.nestedVirtualization === true ? NESTED_VIRT_PROBES : []),
    ...SYSTEM_RO_BINDS,
    ...DEVICE_BINDS,
  ]
}

/**
 * shared/ is the symlink mountShared() makes where it cannot mount (the
 * target exactly "mounts", a real directory): it stands for mounts/. Any
 * other symlink there is someone else's and is refused like every symlink.
 */
function sharedIsOurLink (facts: NativePolicyFacts): boolean {
  return facts.entries.shared === 'symlink' && facts.links.shared === 'mounts' && facts.entries.mounts === 'directory'
}

function inside (file: string, roots: string[]): boolean {
  return roots.some((r) => file === r || file.startsWith(r.endsWith('/') ? r : `${r}/`))
}

/** The ordered grants, from the facts the core read. */
export function grantsOf (box: PolicyBox, facts: NativePolicyFacts, options: SandboxPolicyOptions): PolicyGrant[] {
  const grants: PolicyGrant[] = []
  const add = (path: string, writable: boolean, extra: { via?: string, device?: boolean } = {}) => {
    if (!grants.some((g) => g.path === path && g.writable === writable)) grants.push({ path, writable, ...extra })
  }
  const host = new Map(facts.hosts.map((h) => [h.path, h]))
  // A box path is granted as what it is; a symlink never, because bwrap
  // would bind whatever it points at.
  const boxPath = (rel: string, writable: boolean) => {
    const kind = facts.entries[rel] ?? 'missing'
    if (kind === 'missing') return
    const path = joinPath(box.root, rel)
    if (kind === 'symlink') {
      throw layoutError('ELOOP', 'symlink', `${path} is a symlink; a jail would bind what it points at, so it is not granted (remove it)`,
        { path, syscall: 'lstat' })
    }
    add(path, writable)
  }
  boxPath('tmp', true)
  boxPath('logs', true)
  if (facts.entries.sockets === 'directory') {
    boxPath('sockets', true)
    const link = host.get(box.sockets.bindingDir)
    if (link?.kind === 'symlink' && link.linkTarget === box.sockets.realDir) add(box.sockets.bindingDir, true)
    if (host.get(box.sockets.parentDir)?.kind === 'directory') add(box.sockets.parentDir, false)
  }
  boxPath('exit', true)
  boxPath('disks/disk.qcow2', true)
  boxPath('disks/guest-rootfs.qcow2', true)
  const roots = options.backingRoots === undefined ? undefined : facts.roots
  for (const chain of facts.chains) {
    const error = nativeErrorValue(chain.error, { doing: `cannot follow the backing chain of ${chain.image}` })
    if (error !== undefined) throw error
    for (const [i, file] of chain.files.entries()) {
      // Judged by where the file really is: a name with ".." or through a
      // symlink must not pass for one inside a root.
      const real = chain.real[i] ?? file
      if (roots !== undefined && !inside(real, roots)) {
        const where = real === file ? file : `${file} (really ${real})`
        throw layoutError('EPERM', 'backing-chain',
          `${chain.image} names the backing file ${where}, outside ${options.backingRoots!.join(', ')}; it is not granted`,
          { path: chain.image, dest: file, syscall: 'open' })
      }
      // A device node is granted alone: its directory is /dev, every
      // other device of the host.
      if (file.startsWith(DEVICE_DIR) || real.startsWith(DEVICE_DIR)) {
        add(file, false, chain.block[i] === true ? { device: true } : {})
        continue
      }
      add(file.slice(0, Math.max(1, file.lastIndexOf('/'))), false)
      add(file, false)
    }
  }
  boxPath('bin', false)
  boxPath('boot', false)
  if (sharedIsOurLink(facts)) add(joinPath(box.root, 'mounts'), true, { via: joinPath(box.root, 'shared') })
  else boxPath('shared', true)
  // By its canonical path: with the home reached through a symlink, the
  // VMM opens backing files by their real paths, which a bind of the
  // symlinked name would not cover.
  const bases = box.home === undefined ? undefined : host.get(joinPath(box.home, 'bases'))
  if (bases?.exists === true) add(bases.real !== '' ? bases.real : bases.path, false)
  for (const store of CA_STORES) if (host.get(store)?.exists === true) add(store, false)
  // Directory volumes as given. A single file is staged into shared/
  // (stageVolumeFile) and reached through it: no grant of its own.
  for (const v of options.volumes ?? []) if (host.get(v.path)?.isDir === true) add(v.path, v.readOnly !== true)
  if (options.nestedVirtualization === true) {
    for (const probe of NESTED_VIRT_PROBES) if (host.get(probe)?.exists === true) add(probe, false)
  }
  return grants
}

export const POLICY_CONTEXT = (box: PolicyBox): ErrorContext => ({ doing: `cannot compute the sandbox policy of box ${box.boxId}` })

/** bubblewrap's argv for command, jailed the way BoxLite's Linux jailer does it. */
export function bwrapArgsOf (box: PolicyBox, facts: NativePolicyFacts, command: string[], options: BwrapOptions): string[] {
  const grants = grantsOf(box, facts, options)
  const exists = (p: string) => facts.hosts.find((h) => h.path === p)?.exists === true
  const argv = ['bwrap', ...(options.detached === true ? [] : ['--die-with-parent']), '--new-session']
  for (const p of SYSTEM_RO_BINDS) if (exists(p)) argv.push('--ro-bind', p, p)
  argv.push('--dev', '/dev')
  for (const p of DEVICE_BINDS) if (exists(p)) argv.push('--dev-bind', p, p)
  argv.push('--proc', '/proc', '--tmpfs', '/tmp')
  // Bound in place: the writable ones first, then the read-only ones (the
  // link /tmp/bl-{uid}/{id} is rebuilt on the tmpfs this way).
  for (const g of grants.filter((g) => g.writable)) argv.push('--bind', g.path, g.path)
  for (const g of grants.filter((g) => !g.writable)) argv.push(g.device === true ? '--dev-bind' : '--ro-bind', g.path, g.path)
  // shared/ -> mounts, as on the host, so the shim's paths through it work.
  for (const g of grants) if (g.via !== undefined) argv.push('--symlink', 'mounts', g.via)
  // The sandbox's own root read-only: nothing ungranted is writable even
  // in the throw-away root.
  argv.push('--remount-ro', '/')
  argv.push('--clearenv', '--setenv', 'PATH', '/usr/bin:/bin:/usr/sbin:/sbin', '--setenv', 'HOME', '/root',
    '--setenv', 'LD_LIBRARY_PATH', joinPath(box.root, 'bin'), '--chdir', '/', '--', ...command)
  return argv
}
