// Box ids, container ids and volume names: 1-128 bytes of
// [A-Za-z0-9_-]. They become path components, so anything else (a slash,
// "..", NUL, spaces, non-ASCII) is refused before the disk is touched.
import { refuse } from './args.ts'

export const ID_MAX_BYTES = 128
export const MINTED_ID_LENGTH = 12

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

export function isValidId (value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

const ID_RULE = `1-${ID_MAX_BYTES} characters of A-Z, a-z, 0-9, "_" and "-"`

/** value as an id, or ERR_INVALID_ARG naming the argument it came in as. */
export function checkId (value: unknown, name: string): string {
  if (isValidId(value)) return value
  throw refuse(name, ID_RULE, value)
}

export const validateBoxId = (boxId: unknown): string => checkId(boxId, 'boxId')
export const validateContainerId = (containerId: unknown): string => checkId(containerId, 'containerId')
export const validateVolumeName = (name: unknown): string => checkId(name, 'volumeName')

// CSPRNG bytes drawn 4 KiB at a time: one getrandom per ~170 ids, not per id.
const pool = Buffer.alloc(4096)
let poolNext = pool.length

/** n bytes from the CSPRNG (a view into the pool: use before the next call). */
export function randomPoolBytes (n: number): Buffer {
  if (poolNext + n > pool.length) {
    // Loaded on first use: node:crypto pulls in some 40 internal modules,
    // a few ms of every CLI call that mints nothing.
    process.getBuiltinModule('node:crypto').randomFillSync(pool)
    poolNext = 0
  }
  const out = pool.subarray(poolNext, poolNext + n)
  poolNext += n
  return out
}

/** A fresh box id: 12 base62 characters from the CSPRNG (about 71 bits). */
export function mintBoxId (): string {
  let out = ''
  while (out.length < MINTED_ID_LENGTH) {
    for (const byte of randomPoolBytes(MINTED_ID_LENGTH * 2)) {
      // 248 = 4 * 62: rejecting the rest keeps every character equally likely.
      if (byte < 248 && out.length < MINTED_ID_LENGTH) out += BASE62[byte % 62]
    }
  }
  return out
}

export const BoxId = {
  mint: mintBoxId,
  validate: validateBoxId,
  isValid: isValidId,
} as const
