// BoxLite's macOS jail: a seatbelt (SBPL) profile for sandbox-exec, made
// from the same grants as the Linux policy (policy.ts) plus the AF_UNIX
// endpoints the shim binds and dials. Block order, as BoxLite writes it:
// header, base rules, static reads, the grants as reads, static writes, the
// writable grants, the socket endpoints (whatever the network setting), and
// the IP networking rules only when networking is on. Every emitted path is
// in the form macOS's sandbox compares against (the core's
// macos_canonical: /tmp is /private/tmp there), and a rule never goes out
// without a filter: an unfiltered (allow file-write*) would allow everything.
import * as args from './args.ts'
import type { NativePolicyFacts } from './native.ts'
import { joinPath, splitLast } from './paths.ts'
import { grantsOf, POLICY_OPTION_KEYS, policyOptionsOf, type BwrapOptions, type PolicyBox, type SandboxPolicyOptions } from './policy.ts'
import { SocketNames } from './sockets.ts'

export interface SeatbeltOptions extends SandboxPolicyOptions {
  /** IP networking for the shim (BoxLite's security.network_enabled). Default true. */
  network?: boolean
  /**
   * The box runs a network backend (gvproxy), whose sockets the shim binds
   * and dials. Default: the value of network. A backend without networking
   * is refused, as BoxLite refuses it.
   */
  networkBackend?: boolean
  /** The shim binary (its directory is readable). Default: {box}/bin/boxlite-shim. */
  shim?: string
}

export const SANDBOX_EXEC = '/usr/bin/sandbox-exec'
export const DEFAULT_SHIM_NAME = 'boxlite-shim'

const SYSCTL_NAMES = [
  'hw.activecpu', 'hw.busfrequency_compat', 'hw.byteorder', 'hw.cacheconfig', 'hw.cachelinesize_compat', 'hw.cpufamily',
  'hw.cpufrequency_compat', 'hw.cputype', 'hw.l1dcachesize_compat', 'hw.l1icachesize_compat', 'hw.l2cachesize_compat',
  'hw.l3cachesize_compat', 'hw.logicalcpu_max', 'hw.machine', 'hw.model', 'hw.memsize', 'hw.ncpu', 'hw.nperflevels',
  'hw.packages', 'hw.pagesize_compat', 'hw.pagesize', 'hw.physicalcpu', 'hw.physicalcpu_max', 'hw.logicalcpu',
  'hw.cpufrequency', 'hw.tbfrequency_compat', 'hw.vectorunit', 'machdep.cpu.brand_string', 'kern.argmax', 'kern.hostname',
  'kern.maxfilesperproc', 'kern.maxproc', 'kern.osproductversion', 'kern.osrelease', 'kern.ostype', 'kern.osvariant_status',
  'kern.osversion', 'kern.secure_kernel', 'kern.usrstack64', 'kern.version', 'sysctl.proc_cputype', 'vm.loadavg',
]
const SYSCTL_PREFIXES = ['hw.optional.arm.', 'hw.optional.armv8_', 'hw.perflevel', 'kern.proc.pgrp.', 'kern.proc.pid.', 'net.routetable.']
const BASE_SERVICES = [
  'com.apple.system.opendirectoryd.libinfo', 'com.apple.PowerManagement.control', 'com.apple.logd',
  'com.apple.system.notification_center',
]
const NETWORK_SERVICES = [
  'com.apple.bsd.dirhelper', 'com.apple.SecurityServer', 'com.apple.networkd', 'com.apple.ocspd', 'com.apple.trustd.agent',
  'com.apple.SystemConfiguration.DNSConfiguration', 'com.apple.SystemConfiguration.configd',
]
const STATIC_READ = [
  lit('/'), lit('/var'), lit('/tmp'), sub('/usr/lib'), sub('/System/Library'), sub('/Library/Frameworks'),
  sub('/private/var/db/dyld'), lit('/dev/null'), lit('/dev/urandom'), lit('/dev/random'),
]
const STATIC_WRITE = [sub('/private/tmp'), sub('/private/var/tmp')]

/**
 * An SBPL string literal. SBPL strings take backslash escapes; other
 * control characters have no portable spelling and are refused (no path
 * BoxLite makes contains one).
 */
export function sbplString (s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(s)) {
    throw args.refuse('a path in the seatbelt profile', 'free of control characters', s)
  }
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`
}

function lit (p: string): string { return `(literal ${sbplString(p)})` }
function sub (p: string): string { return `(subpath ${sbplString(p)})` }

/** One rule with its filters, one per line; never unfiltered (a comment says there was nothing to allow). */
function allow (operation: string, filters: string[]): string {
  const unique = [...new Set(filters)]
  if (unique.length === 0) return `; ${operation}: nothing to grant`
  return `(allow ${operation}\n${unique.map((f) => `  ${f}`).join('\n')})`
}

function baseRules (): string[] {
  return [
    '(version 1)',
    '(deny default)',
    '(allow process-exec)',
    '(allow process-fork)',
    '(allow signal (target same-sandbox))',
    '(allow process-info* (target same-sandbox))',
    '(allow file-write-data (require-all (literal "/dev/null") (vnode-type CHARACTER-DEVICE)))',
    allow('sysctl-read', [...SYSCTL_NAMES.map((n) => `(sysctl-name ${sbplString(n)})`),
      ...SYSCTL_PREFIXES.map((n) => `(sysctl-name-prefix ${sbplString(n)})`)]),
    '(allow sysctl-write (sysctl-name "kern.grade_cputype"))',
    '(allow iokit-open (iokit-registry-entry-class "RootDomainUserClient"))',
    allow('mach-lookup', BASE_SERVICES.map((n) => `(global-name ${sbplString(n)})`)),
    '(allow ipc-posix-sem)',
    '(allow pseudo-tty)',
    '(allow file-read* file-write* file-ioctl (literal "/dev/ptmx"))',
    '(allow file-read* file-write* (require-all (regex #"^/dev/ttys[0-9]+") (extension "com.apple.sandbox.pty")))',
    '(allow file-ioctl (regex #"^/dev/ttys[0-9]+"))',
  ]
}

function networkRules (): string[] {
  return [
    '(allow network-outbound)',
    '(allow network-inbound)',
    '(allow system-socket)',
    allow('mach-lookup', NETWORK_SERVICES.map((n) => `(global-name ${sbplString(n)})`)),
    '(allow sysctl-read (sysctl-name-prefix "net.routetable"))',
    '(allow file-write* (subpath (param "DARWIN_USER_CACHE_DIR")))',
  ]
}

/** The keys of SeatbeltOptions (and BwrapOptions), for args.options(). */
export const SEATBELT_OPTION_KEYS = [...POLICY_OPTION_KEYS, 'network', 'networkBackend', 'shim'] as const

const BACKEND_NEEDS_NETWORK = 'The guest\'s network backend runs inside the shim ' +
  '(BoxLite refuses advanced.security.network_enabled=false unless network.mode="disabled")'

/** A checked copy of SeatbeltOptions, from the keys args.options() read. */
export function seatbeltOptionsOf (o: Partial<Record<typeof SEATBELT_OPTION_KEYS[number], unknown>>): SeatbeltOptions & BwrapOptions {
  const checked: SeatbeltOptions & BwrapOptions = policyOptionsOf(o)
  if (o.network !== undefined) checked.network = args.boolean(o.network, 'options.network')
  if (o.networkBackend !== undefined) checked.networkBackend = args.boolean(o.networkBackend, 'options.networkBackend')
  if (o.shim !== undefined) checked.shim = args.path(o.shim, 'options.shim')
  networkOf(checked)
  return checked
}

export function checkSeatbeltOptions (options: unknown): SeatbeltOptions & BwrapOptions {
  return seatbeltOptionsOf(args.options(options, 'options', SEATBELT_OPTION_KEYS))
}

/** The network settings with their defaults; returns [network, backend]. */
export function networkOf (options: SeatbeltOptions): [boolean, boolean] {
  const network = args.boolean(options.network ?? true, 'options.network')
  const backend = args.boolean(options.networkBackend ?? network, 'options.networkBackend')
  if (backend && !network) throw args.refuse('options.networkBackend', 'false when network is false', backend, BACKEND_NEEDS_NETWORK)
  return [network, backend]
}

/** The AF_UNIX endpoints: [bind, connect] names, as BoxLite's jailer lists them. */
function endpointNames (backend: boolean): [string[], string[]] {
  return [
    [SocketNames.BOX, ...(backend ? [SocketNames.NET, SocketNames.NET_KRUN, SocketNames.GVPROXY_CONTROL] : [])],
    [SocketNames.READY, ...(backend ? [SocketNames.NET, SocketNames.NET_KRUN] : [])],
  ]
}

export function shimOf (box: PolicyBox, options: SeatbeltOptions): string {
  return args.path(options.shim ?? joinPath(box.root, 'bin', DEFAULT_SHIM_NAME), 'options.shim')
}

/**
 * Host paths beyond the Linux policy's whose canonical form the profile
 * needs: the shim's directory and every socket endpoint, both ways.
 */
export function seatbeltHostPaths (box: PolicyBox, options: SeatbeltOptions): string[] {
  const [, backend] = networkOf(options)
  const [bind, connect] = endpointNames(backend)
  const names = [...new Set([...bind, ...connect])]
  return [
    splitLast(shimOf(box, options))[0],
    ...names.flatMap((n) => [joinPath(box.sockets.bindingDir, n), joinPath(box.sockets.realDir, n)]),
  ]
}

/** The profile text, from facts read with canonical forms (seatbeltHostPaths among the hosts). */
export function seatbeltProfileOf (box: PolicyBox, facts: NativePolicyFacts, options: SeatbeltOptions): string {
  const [network, backend] = networkOf(options)
  const canonical = new Map(facts.canonical)
  const c = (p: string): string => {
    const found = canonical.get(p)
    if (found === undefined) throw new Error(`internal: no canonical form of ${p}`)
    return found
  }
  // What a grant is: a directory (following symlinks) is granted with
  // everything below it, anything else alone.
  const dirs = new Set<string>()
  for (const [rel, kind] of Object.entries(facts.entries)) if (kind === 'directory') dirs.add(joinPath(box.root, rel))
  for (const h of facts.hosts) if (h.isDir) dirs.add(h.path)
  for (const chain of facts.chains) for (const f of chain.files) dirs.add(splitLast(f)[0])
  const filters = (p: string): string[] => dirs.has(p) ? [lit(c(p)), sub(c(p))] : [lit(c(p))]

  const grants = grantsOf(box, facts, options)
  const reads = [sub(c(splitLast(shimOf(box, options))[0]))]
  for (const g of grants) {
    reads.push(...filters(g.path))
    if (g.via !== undefined) reads.push(lit(c(g.via)))
  }
  const writes = grants.filter((g) => g.writable).flatMap((g) => filters(g.path))

  const lines = [
    `;; BoxLite Sandbox Policy for box ${box.boxId} (generated by boxlite-layout)`,
    ';; Denials: log show --style syslog --last 5m --predicate \'sender == "Sandbox"\'',
    '',
    ';; base',
    ...baseRules(),
    '',
    ';; system reads',
    allow('file-read*', STATIC_READ),
    '',
    ';; the box\'s grants, read',
    allow('file-read*', reads),
    '',
    ';; system writes',
    allow('file-write*', STATIC_WRITE),
    '',
    ';; the box\'s writable grants',
    allow('file-write*', writes),
    '',
    ';; AF_UNIX endpoints: each by its binding path and its real path',
  ]
  if (facts.entries.sockets === 'directory') {
    const [bind, connect] = endpointNames(backend)
    const both = (n: string) => [lit(c(joinPath(box.sockets.bindingDir, n))), lit(c(joinPath(box.sockets.realDir, n)))]
    lines.push(allow('network-bind', bind.flatMap(both)), allow('network-outbound', connect.flatMap(both)))
  } else {
    lines.push('; no sockets/ directory: no AF_UNIX endpoints')
  }
  lines.push('', ';; IP networking')
  lines.push(...(network ? networkRules() : ['; IP networking disabled']))
  return lines.join('\n') + '\n'
}

/** sandbox-exec's argv for command under profile. */
export function sandboxExecArgs (profile: string, userCacheDir: string, command: string[]): string[] {
  return [SANDBOX_EXEC, '-p', profile, ...(userCacheDir === '' ? [] : ['-D', `DARWIN_USER_CACHE_DIR=${userCacheDir}`]), ...command]
}
