// Property tests (fast-check, 10,000 runs each) of the TypeScript parsers
// and builders of others' input: path joining against a model of Rust's
// PathBuf::join, ids against their charset rule, exit records and pid files
// (parse throws nothing but LayoutError; format and parse round-trip), and
// the CLI's argument parser (only usage errors; options round-trip). The
// native parsers have libFuzzer targets instead (native/fuzz/).
import test from 'ava'
import fc from 'fast-check'
import fs from 'node:fs'
import path from 'node:path'
import { main } from '../lib/cli/main.ts'
import { Output, UsageError } from '../lib/cli/output.ts'
import { COMMANDS, findCommand, HOME_OPTION, parse, type CommandSpec } from '../lib/cli/spec.ts'
import {
  formatContainerExit, formatExitRecord, isValidId, LayoutError, parseContainerExit, parseExitRecord, parsePidFile,
  PidFile, validateBoxId, validateContainerId, validateVolumeName, type ExitRecord,
} from '../lib/index.ts'
import { joinPath } from '../lib/paths.ts'
import { scratch } from './helpers/fixtures.ts'

const RUNS = { numRuns: 10_000 }

/** Strings of every kind: any UTF-16 code unit (lone surrogates too), or path-ish pieces. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('/', '.', 'a', 'b', '\0', ' ', '\\', '\n'), maxLength: 12 })
)

// ---------------------------------------------------------------------------
// joinPath: Rust's documented PathBuf::push (join is push on a copy): an
// absolute right side replaces the path; otherwise a separator is added
// when the path does not end with one (and is not empty: std's need_sep
// is false for an empty buffer), then the part. Nothing else changes.

function rustJoin (base: string, part: string): string {
  if (part.startsWith('/')) return part
  const needSep = base !== '' && !base.endsWith('/')
  return base + (needSep ? '/' : '') + part
}

test('joinPath is PathBuf::join, part by part', (t) => {
  fc.assert(fc.property(anyString, fc.array(anyString, { maxLength: 4 }), (base, parts) => {
    const want = parts.reduce(rustJoin, base)
    return joinPath(base, ...parts) === want
  }), RUNS)
  t.pass()
})

test('joinPath keeps the base as given: no normalization of "..", "." or "//"', (t) => {
  const relative = anyString.filter((p) => !p.startsWith('/'))
  fc.assert(fc.property(anyString, relative, (base, part) => {
    const joined = joinPath(base, part)
    return joined.startsWith(base) && joined.endsWith(part) && joined.length - base.length - part.length <= 1
  }), RUNS)
  t.pass()
})

// ---------------------------------------------------------------------------
// Ids: 1-128 bytes of [A-Za-z0-9_-], nothing else, whatever the type.

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-'

function modelValidId (value: unknown): boolean {
  if (typeof value !== 'string') return false
  const bytes = Buffer.from(value, 'utf8')
  return bytes.length >= 1 && bytes.length <= 128 && [...value].every((c) => ID_CHARS.includes(c))
}

const idLike = fc.oneof(
  fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 0, maxLength: 130 }),
  fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 126, maxLength: 130 }),
  fc.tuple(fc.string({ unit: fc.constantFrom(...ID_CHARS), maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 2 }),
    fc.string({ unit: fc.constantFrom(...ID_CHARS), maxLength: 10 })).map(([a, b, c]) => a + b + c),
  anyString,
  fc.anything()
)

test('id validation is the charset rule, for every validator', (t) => {
  const validators = [validateBoxId, validateContainerId, validateVolumeName]
  fc.assert(fc.property(idLike, (value) => {
    const valid = modelValidId(value)
    if (isValidId(value) !== valid) return false
    for (const validate of validators) {
      if (valid) {
        if (validate(value) !== value) return false
      } else {
        try {
          validate(value)
          return false
        } catch (e) {
          if (!(e instanceof LayoutError) || e.code !== 'ERR_INVALID_ARG') throw e
        }
      }
    }
    return true
  }), RUNS)
  t.pass()
})

// ---------------------------------------------------------------------------
// Exit records (BoxLite's ExitInfo and the container's exit.json).

function onlyLayoutErrors (parseIt: () => unknown): boolean {
  try {
    parseIt()
  } catch (e) {
    if (!(e instanceof LayoutError) || e.code !== 'EINVAL' || e.reason !== 'malformed-record') throw e
  }
  return true
}

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
const text = fc.string({ unit: 'binary', maxLength: 30 })
const exitRecord: fc.Arbitrary<ExitRecord> = fc.oneof(
  fc.record({ type: fc.constant('signal' as const), exitCode: int32, signal: text }),
  fc.record({ type: fc.constant('panic' as const), exitCode: int32, message: text, location: text }),
  fc.record({ type: fc.constant('error' as const), exitCode: int32, message: text, errorKind: fc.constantFrom('engine' as const, 'unsupported' as const) })
)

/** Near-records: the right keys with values of any JSON type, extra keys, odd tags. */
const recordish = fc.record({
  type: fc.oneof(fc.constantFrom('signal', 'panic', 'error', 'Signal', ''), fc.jsonValue()),
  exit_code: fc.oneof(int32, fc.double(), fc.constant(2 ** 31), fc.jsonValue()),
  signal: fc.oneof(text, fc.jsonValue()),
  message: fc.oneof(text, fc.jsonValue()),
  location: fc.oneof(text, fc.jsonValue()),
  error_kind: fc.oneof(fc.constantFrom('engine', 'unsupported', 'future'), fc.jsonValue()),
  toString: fc.jsonValue(),
}, { requiredKeys: [] })

const TRICKY = [
  '{"__proto__":{"type":"signal","signal":"SIGABRT"},"exit_code":1}', '{"type":"signal","exit_code":1e400}',
  '{"type":"error","exit_code":-0,"message":"\\ud800"}', '[{"exit_code":1}]', 'null', '"exit_code"', '\ufeff{"exit_code":1}',
  '{"exit_code":2147483648}', '{"exit_code":1.5}', '{"type":"panic","exit_code":101,"message":"m"}',
]

const exitText = fc.oneof(
  fc.constantFrom(...TRICKY),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.json(),
  recordish.map((r) => JSON.stringify(r)),
  exitRecord.map((r) => formatExitRecord(r)).chain((s) => fc.nat(s.length).map((n) => s.slice(0, n)))
)

test('parseExitRecord and parseContainerExit throw nothing but LayoutError (EINVAL malformed-record)', (t) => {
  fc.assert(fc.property(exitText, (s) =>
    onlyLayoutErrors(() => parseExitRecord(s)) && onlyLayoutErrors(() => parseContainerExit(s))), RUNS)
  t.pass()
})

test('exit records: parse(format(r)) is r and format(parse(text)) is text', (t) => {
  fc.assert(fc.property(exitRecord, (r) => {
    const written = formatExitRecord(r)
    const read = parseExitRecord(written)
    return JSON.stringify(read) === JSON.stringify(r) && formatExitRecord(read) === written
  }), RUNS)
  fc.assert(fc.property(int32, (exitCode) => {
    const written = formatContainerExit({ exitCode })
    return written === `{"exit_code":${exitCode}}` && parseContainerExit(written).exitCode === exitCode
  }), RUNS)
  t.pass()
})

// ---------------------------------------------------------------------------
// Pid files: "pid\n[start time]\n[capability lines]", as BoxLite writes it.

// Whitespace that String.prototype.trim removes (the parser trims lines).
const SPACE = fc.constantFrom(' ', '\t', '\v', '\f', '\r', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029',
  '\u202f', '\u205f', '\u3000', '\ufeff')
const spaces = fc.array(SPACE, { maxLength: 3 }).map((a) => a.join(''))
const pid = fc.integer({ min: 1, max: 0x7fffffff })
const capability = fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((c) => !/[\n\r]/.test(c))

/** BoxLite's writer: line 2 empty only when the fingerprint is unknown and capability lines follow. */
function formatPid (r: { pid: number, startTime?: string, capabilities: string[] }): string {
  let s = `${r.pid}\n`
  if (r.startTime !== undefined) s += `${r.startTime}\n`
  else if (r.capabilities.length > 0) s += '\n'
  return s + r.capabilities.map((c) => `${c}\n`).join('')
}

const pidRecord = fc.record({
  pid,
  startTime: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { nil: undefined }),
  capabilities: fc.array(capability, { maxLength: 3 }),
}).map((r) => r.startTime === undefined ? { pid: r.pid, capabilities: r.capabilities } : r)

const pidText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('0', '1', '9', '\n', '\r', ' ', '-', '+', 'x', '\u00a0'), maxLength: 16 }),
  fc.tuple(spaces, fc.oneof(pid.map(String), fc.string({ unit: fc.constantFrom('0', '1', '9'), maxLength: 12 })), spaces,
    fc.string({ unit: 'binary', maxLength: 20 })).map(([a, p, b, rest]) => `${a}${p}${b}\n${rest}`),
  pidRecord.map(formatPid)
)

test('parsePidFile throws nothing but LayoutError (EINVAL malformed-record)', (t) => {
  fc.assert(fc.property(pidText, (s) => onlyLayoutErrors(() => parsePidFile(s))), RUNS)
  t.pass()
})

test('pid files: parse(format(r)) is r and format(parse(text)) is text', (t) => {
  fc.assert(fc.property(pidRecord, (r) => {
    const written = formatPid(r)
    const read = parsePidFile(written)
    return JSON.stringify(read) === JSON.stringify(r) && formatPid(read) === written
  }), RUNS)
  t.pass()
})

test('pid files: line 2 is a fingerprint exactly when it is a decimal u64 (BoxLite\'s reader); never an error', (t) => {
  const second = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => !s.includes('\n')),
    fc.bigInt({ min: 0n, max: 2n ** 65n }).map(String),
    fc.tuple(spaces, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), spaces).map(([a, n, b]) => `${a}${n}${b}`),
    fc.tuple(fc.string({ unit: fc.constant('0'), maxLength: 30 }), fc.bigInt({ min: 0n, max: 2n ** 65n })).map(([z, n]) => `${z}${n}`)
  )
  fc.assert(fc.property(pid, second, (p, line2) => {
    const trimmed = line2.trim()
    const isU64 = /^[0-9]+$/.test(trimmed) && BigInt(trimmed) < 2n ** 64n
    const read = parsePidFile(`${p}\n${line2}\n`)
    return read.pid === p && (isU64 ? read.startTime === trimmed : read.startTime === undefined)
  }), RUNS)
  t.pass()
})

test('pid files: what PidFile writes reads back as the record it returned, or it is refused', (t) => {
  const dir = scratch(t)
  const file = new PidFile(path.join(dir, 'shim.pid'))
  const anyCapability = fc.oneof(capability, fc.string({ unit: 'binary', maxLength: 6 }))
  fc.assert(fc.property(fc.array(anyCapability, { maxLength: 3 }), (capabilities) => {
    // An empty line or one holding CR, LF or NUL could not be read back as
    // written: refused before anything is written.
    if (capabilities.some((c) => c === '' || /[\n\r\0]/.test(c))) {
      try {
        file.writeSync(process.pid, capabilities)
        return false
      } catch (e) {
        return e instanceof LayoutError && e.code === 'ERR_INVALID_ARG'
      }
    }
    const written = file.writeSync(process.pid, capabilities)
    const text = fs.readFileSync(file.path, 'utf8')
    const read = file.readSync()!
    return text === formatPid(written) && JSON.stringify(read) === JSON.stringify(written)
  }), RUNS)
  t.pass()
})

test('pid files: the core reads the pid the parser reads, so a live shim is never judged absent', (t) => {
  // Line 1 padded the ways trim() forgives: if the parser accepts it, the
  // core must probe that same pid (this process: alive), or identity would
  // be judged on another process and gc would unmount a live box.
  const dir = scratch(t)
  const file = new PidFile(path.join(dir, 'shim.pid'))
  fc.assert(fc.property(spaces, spaces, fc.array(capability, { maxLength: 2 }), (before, after, capabilities) => {
    const text = `${before}${process.pid}${after}\n\n${capabilities.map((c) => `${c}\n`).join('')}`
    fs.writeFileSync(file.path, text)
    return parsePidFile(text).pid === process.pid && file.identitySync().identity === 'legacy'
  }), RUNS)
  t.pass()
})

// ---------------------------------------------------------------------------
// The CLI's argument parser.

const OPTION_NAMES = [...new Set(COMMANDS.flatMap((c) => c.options.map((o) => o.name)).concat('home', 'json', 'help'))]
const WORDS = [...new Set(COMMANDS.flatMap((c) => c.name.split(' ')))]
const token = fc.oneof(
  fc.constantFrom(...WORDS),
  fc.constantFrom(...OPTION_NAMES).map((o) => `--${o}`),
  fc.tuple(fc.constantFrom(...OPTION_NAMES), fc.string({ maxLength: 6 })).map(([o, v]) => `--${o}=${v}`),
  fc.constantFrom('--', '-', '-h', '-V', '--version', '--no-json', '-abc', '--=x', '---', '--json=1'),
  fc.string({ unit: 'binary', maxLength: 8 })
)

test('any argv: the parser throws nothing but a usage error, and main() then exits 2', async (t) => {
  const quiet = { write: () => true }
  const rejected: string[][] = []
  fc.assert(fc.property(fc.array(token, { maxLength: 8 }), (argv) => {
    const { command } = findCommand(argv)
    if (command === undefined) return true
    try {
      parse(command, argv)
    } catch (e) {
      if (!(e instanceof UsageError)) throw e
      if (rejected.length < 300) rejected.push(argv)
    }
    return true
  }), RUNS)
  // main() on refused argv never runs a command: exit code 2, nothing else.
  for (const argv of rejected) {
    if (argv.includes('--help') || argv.includes('-h') || argv[0] === '--version' || argv[0] === '-V') continue
    const code = await main(argv, new Output({ json: false, stdout: quiet, stderr: quiet }))
    t.is(code, 2, JSON.stringify(argv))
  }
})

/** argv that gives each option and positional of a command, in a generated order. */
function argvFor (command: CommandSpec): fc.Arbitrary<{ argv: string[], positionals: string[], trailing: string[], options: Record<string, unknown> }> {
  const specs = [...command.options, ...(command.home ? [HOME_OPTION] : []), { name: 'json', help: '' }]
  const [min, max] = command.arity
  const positional = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => !s.startsWith('-'))
  const value = fc.string({ unit: 'binary', maxLength: 12 })
  return fc.record({
    positionals: fc.array(positional, { minLength: min, maxLength: Math.min(max, min + 3) }),
    trailing: command.trailing === undefined ? fc.constant<string[]>([]) : fc.array(fc.string({ unit: 'binary', maxLength: 8 }), { minLength: 1, maxLength: 3 }),
    given: fc.subarray(specs),
    values: fc.array(value, { minLength: 8, maxLength: 8 }),
    seed: fc.nat(),
  }).map(({ positionals, trailing, given, values, seed }) => {
    const options: Record<string, unknown> = {}
    const groups: string[][] = []
    given.forEach((o, i) => {
      const v = values[i]!
      if (o.value === undefined) {
        options[o.name] = true
        groups.push([`--${o.name}`])
      } else if (o.multiple === true) {
        // Twice: "--name=value" and "--name value" (a value may not look like an option there).
        const second = /^-/.test(v) ? `./${v}` : v
        options[o.name] = [v, second]
        groups.push([`--${o.name}=${v}`], [`--${o.name}`, second])
      } else {
        options[o.name] = v
        groups.push([`--${o.name}=${v}`])
      }
    })
    // Option groups and positionals shuffled together (Fisher-Yates on the
    // seed); positionals then fill their slots in order.
    const slots: Array<string[] | null> = [...groups, ...positionals.map(() => null)]
    let x = seed
    for (let i = slots.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      const j = x % (i + 1)
      ;[slots[i], slots[j]] = [slots[j]!, slots[i]!]
    }
    let next = 0
    const argv = [...command.name.split(' '), ...slots.flatMap((g) => g ?? [positionals[next++]!])]
    if (trailing.length > 0) argv.push('--', ...trailing)
    return { argv, positionals, trailing, options }
  })
}

test('every command: options and positionals given in any order parse back as given', (t) => {
  const cases = fc.constantFrom(...COMMANDS).chain((c) => argvFor(c).map((g) => ({ command: c, ...g })))
  fc.assert(fc.property(cases, ({ command, argv, positionals, trailing, options }) => {
    if (findCommand(argv).command !== command) return false
    const parsed = parse(command, argv)
    const got = Object.fromEntries(Object.entries(parsed.options).filter(([, v]) => v !== undefined))
    return JSON.stringify(parsed.positionals) === JSON.stringify(positionals) &&
      JSON.stringify(parsed.trailing) === JSON.stringify(trailing) &&
      JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(options).sort())
  }), RUNS)
  t.pass()
})
