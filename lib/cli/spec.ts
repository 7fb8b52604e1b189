// The CLI as data: every command, its arguments and options, in one table
// that the parser, --help and the man page (boxlite-layout.1) are all made
// from, so they cannot disagree. Parsing uses Node's own util.parseArgs.
import { parseArgs } from 'node:util'
import { UsageError } from './output.ts'

export interface OptionSpec {
  /** Long name without dashes. */
  name: string
  /** Placeholder when the option takes a value (e.g. "PATH"). */
  value?: string
  /** May be given more than once (collected in order). */
  multiple?: boolean
  help: string
}

export interface CommandSpec {
  /** "doctor", "box prepare", … */
  name: string
  /** Positional arguments as shown in usage, e.g. "ID..." */
  args: string
  /** How many positionals (before any "--"). */
  arity: [min: number, max: number]
  summary: string
  /** A paragraph for the man page and --help. */
  description: string
  options: OptionSpec[]
  /** Whether --home applies. */
  home: boolean
  /** Takes a command after "--" (box jail). */
  trailing?: string
  examples: string[]
}

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'json', help: 'print one JSON document on stdout (schemas: docs/cli-json/)' },
  { name: 'help', help: 'show help for the command' },
]

export const HOME_OPTION: OptionSpec = {
  name: 'home', value: 'DIR', help: 'the BoxLite home (default: $BOXLITE_HOME, else $HOME/.boxlite)',
}

export const EXIT_CODES: Array<[number, string]> = [
  [0, 'success'],
  [1, 'failure: the operation could not be done (the message says why and what to do)'],
  [2, 'usage: unknown command or option, missing or bad arguments or ids'],
]

export const ENVIRONMENT: Array<[string, string]> = [
  ['BOXLITE_HOME', 'the home when --home is not given (an empty value is refused, as BoxLite does)'],
  ['NO_COLOR', 'set (non-empty): never colour the output'],
  ['FORCE_COLOR', 'set (not 0): colour the output even when it is not a terminal'],
  ['BOXLITE_LAYOUT_MOUNT_API', 'legacy: use the classic mount(2) sequence instead of the new mount API'],
]

export const COMMANDS: CommandSpec[] = [
  {
    name: 'doctor',
    args: '',
    arity: [0, 0],
    summary: 'what works on this host: privilege, mount API, reflink, same-fs, sun_path headroom, stale state',
    description: 'Tries each capability rather than guessing: a real read-only bind mount in a scratch box, a real ' +
      'reflink clone on the home\'s filesystem. Exits 1 when a check fails.',
    options: [],
    home: true,
    examples: ['boxlite-layout doctor --home /srv/boxlite'],
  },
  {
    name: 'prepare',
    args: '',
    arity: [0, 0],
    summary: 'create the home: boxes, bases, tmp, images/{layers,manifests,disk-images}; check one filesystem',
    description: 'Creates the home\'s directories with explicit modes (0755; tmp 0700) whatever the umask, tightens a ' +
      'group- or other-writable directory you own, refuses a symlink or a directory owned by another user, and ' +
      'checks that tmp, bases and images/disk-images share one filesystem.',
    options: [],
    home: true,
    examples: ['boxlite-layout prepare --home /srv/boxlite'],
  },
  {
    name: 'box prepare',
    args: 'ID...',
    arity: [1, Infinity],
    summary: 'create boxes: dirs and socket link; optionally mount shared/ and install the shim',
    description: 'Prepares the home, then each box in turn: the box dir, sockets/ and the /tmp/bl-{uid}/{id} link, ' +
      'tmp/, disks/, the mounts dir and logs/. With --isolate-mounts, shared/ then shows mounts/ read-only; with ' +
      '--shim, the shim and its libkrunfw.* siblings are copied into bin/. Several ids share one start-up.',
    options: [
      { name: 'isolate-mounts', help: 'write into mounts/ and show it read-only at shared/' },
      { name: 'require-read-only', help: 'fail rather than fall back to a writable symlink (needs --isolate-mounts)' },
      { name: 'shim', value: 'PATH', help: 'copy this shim and its libkrunfw.* siblings into bin/' },
    ],
    home: true,
    examples: [
      'boxlite-layout box prepare "$(boxlite-layout id)" --isolate-mounts --shim /opt/boxlite/bin/boxlite-shim',
    ],
  },
  {
    name: 'box inspect',
    args: 'ID',
    arity: [1, 1],
    summary: 'paths, shared/ state, socket link, bin files and how they were copied, shim identity, exit records',
    description: 'Reads everything without waiting on anything: a FIFO planted at shim.pid or exit is reported, not read.',
    options: [],
    home: true,
    examples: ['boxlite-layout box inspect b1 --json'],
  },
  {
    name: 'box cleanup',
    args: 'ID...',
    arity: [1, Infinity],
    summary: 'unmount everything in each box, remove it without following symlinks, remove its socket link',
    description: 'Idempotent. A mount that cannot be detached stops that box\'s removal with nothing below it deleted. ' +
      'A box whose shim is alive (its pid and start-time fingerprint match a running process) is refused ' +
      '(EBUSY, reason shim-alive) unless --force.',
    options: [{ name: 'force', help: 'remove the box even while its shim is alive' }],
    home: true,
    examples: ['boxlite-layout box cleanup b1 b2'],
  },
  {
    name: 'box list',
    args: '',
    arity: [0, 0],
    summary: 'one row per box: state, shared mount, socket link, shim pid, bin files',
    description: 'State is live (its shim runs), mounted (shared/ is a mount), prepared, trash (a removal was ' +
      'interrupted; gc finishes it) or stray (not a box; gc leaves it alone).',
    options: [],
    home: true,
    examples: ['boxlite-layout box list', 'boxlite-layout box list --json | jq -r \'.boxes[] | select(.state == "trash") | .name\''],
  },
  {
    name: 'box ca',
    args: 'ID',
    arity: [1, 1],
    summary: 'write the box\'s CA: ca/cert.pem (0644) and ca/key.pem (0600) in ca/ (0700), each atomically',
    description: 'Reads the two PEM files (regular files of at most 1 MiB) and writes them into the prepared box ' +
      'under its lock, never under shared/ where the guest could read the key.',
    options: [
      { name: 'cert', value: 'FILE', help: 'the CA certificate (PEM)' },
      { name: 'key', value: 'FILE', help: 'the CA private key (PEM)' },
    ],
    home: true,
    examples: ['boxlite-layout box ca "$id" --cert ca.pem --key ca.key'],
  },
  {
    name: 'box boot publish',
    args: 'ID',
    arity: [1, 1],
    summary: 'publish a boot generation: kernel (and initramfs) into boot/generations/{gen}, current.json switched',
    description: 'box.publishBoot() under the box lock: the files are copied (reflinked where the filesystem can) ' +
      'into boot/.staging-{gen}/, renamed to boot/generations/{gen}, and current.json is replaced atomically, every ' +
      'file and directory fsynced; older generations and the legacy boot/kernel and boot/initramfs are removed. ' +
      'Without --kernel, the legacy flat files are migrated. --format auto (the default) takes the format from the ' +
      'kernel\'s first bytes: ELF, gzip (image-gz), bzip2 (image-bz2), zstd (image-zstd), else raw.',
    options: [
      { name: 'kernel', value: 'FILE', help: 'the kernel to publish (default: migrate the legacy boot/kernel)' },
      { name: 'initramfs', value: 'FILE', help: 'the initramfs to publish with it' },
      { name: 'format', value: 'FORMAT', help: 'raw, elf, pe-gz, image-bz2, image-gz, image-zstd or auto (default)' },
    ],
    home: true,
    examples: ['boxlite-layout box boot publish "$id" --kernel vmlinux --initramfs initrd.img --format elf'],
  },
  {
    name: 'box boot show',
    args: 'ID',
    arity: [1, 1],
    summary: 'the current boot generation: current.json checked and both files re-hashed',
    description: 'box.readBoot(): fails (EIO, reason checksum-mismatch) when a file of the generation changed since ' +
      'it was published, and (EINVAL, malformed-record) on a manifest with another version, an unknown format or an ' +
      'invalid generation name. Without a manifest, reports none and any legacy files.',
    options: [],
    home: true,
    examples: ['boxlite-layout box boot show "$id" --json'],
  },
  {
    name: 'box jail',
    args: 'ID',
    arity: [1, 1],
    summary: 'run a command in the box under BoxLite\'s jail (bubblewrap on Linux, sandbox-exec on macOS)',
    description: 'box.jail(): first, under the box lock, sockets/ and the socket link, exit rotated to exit.previous and ' +
      're-created empty, logs/console.log; then the command runs granted exactly what BoxLite\'s jailer grants ' +
      '(box.sandboxPolicy(), backing files only from the home\'s bases/ and images/disk-images/; on macOS ' +
      'box.seatbeltProfile()), its stderr appended to shim.stderr. shim.pid names the jailed process with its ' +
      'start-time fingerprint before it runs; when it ends with a failure or a signal and wrote no exit record of its ' +
      'own, the record is written for it. The exit code is the command\'s. With --print, prints the command (shell-quoted; ' +
      'a JSON array with --json) and changes nothing.',
    options: [
      { name: 'print', help: 'print the jail command and run nothing' },
      { name: 'platform', value: 'linux|darwin', help: 'with --print: the command for this platform (default: this one)' },
      { name: 'volume', value: 'DIR[:ro]', multiple: true, help: 'grant a user volume directory (read-only with :ro)' },
      { name: 'no-network', help: 'macOS: no IP networking and no network backend sockets in the profile' },
    ],
    home: true,
    trailing: 'CMD [ARG...]',
    examples: ['boxlite-layout box jail b1 -- /srv/boxlite/boxes/b1/bin/boxlite-shim --config c.json'],
  },
  {
    name: 'gc',
    args: '',
    arity: [0, 0],
    summary: 'unmount leaked mounts, finish interrupted removals, drop dangling links and tmp leftovers',
    description: 'Takes the runtime lock (or adopts the one `boxlite-layout lock` holds); leaves alone every box ' +
      'whose shim may be alive (a pid file it cannot read counts as alive), every box whose lock is held or that ' +
      'changed within the grace period (being set up), and every box excluded. Never creates the home. Exits 1 ' +
      'when an action failed.',
    options: [
      { name: 'dry-run', help: 'report what would be done; change nothing' },
      { name: 'exclude', value: 'ID', multiple: true, help: 'leave this box alone (repeatable)' },
      { name: 'grace', value: 'SECONDS', help: 'leave alone boxes changed less than this long ago (default 120; 0: none); with --storage: files modified less than this long ago (default 600)' },
      { name: 'storage', help: 'instead: report the bases and disk images no backing chain names (orphaned storage); remove them only with --apply' },
      { name: 'apply', help: 'with --storage: remove the orphans (each renamed into tmp/, then unlinked), under the runtime lock' },
    ],
    home: true,
    examples: ['boxlite-layout gc --dry-run', 'boxlite-layout gc --exclude "$id" --grace 0', 'boxlite-layout gc --storage', 'boxlite-layout gc --storage --apply --json'],
  },
  {
    name: 'metrics',
    args: '',
    arity: [0, 0],
    summary: 'the home\'s state in the Prometheus text format: boxes by state, leaked mounts, socket link problems, orphaned bytes, the last gc',
    description: 'Reads only (the dry runs of gc and gc --storage; no lock). With --textfile DIR, writes DIR/boxlite_layout.prom ' +
      'atomically (a temporary file renamed in DIR) for node_exporter\'s textfile collector, and prints nothing.',
    options: [{ name: 'textfile', value: 'DIR', help: 'write DIR/boxlite_layout.prom instead of printing' }],
    home: true,
    examples: ['boxlite-layout metrics', 'boxlite-layout metrics --textfile /var/lib/node_exporter/textfile_collector'],
  },
  {
    name: 'df',
    args: '',
    arity: [0, 0],
    summary: 'where the home\'s disk goes: per box and per area, reflinked extents counted once',
    description: 'One walk of the home that never follows a symlink, enters a mount or opens anything but a regular ' +
      'file. For each box and area (bases, boxes, images/*, logs, tmp): apparent, allocated, shared (extents ' +
      'FIEMAP flags shared), exclusive and physical bytes, where physical counts each shared range once across the ' +
      'home (in the first file met, names in byte order); beside them the home\'s total, what du would say and the ' +
      'filesystem\'s used bytes. On macOS only apparent and allocated bytes can be known. A scan longer than a ' +
      'second shows progress on stderr when it is a terminal.',
    options: [],
    home: true,
    examples: ['boxlite-layout df --home /srv/boxlite', 'boxlite-layout df --json | jq .total.physicalBytes'],
  },
  {
    name: 'lock',
    args: '',
    arity: [0, 0],
    summary: 'hold the runtime lock while a command runs (like flock(1)), for a jailer script\'s calls',
    description: 'Takes {home}/.lock (waiting up to --wait seconds for another holder), runs CMD with the locked fd ' +
      'inherited and its number in BOXLITE_LAYOUT_LOCK_FD, and exits with CMD\'s status (128+n for a signal). Every ' +
      'boxlite-layout command inside CMD that needs the runtime lock adopts that fd after checking it is this ' +
      'home\'s .lock (same inode) and holds its flock; any other runtime is refused (EBUSY, reason runtime-locked) ' +
      'until CMD ends.',
    options: [{ name: 'wait', value: 'SECONDS', help: 'wait this long for the lock (default 0: fail at once)' }],
    home: true,
    trailing: 'CMD [ARG...]',
    examples: ['boxlite-layout lock --home /srv/boxlite --wait 30 -- ./start-box.sh'],
  },
  {
    name: 'id',
    args: '',
    arity: [0, 0],
    summary: 'mint a box id (12 base62 characters from the CSPRNG)',
    description: 'Prints one fresh id.',
    options: [],
    home: false,
    examples: ['id=$(boxlite-layout id)'],
  },
  {
    name: 'demo',
    args: '',
    arity: [0, 0],
    summary: 'the whole lifecycle on a throw-away home, as a timed table',
    description: 'Prepares a throw-away home and box, mounts shared/ read-only, shows what a guest sees, installs a ' +
      'generated shim set, round-trips a socket, inspects and cleans up, then says what fell back and why.',
    options: [
      { name: 'keep', help: 'keep the throw-away home and box (prints the command that removes them)' },
      { name: 'dir', value: 'PARENT', help: 'make the throw-away home under this directory (default /tmp)' },
    ],
    home: false,
    examples: ['boxlite-layout demo --dir /mnt/xfs'],
  },
]

export interface Parsed {
  command: CommandSpec
  positionals: string[]
  /** After "--" (commands with `trailing`). */
  trailing: string[]
  options: Record<string, string | boolean | string[] | undefined>
}

function optionsOf (command: CommandSpec | undefined): OptionSpec[] {
  if (command === undefined) return [...GLOBAL_OPTIONS, HOME_OPTION]
  return [...command.options, ...(command.home ? [HOME_OPTION] : []), ...GLOBAL_OPTIONS]
}

/** The command words of argv: its positionals up to "--", skipping option values. */
function commandWords (argv: string[]): string[] {
  const takesValue = new Set(COMMANDS.flatMap((c) => c.options).concat(HOME_OPTION).filter((o) => o.value !== undefined).map((o) => `--${o.name}`))
  const words: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') break
    if (takesValue.has(a)) i++
    else if (!a.startsWith('-')) words.push(a)
  }
  return words
}

/** The command argv names, or the group ("box") it starts, or undefined. */
export function findCommand (argv: string[]): { command?: CommandSpec, group?: string } {
  const words = commandWords(argv)
  for (const n of [3, 2, 1]) {
    const found = COMMANDS.find((c) => c.name === words.slice(0, n).join(' '))
    if (found !== undefined) return { command: found }
  }
  if (words[0] === 'box') return { group: words[1] === 'boot' ? 'box boot' : 'box' }
  return {}
}

export function parse (command: CommandSpec, argv: string[]): Parsed {
  const specs = optionsOf(command)
  const config: NonNullable<Parameters<typeof parseArgs>[0]>['options'] = {}
  for (const o of specs) {
    config[o.name] = { type: o.value === undefined ? 'boolean' : 'string', ...(o.multiple === true ? { multiple: true } : {}) }
  }
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: config, allowPositionals: true, strict: true, tokens: true })
  } catch (e) {
    const message = String((e as Error).message).replace(/\s*To specify a positional argument.*$/s, '')
    throw new UsageError(message.replace(/\.$/, '') + suggestionFor(message, specs, command))
  }
  const end = parsed.tokens.find((t) => t.kind === 'option-terminator')
  const all = parsed.positionals
  const before = end === undefined ? all : parsed.tokens.filter((t) => t.kind === 'positional' && t.index < end.index).map((t) => (t as { value: string }).value)
  const trailing = end === undefined ? [] : all.slice(before.length)
  const words = command.name.split(' ').length
  const positionals = before.slice(words)
  const [min, max] = command.arity
  if (positionals.length < min) throw new UsageError(`${command.name} needs ${command.args || 'no arguments'}`)
  if (positionals.length > max) throw new UsageError(`${command.name} takes ${max === 0 ? 'no arguments' : command.args}; unexpected ${JSON.stringify(positionals[max])}`)
  if (command.trailing === undefined && trailing.length > 0) throw new UsageError(`${command.name} takes nothing after --`)
  if (command.trailing !== undefined && trailing.length === 0) {
    throw new UsageError(`${command.name} needs a command after --: ${command.trailing}`)
  }
  return { command, positionals, trailing, options: parsed.values as Parsed['options'] }
}

/** Edit distance (insert, delete, substitute): how far a typo is from a name. */
function distance (a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length]!
}

/** "; did you mean --x?" for an unknown option close to a known one (else the options there are). */
function suggestionFor (message: string, specs: OptionSpec[], command: CommandSpec): string {
  const unknown = /^Unknown option '-{1,2}([^'=]+)/.exec(message)?.[1]
  if (unknown === undefined) return ''
  const ranked = specs.map((o) => ({ name: o.name, d: distance(unknown, o.name) })).sort((a, b) => a.d - b.d)
  const best = ranked[0]
  if (best !== undefined && best.d <= Math.max(2, Math.floor(unknown.length / 3))) return `; did you mean --${best.name}?`
  return `; ${command.name} takes ${specs.map((o) => `--${o.name}`).join(', ')}`
}

/** A --grace or --wait value: seconds, a number >= 0; undefined when not given. */
export function secondsOption (parsed: Parsed, name: string): number | undefined {
  const given = parsed.options[name]
  if (typeof given !== 'string') return undefined
  if (!/^[0-9]+(\.[0-9]+)?$/.test(given)) throw new UsageError(`--${name} takes a number of seconds; got ${JSON.stringify(given)}`)
  return Number(given)
}

function optionLine (o: OptionSpec): [string, string] {
  return [`--${o.name}${o.value === undefined ? '' : ` ${o.value}`}`, o.help]
}

function usageOf (c: CommandSpec): string {
  return ['boxlite-layout', c.name, '[options]', c.args, c.trailing === undefined ? '' : `-- ${c.trailing}`]
    .filter((s) => s !== '').join(' ')
}

function columns (rows: Array<[string, string]>, indent = '  '): string[] {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`)
}

/** --help text for a command, the "box" group, or the whole CLI. */
export function helpText (version: string, command?: CommandSpec, group?: string): string {
  const exit = `Exit codes: ${EXIT_CODES.map(([n, what]) => `${n} ${what.split(':')[0]!}`).join(', ')}`
  if (command !== undefined) {
    return [
      `Usage: ${usageOf(command)}`, '', command.summary + '.', '', command.description, '',
      'Options:', ...columns(optionsOf(command).map(optionLine)), '',
      'Examples:', ...command.examples.map((e) => `  ${e}`), '', exit, '',
    ].join('\n')
  }
  const listed = COMMANDS.filter((c) => group === undefined || c.name.startsWith(`${group} `))
  return [
    `Usage: boxlite-layout ${group === undefined ? '[options] <command>' : `${group} <command>`} [options]`, '',
    ...(group === undefined
      ? [`boxlite-layout ${version}: BoxLite's host-side layout: read-only shared mounts, reflink shim copies, ` +
          'sun_path-safe sockets, locks, pid and exit files, gc.', '']
      : []),
    'Commands:', ...columns(listed.map((c) => [c.name, c.summary])), '',
    'Options:', ...columns([...(group === undefined ? [['--version', 'print the version'] as [string, string]] : []),
      ...[HOME_OPTION, ...GLOBAL_OPTIONS].map(optionLine)]), '',
    'Run `boxlite-layout <command> --help` for a command\'s options.', '', exit, '',
  ].join('\n')
}

function roff (text: string): string {
  return text.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-')
}

/** The man page, boxlite-layout(1), in roff. */
export function manPage (version: string): string {
  const out: string[] = [
    `.TH BOXLITE-LAYOUT 1 "" "boxlite-layout ${version}" "User Commands"`,
    '.SH NAME',
    'boxlite\\-layout \\- BoxLite\'s host\\-side filesystem layout and its privileged syscalls',
    '.SH SYNOPSIS',
    '.B boxlite\\-layout',
    '.I command',
    '[\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff('Prepares, mounts, inspects and removes the host-side layout of BoxLite microVM sandboxes, path for path ' +
      'as BoxLite lays it out: read-only bind mounts of a box\'s mounts/ at shared/, reflink copies of the shim, ' +
      'sun_path-safe socket links, locks, pid files and exit records. Every path below a home is resolved without ' +
      'following symlinks, so a guest or a jailed shim cannot redirect what it does.'),
    '.SH COMMANDS',
  ]
  for (const c of COMMANDS) {
    out.push('.SS ' + roff(usageOf(c)), roff(c.summary + '.'), '.PP', roff(c.description))
    for (const o of optionsOf(c).filter((o) => o.name !== 'help' && o.name !== 'json')) {
      const [flag, help] = optionLine(o)
      out.push('.TP', `.B ${roff(flag)}`, roff(help))
    }
    for (const e of c.examples) out.push('.PP', '.nf', '.RS 4', roff(e), '.RE', '.fi')
  }
  out.push('.SH OPTIONS')
  for (const o of [HOME_OPTION, ...GLOBAL_OPTIONS]) {
    const [flag, help] = optionLine(o)
    out.push('.TP', `.B ${roff(flag)}`, roff(help))
  }
  out.push('.SH EXIT STATUS')
  for (const [n, what] of EXIT_CODES) out.push('.TP', `.B ${n}`, roff(what))
  out.push('.SH ENVIRONMENT')
  for (const [name, what] of ENVIRONMENT) out.push('.TP', `.B ${roff(name)}`, roff(what))
  out.push('.SH FILES', '.TP', '.I /tmp/bl\\-{uid}/{box_id}',
    roff('the short symlink every socket of a box binds through (0700 directory, owned by the user)'),
    '.SH SEE ALSO', '.BR mount (8),', '.BR bwrap (1),', '.BR findmnt (8)', '')
  return out.join('\n')
}
