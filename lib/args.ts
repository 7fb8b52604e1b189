// Argument checks for every public entry point: one message style, the
// argument named, nothing run of the caller's but the getters we must read.
// Each check returns the value it judged, read once, so a getter that
// answers differently the second time cannot slip past (options are copied
// into a plain object before anything uses them). A refused argument is
// LayoutError ERR_INVALID_ARG (reason invalid-argument) before the disk is
// touched; the Promise forms reject with it (their checks run inside the
// async function). See docs/design.md#errors.
// The checks a LayoutError makes of its own init (describe, refuse, options,
// string, integer…) live with it in errors.ts, so that neither module
// imports the other; they are re-exported here, where callers look for them.
import { types } from 'node:util'
import { array, integer, options, PATH_BYTES_MAX, refuse, string, type StringRules } from './errors.ts'
export { array, describe, entries, integer, options, PATH_BYTES_MAX, refuse, string, type StringRules } from './errors.ts'

const ABSOLUTE_PATH = `an absolute path (a string without NUL, at most ${PATH_BYTES_MAX} bytes)`
const RELATIVE_PATH = `a non-empty path (a string without NUL, at most ${PATH_BYTES_MAX} bytes)`
// The rules without a why, made once: path() runs on every call.
const ABSOLUTE_RULES: StringRules = { expected: ABSOLUTE_PATH }
const RELATIVE_RULES: StringRules = { expected: RELATIVE_PATH }

/** A path for a syscall: a string as above, absolute unless `relative` is allowed. */
export function path (value: unknown, name: string, how?: { absolute?: boolean, why?: string }): string {
  const absolute = how?.absolute ?? true
  const why = how?.why
  const expected = absolute ? ABSOLUTE_PATH : RELATIVE_PATH
  const p = string(value, name, why !== undefined ? { expected, why } : absolute ? ABSOLUTE_RULES : RELATIVE_RULES)
  if (absolute && !p.startsWith('/')) throw refuse(name, expected, value, why)
  return p
}

export function boolean (value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw refuse(name, 'a boolean', value)
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
