// A small Mach-O reader for checking the darwin prebuilds on Linux (no
// otool/codesign here): header, load commands, minimum OS, linked dylibs,
// exports (export trie and symtab), imports with the library each binds to
// (bind opcodes or chained fixups, and the symtab's two-level ordinals),
// and the code signature, whose page hashes are recomputed. Thin or fat,
// 64-bit little-endian slices only. Layouts: <mach-o/loader.h>,
// <mach-o/nlist.h>, <mach-o/fat.h>, <mach-o/fixup-chains.h>, and xnu's
// osfmk/kern/cs_blobs.h for the signature.
import { compareVersions } from './elf.ts'
import { createHash } from 'node:crypto'

const MH_MAGIC_64 = 0xfeedfacf
const MH_MAGIC = 0xfeedface
const FAT_MAGIC = 0xcafebabe
const FAT_MAGIC_64 = 0xcafebabf

const CPU_TYPES: Record<number, string> = {
  0x01000007: 'x86_64',
  0x0100000c: 'arm64',
  0x07: 'i386',
  0x0c: 'arm',
}

const FILE_TYPES: Record<number, string> = {
  1: 'object',
  2: 'execute',
  3: 'fvmlib',
  4: 'core',
  5: 'preload',
  6: 'dylib',
  7: 'dylinker',
  8: 'bundle',
  9: 'dylib_stub',
  10: 'dsym',
  11: 'kext_bundle',
  12: 'fileset',
}

const HEADER_FLAGS: Array<[number, string]> = [
  [0x1, 'NOUNDEFS'], [0x2, 'INCRLINK'], [0x4, 'DYLDLINK'], [0x8, 'BINDATLOAD'], [0x10, 'PREBOUND'],
  [0x20, 'SPLIT_SEGS'], [0x80, 'TWOLEVEL'], [0x100, 'FORCE_FLAT'], [0x200, 'NOMULTIDEFS'],
  [0x8000, 'WEAK_DEFINES'], [0x10000, 'BINDS_TO_WEAK'], [0x20000, 'ALLOW_STACK_EXECUTION'],
  [0x200000, 'PIE'], [0x100000, 'NO_REEXPORTED_DYLIBS'], [0x800000, 'HAS_TLV_DESCRIPTORS'],
  [0x2000000, 'APP_EXTENSION_SAFE'], [0x80000000, 'DYLIB_IN_CACHE'],
]

const LC_REQ_DYLD = 0x80000000
// Unsigned 32-bit values (a plain `|` would make the LC_REQ_DYLD ones negative).
const req = (cmd: number): number => (cmd | LC_REQ_DYLD) >>> 0
const LC = {
  SYMTAB: 0x2,
  DYSYMTAB: 0xb,
  LOAD_DYLIB: 0xc,
  ID_DYLIB: 0xd,
  LOAD_DYLINKER: 0xe,
  LOAD_WEAK_DYLIB: req(0x18),
  SEGMENT_64: 0x19,
  UUID: 0x1b,
  RPATH: req(0x1c),
  CODE_SIGNATURE: 0x1d,
  REEXPORT_DYLIB: req(0x1f),
  LAZY_LOAD_DYLIB: 0x20,
  DYLD_INFO: 0x22,
  DYLD_INFO_ONLY: req(0x22),
  LOAD_UPWARD_DYLIB: req(0x23),
  VERSION_MIN_MACOSX: 0x24,
  VERSION_MIN_IPHONEOS: 0x25,
  FUNCTION_STARTS: 0x26,
  MAIN: req(0x28),
  DATA_IN_CODE: 0x29,
  SOURCE_VERSION: 0x2a,
  BUILD_VERSION: 0x32,
  DYLD_EXPORTS_TRIE: req(0x33),
  DYLD_CHAINED_FIXUPS: req(0x34),
} as const

const LC_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(LC).map(([name, value]) => [value, `LC_${name}`])
)

const PLATFORMS: Record<number, string> = {
  1: 'macos',
  2: 'ios',
  3: 'tvos',
  4: 'watchos',
  5: 'bridgeos',
  6: 'maccatalyst',
  7: 'iossimulator',
  8: 'tvossimulator',
  9: 'watchossimulator',
  10: 'driverkit',
}

/** Where an imported symbol is looked up at load time. */
export const FLAT_LOOKUP = '<flat-namespace>'
export const SELF_LIBRARY = '<self>'
export const MAIN_EXECUTABLE = '<main-executable>'
export const WEAK_LOOKUP = '<weak-coalesce>'

export interface MachOImport {
  /** Mangled symbol name, with Mach-O's leading underscore: `_napi_create_object`. */
  name: string
  /** A dylib's install name, or FLAT_LOOKUP (-undefined dynamic_lookup), SELF_LIBRARY, MAIN_EXECUTABLE, WEAK_LOOKUP. */
  library: string
  weak: boolean
}

export interface MachODylib {
  path: string
  kind: 'load' | 'weak' | 'reexport' | 'upward' | 'lazy'
  currentVersion: string
  compatibilityVersion: string
}

export interface MachOPlatform {
  platform: string
  /** Minimum OS version, "11.0". */
  minos: string
  sdk: string
  from: 'LC_BUILD_VERSION' | 'LC_VERSION_MIN_MACOSX' | 'LC_VERSION_MIN_IPHONEOS'
}

export interface CodeDirectoryInfo {
  version: number
  flags: number
  /** CS_ADHOC: no certificate; what Apple Silicon accepts for local/linker signatures. */
  adhoc: boolean
  /** CS_LINKER_SIGNED: written by the linker (ld64, zig), not by codesign. */
  linkerSigned: boolean
  identifier: string
  teamId: string | null
  hashType: string
  hashSize: number
  pageSize: number
  codeLimit: number
  nCodeSlots: number
  nSpecialSlots: number
  /** Every code page hash recomputed and equal to the stored one. */
  pagesMatch: boolean
  badPages: number[]
}

export interface CodeSignatureInfo {
  dataoff: number
  datasize: number
  /** Blob kinds in the SuperBlob: "CodeDirectory", "Requirements", "CMS", ... */
  blobs: string[]
  /** The primary CodeDirectory (slot 0). */
  codeDirectory: CodeDirectoryInfo | null
  /** A CMS blob with content (a real certificate signature, not ad-hoc). */
  cmsSigned: boolean
  /** The signature covers the whole file up to itself (codeLimit === dataoff). */
  coversFile: boolean
}

export interface MachOSlice {
  /** Offset and size of this slice in the file (0 and the file size when thin). */
  offset: number
  size: number
  cpu: string
  cputype: number
  cpusubtype: number
  filetype: string
  flags: string[]
  /** Load command names in file order ("LC_0x..." when unknown). */
  loadCommands: string[]
  platform: MachOPlatform | null
  uuid: string | null
  /** LC_ID_DYLIB (dylibs only). */
  idDylib: string | null
  dylinker: string | null
  dylibs: MachODylib[]
  rpaths: string[]
  codeSignature: CodeSignatureInfo | null
  /** Names in the dyld export trie (what dlsym and other images can see), sorted. */
  exports: string[]
  symtab: {
    /** Defined N_EXT symbols that are not private extern, sorted. */
    exported: string[]
    /** Defined N_EXT|N_PEXT symbols (hidden visibility), count. */
    privateExternal: number
    locals: number
    /** N_UNDF|N_EXT symbols with the library from their two-level ordinal (n_desc >> 8). */
    undefined: MachOImport[]
  }
  /** What dyld binds: bind/weak-bind/lazy-bind opcodes, or chained fixup imports; unique, sorted by name. */
  imports: MachOImport[]
  importsFrom: 'dyld-info' | 'chained-fixups' | 'none'
}

export interface MachO {
  fat: boolean
  slices: MachOSlice[]
}

class Reader {
  readonly view: DataView
  constructor (readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  check (off: number, len: number, what: string): void {
    if (off < 0 || len < 0 || off + len > this.bytes.length) {
      throw new Error(`Mach-O: ${what} at ${off}+${len} is outside the file (${this.bytes.length} bytes)`)
    }
  }

  u8 (off: number): number { this.check(off, 1, 'u8'); return this.view.getUint8(off) }
  u16 (off: number): number { this.check(off, 2, 'u16'); return this.view.getUint16(off, true) }
  u32 (off: number): number { this.check(off, 4, 'u32'); return this.view.getUint32(off, true) }
  u32be (off: number): number { this.check(off, 4, 'u32be'); return this.view.getUint32(off, false) }
  u64 (off: number): number {
    this.check(off, 8, 'u64')
    const v = this.view.getBigUint64(off, true)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`Mach-O: 64-bit value at ${off} too large`)
    return Number(v)
  }

  u64be (off: number): number {
    this.check(off, 8, 'u64be')
    return Number(this.view.getBigUint64(off, false))
  }

  /** A NUL-terminated string starting at off, never past end. */
  cstring (off: number, end = this.bytes.length): string {
    this.check(off, 0, 'string')
    let i = off
    const limit = Math.min(end, this.bytes.length)
    while (i < limit && this.bytes[i] !== 0) i++
    return decoder.decode(this.bytes.subarray(off, i))
  }

  /** Fixed-size, NUL-padded name (segment names). */
  fixed (off: number, len: number): string {
    this.check(off, len, 'name')
    const raw = this.bytes.subarray(off, off + len)
    const nul = raw.indexOf(0)
    return decoder.decode(nul === -1 ? raw : raw.subarray(0, nul))
  }
}

const decoder = new TextDecoder('utf-8')

/** ULEB128 / SLEB128 readers over a byte range; pos is advanced in place. */
class Leb {
  pos: number
  constructor (readonly bytes: Uint8Array, start: number, readonly end: number) {
    this.pos = start
  }

  get done (): boolean { return this.pos >= this.end }

  byte (): number {
    if (this.pos >= this.end) throw new Error('Mach-O: truncated opcode stream')
    return this.bytes[this.pos++]!
  }

  uleb (): number {
    let result = 0
    let scale = 1
    for (;;) {
      const b = this.byte()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) return result
      scale *= 128
      if (scale > 2 ** 63) throw new Error('Mach-O: ULEB128 too long')
    }
  }

  sleb (): number {
    let result = 0
    let scale = 1
    let b: number
    do {
      b = this.byte()
      result += (b & 0x7f) * scale
      scale *= 128
    } while ((b & 0x80) !== 0)
    if ((b & 0x40) !== 0) result -= scale
    return result
  }

  cstring (): string {
    const start = this.pos
    while (this.pos < this.end && this.bytes[this.pos] !== 0) this.pos++
    const s = decoder.decode(this.bytes.subarray(start, this.pos))
    this.pos++ // the NUL
    return s
  }
}

function version (v: number): string {
  const major = v >>> 16
  const minor = (v >>> 8) & 0xff
  const patch = v & 0xff
  return patch === 0 ? `${major}.${minor}` : `${major}.${minor}.${patch}`
}

/** Parse a thin or fat Mach-O file. Throws on anything that is not one. */
export function readMachO (buf: Uint8Array): MachO {
  const r = new Reader(buf)
  if (buf.length < 8) throw new Error('Mach-O: file too small')
  const be = r.u32be(0)
  if (be === FAT_MAGIC || be === FAT_MAGIC_64) {
    const n = r.u32be(4)
    // Java class files share 0xcafebabe; they have a large "count" there.
    if (n === 0 || n > 64) throw new Error(`Mach-O: not a fat file (${n} architectures)`)
    const wide = be === FAT_MAGIC_64
    const slices: MachOSlice[] = []
    for (let i = 0; i < n; i++) {
      const at = 8 + i * (wide ? 32 : 20)
      const offset = wide ? r.u64be(at + 8) : r.u32be(at + 8)
      const size = wide ? r.u64be(at + 16) : r.u32be(at + 12)
      r.check(offset, size, `fat slice ${i}`)
      slices.push(readSlice(buf.subarray(offset, offset + size), offset))
    }
    return { fat: true, slices }
  }
  return { fat: false, slices: [readSlice(buf, 0)] }
}

interface LinkeditRefs {
  symoff: number,
  nsyms: number,
  stroff: number,
  strsize: number
  dyldInfo: { bindOff: number, bindSize: number, weakOff: number, weakSize: number, lazyOff: number, lazySize: number, exportOff: number, exportSize: number } | null
  exportsTrie: { off: number, size: number } | null
  chainedFixups: { off: number, size: number } | null
  codeSignature: { off: number, size: number } | null
}

function readSlice (bytes: Uint8Array, fileOffset: number): MachOSlice {
  const r = new Reader(bytes)
  const magic = r.u32(0)
  if (magic === MH_MAGIC) throw new Error('Mach-O: 32-bit images are not supported')
  if (magic !== MH_MAGIC_64) throw new Error(`Mach-O: bad magic 0x${magic.toString(16)}`)
  const cputype = r.u32(4)
  const cpusubtype = r.u32(8) & 0x00ffffff
  const filetypeNum = r.u32(12)
  const ncmds = r.u32(16)
  const sizeofcmds = r.u32(20)
  const flagsNum = r.u32(24)
  const headerSize = 32
  r.check(headerSize, sizeofcmds, 'load commands')

  const slice: MachOSlice = {
    offset: fileOffset,
    size: bytes.length,
    cpu: CPU_TYPES[cputype] ?? `cpu(0x${cputype.toString(16)})`,
    cputype,
    cpusubtype,
    filetype: FILE_TYPES[filetypeNum] ?? `type(${filetypeNum})`,
    flags: HEADER_FLAGS.filter(([bit]) => (flagsNum & bit) >>> 0 !== 0).map(([, name]) => name),
    loadCommands: [],
    platform: null,
    uuid: null,
    idDylib: null,
    dylinker: null,
    dylibs: [],
    rpaths: [],
    codeSignature: null,
    exports: [],
    symtab: { exported: [], privateExternal: 0, locals: 0, undefined: [] },
    imports: [],
    importsFrom: 'none',
  }
  const refs: LinkeditRefs = { symoff: 0, nsyms: 0, stroff: 0, strsize: 0, dyldInfo: null, exportsTrie: null, chainedFixups: null, codeSignature: null }
  const segments: Array<{ name: string, vmaddr: number, fileoff: number }> = []

  let off = headerSize
  for (let i = 0; i < ncmds; i++) {
    const cmd = r.u32(off) // unsigned, like the LC values
    const cmdsize = r.u32(off + 4)
    if (cmdsize < 8 || off + cmdsize > headerSize + sizeofcmds) throw new Error(`Mach-O: bad load command ${i} (size ${cmdsize})`)
    slice.loadCommands.push(LC_NAMES[cmd] ?? `LC_0x${cmd.toString(16)}`)
    const lcString = (at: number): string => r.cstring(off + r.u32(off + at), off + cmdsize)
    switch (cmd) {
      case LC.SEGMENT_64:
        segments.push({ name: r.fixed(off + 8, 16), vmaddr: r.u64(off + 24), fileoff: r.u64(off + 40) })
        break
      case LC.SYMTAB:
        refs.symoff = r.u32(off + 8)
        refs.nsyms = r.u32(off + 12)
        refs.stroff = r.u32(off + 16)
        refs.strsize = r.u32(off + 20)
        break
      case LC.LOAD_DYLIB:
      case LC.LOAD_WEAK_DYLIB:
      case LC.REEXPORT_DYLIB:
      case LC.LOAD_UPWARD_DYLIB:
      case LC.LAZY_LOAD_DYLIB: {
        const kind = cmd === LC.LOAD_DYLIB
          ? 'load'
          : cmd === LC.LOAD_WEAK_DYLIB ? 'weak' : cmd === LC.REEXPORT_DYLIB ? 'reexport' : cmd === LC.LOAD_UPWARD_DYLIB ? 'upward' : 'lazy'
        slice.dylibs.push({ path: lcString(8), kind, currentVersion: version(r.u32(off + 16)), compatibilityVersion: version(r.u32(off + 20)) })
        break
      }
      case LC.ID_DYLIB:
        slice.idDylib = lcString(8)
        break
      case LC.LOAD_DYLINKER:
        slice.dylinker = lcString(8)
        break
      case LC.RPATH:
        slice.rpaths.push(lcString(8))
        break
      case LC.UUID: {
        const hex = Array.from(bytes.subarray(off + 8, off + 24), (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase()
        slice.uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
        break
      }
      case LC.BUILD_VERSION:
        slice.platform = {
          platform: PLATFORMS[r.u32(off + 8)] ?? `platform(${r.u32(off + 8)})`,
          minos: version(r.u32(off + 12)),
          sdk: version(r.u32(off + 16)),
          from: 'LC_BUILD_VERSION',
        }
        break
      case LC.VERSION_MIN_MACOSX:
      case LC.VERSION_MIN_IPHONEOS:
        // LC_BUILD_VERSION wins when both are present (it never is with ld64).
        if (slice.platform === null) {
          slice.platform = {
            platform: cmd === LC.VERSION_MIN_MACOSX ? 'macos' : 'ios',
            minos: version(r.u32(off + 8)),
            sdk: version(r.u32(off + 12)),
            from: cmd === LC.VERSION_MIN_MACOSX ? 'LC_VERSION_MIN_MACOSX' : 'LC_VERSION_MIN_IPHONEOS',
          }
        }
        break
      case LC.DYLD_INFO:
      case LC.DYLD_INFO_ONLY:
        refs.dyldInfo = {
          bindOff: r.u32(off + 16),
          bindSize: r.u32(off + 20),
          weakOff: r.u32(off + 24),
          weakSize: r.u32(off + 28),
          lazyOff: r.u32(off + 32),
          lazySize: r.u32(off + 36),
          exportOff: r.u32(off + 40),
          exportSize: r.u32(off + 44),
        }
        break
      case LC.DYLD_EXPORTS_TRIE:
        refs.exportsTrie = { off: r.u32(off + 8), size: r.u32(off + 12) }
        break
      case LC.DYLD_CHAINED_FIXUPS:
        refs.chainedFixups = { off: r.u32(off + 8), size: r.u32(off + 12) }
        break
      case LC.CODE_SIGNATURE:
        refs.codeSignature = { off: r.u32(off + 8), size: r.u32(off + 12) }
        break
    }
    off += cmdsize
  }

  const ordinalLibrary = (ordinal: number): string => {
    // Two-level namespace ordinals (n_desc >> 8, and bind opcodes).
    if (ordinal === 0) return SELF_LIBRARY
    if (ordinal === 0xfe || ordinal === -2) return FLAT_LOOKUP
    if (ordinal === 0xff || ordinal === -1) return MAIN_EXECUTABLE
    if (ordinal === -3) return WEAK_LOOKUP
    return slice.dylibs[ordinal - 1]?.path ?? `<bad ordinal ${ordinal}>`
  }

  readSymtab(r, refs, slice, ordinalLibrary)

  const trie = refs.exportsTrie ?? (refs.dyldInfo !== null ? { off: refs.dyldInfo.exportOff, size: refs.dyldInfo.exportSize } : null)
  if (trie !== null && trie.size > 0) {
    r.check(trie.off, trie.size, 'export trie')
    slice.exports = readExportTrie(bytes.subarray(trie.off, trie.off + trie.size)).sort()
  }

  if (refs.chainedFixups !== null) {
    slice.imports = readChainedImports(r, refs.chainedFixups.off, refs.chainedFixups.size, ordinalLibrary)
    slice.importsFrom = 'chained-fixups'
  } else if (refs.dyldInfo !== null) {
    const all: MachOImport[] = []
    const { bindOff, bindSize, weakOff, weakSize, lazyOff, lazySize } = refs.dyldInfo
    for (const [o, s, kind] of [[bindOff, bindSize, 'bind'], [weakOff, weakSize, 'weak'], [lazyOff, lazySize, 'lazy']] as const) {
      if (s === 0) continue
      r.check(o, s, `${kind} opcodes`)
      all.push(...readBindOpcodes(bytes, o, o + s, kind, ordinalLibrary))
    }
    slice.imports = uniqueImports(all)
    slice.importsFrom = 'dyld-info'
  }

  if (refs.codeSignature !== null) {
    slice.codeSignature = readCodeSignature(r, refs.codeSignature.off, refs.codeSignature.size)
  }
  return slice
}

function readSymtab (r: Reader, refs: LinkeditRefs, slice: MachOSlice, ordinalLibrary: (o: number) => string): void {
  if (refs.nsyms === 0) return
  r.check(refs.symoff, refs.nsyms * 16, 'symbol table')
  r.check(refs.stroff, refs.strsize, 'string table')
  const exported: string[] = []
  const undef: MachOImport[] = []
  for (let i = 0; i < refs.nsyms; i++) {
    const at = refs.symoff + i * 16
    const strx = r.u32(at)
    const type = r.u8(at + 4)
    const desc = r.u16(at + 6)
    if ((type & 0xe0) !== 0) continue // N_STAB debugging entries
    const name = strx < refs.strsize ? r.cstring(refs.stroff + strx, refs.stroff + refs.strsize) : ''
    const ext = (type & 0x01) !== 0
    const pext = (type & 0x10) !== 0
    const kind = type & 0x0e
    if (!ext) {
      if (pext) slice.symtab.privateExternal++ // a private extern that the static linker made local
      else slice.symtab.locals++
      continue
    }
    if (kind === 0x0 /* N_UNDF */) {
      undef.push({ name, library: ordinalLibrary((desc >> 8) & 0xff), weak: (desc & 0x40) !== 0 /* N_WEAK_REF */ })
    } else if (pext) {
      slice.symtab.privateExternal++
    } else {
      exported.push(name)
    }
  }
  slice.symtab.exported = exported.sort()
  slice.symtab.undefined = undef.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

function readExportTrie (trie: Uint8Array): string[] {
  const out: string[] = []
  const seen = new Set<number>()
  const walk = (nodeOff: number, prefix: string, depth: number): void => {
    if (depth > 512 || seen.has(nodeOff)) throw new Error('Mach-O: export trie has a cycle')
    seen.add(nodeOff)
    const leb = new Leb(trie, nodeOff, trie.length)
    const terminalSize = leb.uleb()
    const childrenAt = leb.pos + terminalSize
    if (terminalSize > 0) out.push(prefix)
    leb.pos = childrenAt
    const count = leb.byte()
    for (let i = 0; i < count; i++) {
      const edge = leb.cstring()
      const child = leb.uleb()
      if (child >= trie.length) throw new Error('Mach-O: export trie edge out of range')
      walk(child, prefix + edge, depth + 1)
    }
  }
  walk(0, '', 0)
  return out
}

function readBindOpcodes (bytes: Uint8Array, start: number, end: number, kind: 'bind' | 'weak' | 'lazy', ordinalLibrary: (o: number) => string): MachOImport[] {
  const out: MachOImport[] = []
  const leb = new Leb(bytes, start, end)
  let ordinal = 0
  let name = ''
  let weak = false
  const bind = (): void => {
    // Weak-bind entries coalesce across images; they name no library.
    out.push({ name, library: kind === 'weak' ? WEAK_LOOKUP : ordinalLibrary(ordinal), weak })
  }
  while (!leb.done) {
    const b = leb.byte()
    const op = b & 0xf0
    const imm = b & 0x0f
    switch (op) {
      case 0x00: // DONE (lazy binds: end of one entry)
        if (kind !== 'lazy') return out
        break
      case 0x10: ordinal = imm; break
      case 0x20: ordinal = leb.uleb(); break
      case 0x30: ordinal = imm === 0 ? 0 : (imm | 0xf0) << 24 >> 24; break // sign-extended special
      case 0x40: weak = (imm & 0x1) !== 0; name = leb.cstring(); break
      case 0x50: break // SET_TYPE_IMM
      case 0x60: leb.sleb(); break // SET_ADDEND_SLEB
      case 0x70: leb.uleb(); break // SET_SEGMENT_AND_OFFSET_ULEB
      case 0x80: leb.uleb(); break // ADD_ADDR_ULEB
      case 0x90: bind(); break
      case 0xa0: bind(); leb.uleb(); break
      case 0xb0: bind(); break
      case 0xc0: leb.uleb(); leb.uleb(); bind(); break
      case 0xd0: // THREADED
        if (imm === 0x00) leb.uleb() // SET_BIND_ORDINAL_TABLE_SIZE_ULEB
        else if (imm === 0x01) bind() // APPLY
        break
      default:
        throw new Error(`Mach-O: unknown bind opcode 0x${b.toString(16)}`)
    }
  }
  return out
}

function readChainedImports (r: Reader, off: number, size: number, ordinalLibrary: (o: number) => string): MachOImport[] {
  r.check(off, size, 'chained fixups')
  const importsOffset = r.u32(off + 8)
  const symbolsOffset = r.u32(off + 12)
  const count = r.u32(off + 16)
  const format = r.u32(off + 20)
  const out: MachOImport[] = []
  const strings = off + symbolsOffset
  for (let i = 0; i < count; i++) {
    let ordinal: number
    let weak: boolean
    let nameOffset: number
    if (format === 1 || format === 2) { // DYLD_CHAINED_IMPORT(_ADDEND): u32 bitfield
      const at = off + importsOffset + i * (format === 1 ? 4 : 8)
      const v = r.u32(at)
      ordinal = (v & 0xff) << 24 >> 24 // signed 8-bit
      weak = ((v >>> 8) & 1) !== 0
      nameOffset = v >>> 9
    } else if (format === 3) { // DYLD_CHAINED_IMPORT_ADDEND64
      const at = off + importsOffset + i * 16
      const lo = r.u32(at)
      const hi = r.u32(at + 4)
      ordinal = (lo & 0xffff) << 16 >> 16 // signed 16-bit
      weak = ((lo >>> 16) & 1) !== 0
      nameOffset = hi
    } else {
      throw new Error(`Mach-O: unknown chained import format ${format}`)
    }
    // The specials are stored as signed values: -1 main executable, -2 flat, -3 weak.
    out.push({ name: r.cstring(strings + nameOffset, off + size), library: ordinalLibrary(ordinal), weak })
  }
  return uniqueImports(out)
}

function uniqueImports (list: MachOImport[]): MachOImport[] {
  const byKey = new Map<string, MachOImport>()
  for (const i of list) {
    const key = `${i.name}\0${i.library}`
    const prev = byKey.get(key)
    // Weak only if every reference is weak.
    byKey.set(key, prev === undefined ? i : { ...prev, weak: prev.weak && i.weak })
  }
  return [...byKey.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.library < b.library ? -1 : 1)
}

const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0
const CSMAGIC_CODEDIRECTORY = 0xfade0c02
const BLOB_NAMES: Record<number, string> = {
  0xfade0c02: 'CodeDirectory',
  0xfade0c01: 'Requirements',
  0xfade0c00: 'Requirement',
  0xfade7171: 'Entitlements',
  0xfade7172: 'EntitlementsDER',
  0xfade0b01: 'CMS',
  0xfade0c05: 'LaunchConstraint',
}
const HASH_TYPES: Record<number, [string, string, number]> = {
  // hashType: [name, node:crypto algorithm, stored length]
  1: ['sha1', 'sha1', 20],
  2: ['sha256', 'sha256', 32],
  3: ['sha256-truncated', 'sha256', 20],
  4: ['sha384', 'sha384', 48],
}

function readCodeSignature (r: Reader, off: number, size: number): CodeSignatureInfo {
  r.check(off, size, 'code signature')
  const info: CodeSignatureInfo = { dataoff: off, datasize: size, blobs: [], codeDirectory: null, cmsSigned: false, coversFile: false }
  if (r.u32be(off) !== CSMAGIC_EMBEDDED_SIGNATURE) return info
  const count = r.u32be(off + 8)
  for (let i = 0; i < count; i++) {
    const slot = r.u32be(off + 12 + i * 8)
    const blobOff = off + r.u32be(off + 16 + i * 8)
    const magic = r.u32be(blobOff)
    const length = r.u32be(blobOff + 4)
    info.blobs.push(BLOB_NAMES[magic] ?? `0x${magic.toString(16)}`)
    if (magic === 0xfade0b01 && length > 8) info.cmsSigned = true
    if (magic === CSMAGIC_CODEDIRECTORY && slot === 0) info.codeDirectory = readCodeDirectory(r, blobOff)
  }
  info.coversFile = info.codeDirectory !== null && info.codeDirectory.codeLimit === off
  return info
}

function readCodeDirectory (r: Reader, at: number): CodeDirectoryInfo {
  const version = r.u32be(at + 8)
  const flags = r.u32be(at + 12)
  const hashOffset = r.u32be(at + 16)
  const identOffset = r.u32be(at + 20)
  const nSpecialSlots = r.u32be(at + 24)
  const nCodeSlots = r.u32be(at + 28)
  let codeLimit = r.u32be(at + 32)
  const hashSize = r.u8(at + 36)
  const hashTypeNum = r.u8(at + 37)
  const pageShift = r.u8(at + 39)
  let teamId: string | null = null
  if (version >= 0x20200) {
    const teamOffset = r.u32be(at + 48)
    if (teamOffset !== 0) teamId = r.cstring(at + teamOffset)
  }
  if (version >= 0x20300) {
    const codeLimit64 = r.u64be(at + 56)
    if (codeLimit64 !== 0) codeLimit = codeLimit64
  }
  const [hashName, algorithm, length] = HASH_TYPES[hashTypeNum] ?? [`type(${hashTypeNum})`, '', hashSize]
  const pageSize = pageShift === 0 ? codeLimit : 2 ** pageShift
  const badPages: number[] = []
  if (algorithm === '' || length !== hashSize) {
    badPages.push(-1)
  } else {
    r.check(at + hashOffset, nCodeSlots * hashSize, 'code slots')
    for (let i = 0; i < nCodeSlots; i++) {
      const start = i * pageSize
      const end = Math.min(codeLimit, start + pageSize)
      r.check(start, end - start, `code page ${i}`)
      const digest = createHash(algorithm).update(r.bytes.subarray(start, end)).digest().subarray(0, hashSize)
      const stored = r.bytes.subarray(at + hashOffset + i * hashSize, at + hashOffset + (i + 1) * hashSize)
      if (!digest.equals(stored)) badPages.push(i)
    }
    if (nCodeSlots !== Math.ceil(codeLimit / pageSize)) badPages.push(-2)
  }
  return {
    version,
    flags,
    adhoc: (flags & 0x2) !== 0,
    linkerSigned: (flags & 0x20000) !== 0,
    identifier: r.cstring(at + identOffset),
    teamId,
    hashType: hashName,
    hashSize,
    pageSize,
    codeLimit,
    nCodeSlots,
    nSpecialSlots,
    pagesMatch: badPages.length === 0,
    badPages,
  }
}

// ---------------------------------------------------------------------------
// The static checks for a darwin prebuild of this addon.

export interface DarwinAddonExpectations {
  /** Node's process.arch naming. */
  arch: 'arm64' | 'x64'
  /** The newest minimum macOS the binary may require ("11.0"). */
  maxMinos: string
  /** Dylibs it may link (default: libSystem and libc++). */
  allowedDylibs?: string[]
  /** Symbols that must be exported (default: _napi_register_module_v1). */
  requiredExports?: string[]
}

export const DEFAULT_DARWIN_DYLIBS = ['/usr/lib/libSystem.B.dylib', '/usr/lib/libc++.1.dylib']

/**
 * The symbols a text-based stub (.tbd, TAPI v4, as zig carries for
 * libSystem) exports for one target (`arm64-macos`, `x86_64-macos`): every
 * document's `exports` and `reexports` (libSystem's umbrella re-exports
 * libsystem_c, libsystem_kernel and the rest), symbols, weak and
 * thread-local symbols. The linker's `$ld$` directives are not symbols.
 */
export function tbdExports (text: string, target: string): Set<string> {
  const out = new Set<string>()
  let section = ''
  let targets: string[] = []
  let key = ''
  let list = ''
  const flush = (): void => {
    if (list === '') return
    const items = list.replace(/^\[|\]$/g, '').split(',').map((t) => t.trim().replace(/^'|'$/g, '')).filter(Boolean)
    if (key === 'targets') targets = items
    else if ((section === 'exports' || section === 'reexports') && targets.includes(target) &&
      (key === 'symbols' || key === 'weak-symbols' || key === 'thread-local-symbols')) {
      for (const i of items) if (!i.startsWith('$ld$')) out.add(i)
    }
    list = ''
  }
  for (const line of text.split('\n')) {
    if (list !== '') {
      list += line.trim()
      if (line.includes(']')) flush()
      continue
    }
    const top = /^([a-z-]+):/.exec(line)
    if (top !== null) { section = top[1]!; targets = []; continue }
    const m = /^\s*(?:- )?([a-z-]+):\s*(\[.*)$/.exec(line)
    if (m === null) continue
    key = m[1]!
    list = m[2]!.trim()
    if (list.includes(']')) flush()
  }
  return out
}

/**
 * Imports of a slice that the given dylib exports do not resolve: anything
 * left to flat (dynamic) lookup except what `flatAllowed` accepts, and any
 * import bound to a dylib whose exports are known but lack it. A dylib not
 * in `exportsByDylib` is reported as unknown.
 */
export function unresolvedImports (slice: MachOSlice, exportsByDylib: Map<string, Set<string>>, flatAllowed: (name: string) => boolean): string[] {
  const problems = new Set<string>()
  for (const i of [...slice.imports, ...slice.symtab.undefined]) {
    if (i.library === FLAT_LOOKUP) {
      if (!flatAllowed(i.name)) problems.add(`${i.name} is left to dynamic lookup (undefined at link time)`)
    } else if (i.library === SELF_LIBRARY || i.library === MAIN_EXECUTABLE || i.library === WEAK_LOOKUP) {
      continue
    } else {
      const exports = exportsByDylib.get(i.library)
      if (exports === undefined) problems.add(`${i.name} binds to ${i.library}, whose exports are unknown here`)
      else if (!exports.has(i.name)) problems.add(`${i.name} is not exported by ${i.library} (macOS 11 SDK stub)`)
    }
  }
  return [...problems].sort()
}

/**
 * Symbols the node executable provides that an addon may leave to dynamic
 * lookup: Node-API only (napi_*, node_api_*). libuv's are exported by node
 * too, but are not a stable ABI for addons. Mach-O names.
 */
export function isNodeSymbol (name: string): boolean {
  return /^_(napi|node_api)_/.test(name)
}

/**
 * Everything wrong with a darwin addon slice, as sentences; [] when it is
 * fine: CPU, file type, platform and minimum macOS, required exports,
 * linked dylibs, every import bound to an allowed dylib (node's own
 * Node-API to flat lookup, which is what -undefined dynamic_lookup
 * produces; any other flat import is a symbol no library provides, which
 * fails at load or at first call), both in what dyld
 * binds and in the symtab's two-level ordinals, and on arm64 a valid
 * ad-hoc code signature covering the file.
 */
export function darwinAddonProblems (slice: MachOSlice, expect: DarwinAddonExpectations): string[] {
  const problems: string[] = []
  const cpu = expect.arch === 'x64' ? 'x86_64' : 'arm64'
  const allowed = expect.allowedDylibs ?? DEFAULT_DARWIN_DYLIBS
  if (slice.cpu !== cpu) problems.push(`CPU is ${slice.cpu}, expected ${cpu}`)
  if (slice.filetype !== 'bundle' && slice.filetype !== 'dylib') problems.push(`file type is ${slice.filetype}, expected bundle or dylib`)
  if (slice.platform === null) {
    problems.push('no LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX')
  } else {
    if (slice.platform.platform !== 'macos') problems.push(`platform is ${slice.platform.platform}, expected macos`)
    if (compareVersions(slice.platform.minos, expect.maxMinos) > 0) problems.push(`needs macOS ${slice.platform.minos}, must run on ${expect.maxMinos}`)
  }
  for (const name of expect.requiredExports ?? ['_napi_register_module_v1']) {
    if (!slice.exports.includes(name)) problems.push(`${name} is not in the export trie`)
  }
  for (const d of slice.dylibs) {
    if (!allowed.includes(d.path)) problems.push(`links ${d.path} (${d.kind}); allowed: ${allowed.join(', ')}`)
  }
  const checkImport = (i: MachOImport, where: string): void => {
    if (isNodeSymbol(i.name)) {
      if (i.library !== FLAT_LOOKUP) problems.push(`${where}: ${i.name} binds to ${i.library}, expected dynamic lookup (from node)`)
    } else if (i.library === FLAT_LOOKUP) {
      problems.push(`${where}: ${i.name} is left to dynamic lookup but node does not provide it (undefined at link time?)`)
    } else if (i.library !== WEAK_LOOKUP && i.library !== SELF_LIBRARY && !allowed.includes(i.library)) {
      problems.push(`${where}: ${i.name} binds to ${i.library}`)
    }
  }
  for (const i of slice.imports) checkImport(i, 'import')
  for (const i of slice.symtab.undefined) checkImport(i, 'symtab')
  if (slice.importsFrom === 'none' && slice.symtab.undefined.length > 0) problems.push('undefined symbols but no dyld bind information')
  if (slice.idDylib !== null && slice.idDylib.startsWith('/')) problems.push(`LC_ID_DYLIB is a build path (${slice.idDylib}); not reproducible`)
  if (expect.arch === 'arm64') {
    const cs = slice.codeSignature
    const cd = cs?.codeDirectory ?? null
    if (cs === null) problems.push('no LC_CODE_SIGNATURE: Apple Silicon refuses to run unsigned code')
    else if (cd === null) problems.push('LC_CODE_SIGNATURE without a CodeDirectory')
    else {
      if (!cd.pagesMatch) problems.push(`code signature page hashes do not match the file (pages ${cd.badPages.join(', ')})`)
      if (!cs.coversFile) problems.push(`code signature covers ${cd.codeLimit} bytes, the signature starts at ${cs.dataoff}`)
      if (!cd.adhoc && !cs.cmsSigned) problems.push('code signature is neither ad-hoc nor CMS-signed')
    }
  }
  return problems
}
