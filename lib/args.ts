// Argument checks for every public entry point: one message style, the
// argument named, nothing run of the caller's but the getters we must read.
// Each check returns the value it judged, read once, so a getter that
// answers differently the second time cannot slip past (options are copied
// into a plain object before anything uses them). A refused argument is
// LayoutError ERR_INVALID_ARG (reason invalid-argument) before the disk is
// touched; the Promise forms reject with it (their checks run inside the
// async function). See docs/design.md#errors.
import { types } from 'node:util'
import { LayoutError } from './errors.ts'

/** The longest path a syscall takes, NUL excluded (PATH_MAX - 1). */
export const PATH_BYTES_MAX = process.platform === 'darwin' ? 1023 : 4095

/**
 * What a value is, for a message: never calls the caller's code (no
 * toString, toJSON, getters or proxy traps), never throws, never quotes
 * more than 40 characters.
 */
export function describe (value: unknown): string {
  switch (typeof value) {
    case 'string': {
      const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
      return `${shown} (${Buffer.byteLength(value)} bytes)`
    }
    case 'number': return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint': return `a bigint (${value.toString().slice(0, 40)}n)`
    case 'boolean': return String(value)
    case 'undefined': return 'undefined'
    case 'symbol': return 'a symbol'
    case 'function': return 'a function'
    default:
      if (value === null) return 'null'
      try {
        if (Array.isArray(value)) return 'an array'
        // Internal slots only: instanceof would run a proxy's getPrototypeOf trap.
        if (types.isUint8Array(value)) return 'a Uint8Array'
        if (types.isProxy(value)) return 'a proxy'
      } catch {
        return 'a revoked proxy'
      }
      return 'an object'
  }
}

/** ERR_INVALID_ARG naming the argument: `"name" must be <expected>; got <value>[. why]`. */
export function refuse (name: string, expected: string, value: unknown, why?: string, cause?: unknown): LayoutError {
  return new LayoutError({
    code: 'ERR_INVALID_ARG',
    reason: 'invalid-argument',
    message: `ERR_INVALID_ARG: "${name}" must be ${expected}; got ${describe(value)}${why === undefined ? '' : `. ${why}`}`,
    ...(cause === undefined ? {} : { cause }),
  })
}

/** obj[key], with a throwing getter or proxy trap refused as the argument `name`. */
function read (obj: object, key: PropertyKey, name: string): unknown {
  try {
    return (obj as Record<PropertyKey, unknown>)[key]
  } catch (e) {
    throw new LayoutError({
      code: 'ERR_INVALID_ARG',
      reason: 'invalid-argument',
      message: `ERR_INVALID_ARG: "${name}" could not be read: its getter threw (see cause)`,
      cause: e,
    })
  }
}

function isArray (value: unknown, name: string): boolean {
  try {
    return Array.isArray(value)
  } catch (e) {
    throw refuse(name, 'an array', value, undefined, e)
  }
}

/**
 * An options object copied into a plain one, each known key read once;
 * undefined is {} (every default). Unknown keys are ignored, as Node does.
 */
export function options<K extends PropertyKey> (value: unknown, name: string, keys: readonly K[]): Partial<Record<K, unknown>> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || isArray(value, name)) throw refuse(name, 'an object', value)
  const out: Partial<Record<K, unknown>> = {}
  for (const key of keys) {
    const v = read(value, key, `${name}.${String(key)}`)
    if (v !== undefined) out[key] = v
  }
  return out
}

/**
 * A plain copy of a record's own enumerable string keys and their values
 * (e.g. an env), each read once; a proxy is refused unrun.
 */
export function entries (value: unknown, name: string, { max = 0x10000 } = {}): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || isArray(value, name) || types.isProxy(value)) throw refuse(name, 'an object', value)
  const keys = Object.keys(value)
  if (keys.length > max) throw refuse(name, `an object of at most ${max} entries`, value)
  return keys.map((k) => [k, read(value, k, `${name}.${k}`)])
}

/** A plain copy of an array, each element read once. */
export function array (value: unknown, name: string, { nonEmpty = false, max = 0x10000 } = {}): unknown[] {
  if (!isArray(value, name)) throw refuse(name, nonEmpty ? 'a non-empty array' : 'an array', value)
  const length = read(value as object, 'length', `${name}.length`) as number
  if (nonEmpty && length === 0) throw refuse(name, 'a non-empty array', value)
  if (length > max) throw refuse(name, `an array of at most ${max} entries`, value)
  const out: unknown[] = []
  for (let i = 0; i < length; i++) out.push(read(value as object, i, `${name}[${i}]`))
  return out
}

export interface StringRules {
  /** Default true. */
  nonEmpty?: boolean
  /** Bytes as UTF-8; default PATH_BYTES_MAX. */
  maxBytes?: number
  /**
   * Text to parse, not a name: NUL and lone surrogates are the parser's
   * to judge (malformed), not the caller's mistake. Default false.
   */
  text?: boolean
  /** What the message says the argument must be (default: the rules spelled out). */
  expected?: string
  /** Appended to the message: why the rule exists. */
  why?: string
}

// In a /u regex a surrogate pair is one code point: only a lone half matches.
const LONE_SURROGATE = /\p{Cs}/u

/** A string the native side gets unchanged: well-formed Unicode, no NUL, bounded. */
export function string (value: unknown, name: string, rules: StringRules = {}): string {
  const { nonEmpty = true, maxBytes = PATH_BYTES_MAX, text = false, why } = rules
  const expected = rules.expected ?? `a${nonEmpty ? ' non-empty' : ''} string${text ? '' : ' without NUL'} of at most ${maxBytes} bytes`
  if (typeof value !== 'string') throw refuse(name, expected, value, why)
  if (nonEmpty && value === '') throw refuse(name, expected, value, why)
  if (!text && value.includes('\0')) throw refuse(name, expected, value, 'A NUL byte would cut it short in a syscall')
  // Cheap bound first: UTF-8 takes at least one byte per UTF-16 unit.
  if (value.length > maxBytes || Buffer.byteLength(value) > maxBytes) throw refuse(name, expected, value, why)
  if (!text && LONE_SURROGATE.test(value)) {
    throw refuse(name, 'well-formed Unicode', value, 'A lone surrogate would become U+FFFD in UTF-8: another name than the one given')
  }
  return value
}

/** A path for a syscall: a string as above, absolute unless `relative` is allowed. */
export function path (value: unknown, name: string, { absolute = true, why }: { absolute?: boolean, why?: string } = {}): string {
  const expected = `${absolute ? 'an absolute' : 'a non-empty'} path (a string without NUL, at most ${PATH_BYTES_MAX} bytes)`
  const p = string(value, name, { expected, ...(why === undefined ? {} : { why }) })
  if (absolute && !p.startsWith('/')) throw refuse(name, expected, value, why)
  return p
}

export function boolean (value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw refuse(name, 'a boolean', value)
  return value
}

/** An integer in min..max (a safe integer; no NaN, Infinity, fraction or bigint). */
export function integer (value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw refuse(name, `an integer in ${min}..${max}`, value)
  }
  return value
}

/** One of a fixed set of strings. */
export function oneOf<T extends string> (value: unknown, name: string, choices: readonly T[], why?: string): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw refuse(name, choices.map((c) => `'${c}'`).join(', ').replace(/, ([^,]*)$/, ' or $1'), value, why)
  }
  return value as T
}

/** A uid: 0..2^32-2 (2^32-1 is the kernel's "no uid"). */
export function uid (value: unknown, name: string): number {
  return integer(value, name, 0, 0xfffffffe)
}

/**
 * The @internal second argument of ImageLayout and LockManager: the home
 * (opened as given) and the directory's path beneath it.
 */
export function anchor (value: unknown, name = 'anchor'): [root: string, rel: string] {
  const a = options(value, name, ['root', 'rel'])
  return [path(a.root, `${name}.root`), path(a.rel, `${name}.rel`, { absolute: false })]
}

/** An instance of cls (a proxy never is: its traps are not run). */
export function instance<T> (value: unknown, name: string, cls: abstract new (...a: never[]) => T, expected: string): T {
  if (types.isProxy(value) || !(value instanceof cls)) throw refuse(name, expected, value)
  return value
}

/** The @internal [root, rel] a BoxLayout gives its record files: root opened as given, rel beneath it. */
export function dirRef (value: unknown, name: string): [root: string, rel: string] {
  const d = array(value, name)
  return [path(d[0], `${name}[0]`), string(d[1], `${name}[1]`, { nonEmpty: false })]
}

/** A string or the bytes of a Uint8Array, at most maxBytes. */
export function bytes (value: unknown, name: string, maxBytes: number): string | Uint8Array {
  const expected = `a non-empty string or Uint8Array of at most ${maxBytes} bytes`
  if (types.isUint8Array(value)) {
    if (value.byteLength === 0 || value.byteLength > maxBytes) throw refuse(name, expected, value)
    return value
  }
  return string(value, name, { maxBytes, text: true })
}
