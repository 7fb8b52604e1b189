// A small ELF reader for checking the Linux prebuilds without objdump: the
// machine, DT_NEEDED, the dynamic symbols (exports, imports and the symbol
// version each import needs: GLIBC_2.28, GLIBCXX_3.4.25, …). 64-bit
// little-endian files with section headers (stripped ones keep them).
// Layouts: <elf.h>.

const SHT_DYNAMIC = 6
const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff
const PT_INTERP = 3
const DT_NEEDED = 1
const DT_SONAME = 14
const DT_RPATH = 15
const DT_RUNPATH = 29

const MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64', 40: 'arm', 3: 'i386', 243: 'riscv64' }
const TYPES: Record<number, string> = { 1: 'rel', 2: 'exec', 3: 'dyn', 4: 'core' }

export interface ElfSymbol {
  name: string
  /** The version it binds to ("GLIBC_2.17"), null when unversioned. */
  version: string | null
  weak: boolean
}

export interface ElfInfo {
  machine: string
  type: string
  interpreter: string | null
  soname: string | null
  needed: string[]
  runpath: string[]
  /** Defined dynamic symbols with default or protected visibility, sorted. */
  exports: string[]
  /** Undefined dynamic symbols, sorted by name. */
  imports: ElfSymbol[]
  /** DT_VERNEED: the versions needed from each library. */
  versionNeeds: Array<{ file: string, versions: string[] }>
}

const decoder = new TextDecoder('utf-8')

/** Parse a 64-bit little-endian ELF file. Throws on anything else. */
export function readElf (buf: Uint8Array): ElfInfo {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const check = (off: number, len: number, what: string): void => {
    if (off < 0 || len < 0 || off + len > buf.length) throw new Error(`ELF: ${what} at ${off}+${len} is outside the file (${buf.length} bytes)`)
  }
  const u8 = (o: number): number => { check(o, 1, 'u8'); return view.getUint8(o) }
  const u16 = (o: number): number => { check(o, 2, 'u16'); return view.getUint16(o, true) }
  const u32 = (o: number): number => { check(o, 4, 'u32'); return view.getUint32(o, true) }
  const u64 = (o: number): number => {
    check(o, 8, 'u64')
    const v = view.getBigUint64(o, true)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`ELF: value at ${o} too large`)
    return Number(v)
  }
  const cstr = (o: number, end: number): string => {
    check(o, 0, 'string')
    let i = o
    while (i < end && buf[i] !== 0) i++
    return decoder.decode(buf.subarray(o, i))
  }

  if (buf.length < 64 || u32(0) !== 0x464c457f) throw new Error('ELF: bad magic')
  if (u8(4) !== 2) throw new Error('ELF: only 64-bit files are supported')
  if (u8(5) !== 1) throw new Error('ELF: only little-endian files are supported')
  const type = u16(16)
  const machine = u16(18)
  const phoff = u64(32)
  const shoff = u64(40)
  const phentsize = u16(54)
  const phnum = u16(56)
  const shentsize = u16(58)
  const shnum = u16(60)
  if (shoff === 0 || shnum === 0) throw new Error('ELF: no section headers')

  let interpreter: string | null = null
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize
    if (u32(at) === PT_INTERP) {
      const off = u64(at + 8)
      interpreter = cstr(off, off + u64(at + 32))
    }
  }

  interface Section { type: number, offset: number, size: number, link: number, info: number, entsize: number }
  const sections: Section[] = []
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize
    sections.push({ type: u32(at + 4), offset: u64(at + 24), size: u64(at + 32), link: u32(at + 40), info: u32(at + 44), entsize: u64(at + 56) })
  }
  const strtab = (index: number): (off: number) => string => {
    const s = sections[index]
    if (s === undefined) throw new Error(`ELF: no string table ${index}`)
    check(s.offset, s.size, 'string table')
    return (off: number) => cstr(s.offset + off, s.offset + s.size)
  }

  const info: ElfInfo = {
    machine: MACHINES[machine] ?? `machine(${machine})`,
    type: TYPES[type] ?? `type(${type})`,
    interpreter,
    soname: null,
    needed: [],
    runpath: [],
    exports: [],
    imports: [],
    versionNeeds: [],
  }

  const dynamic = sections.find((s) => s.type === SHT_DYNAMIC)
  if (dynamic !== undefined) {
    const str = strtab(dynamic.link)
    for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.size; at += 16) {
      const tag = u64(at)
      const val = u64(at + 8)
      if (tag === 0) break
      if (tag === DT_NEEDED) info.needed.push(str(val))
      else if (tag === DT_SONAME) info.soname = str(val)
      else if (tag === DT_RUNPATH || tag === DT_RPATH) info.runpath.push(...str(val).split(':'))
    }
  }

  // Version index -> name, from DT_VERNEED (index 0 local, 1 global/unversioned).
  const versionNames = new Map<number, string>()
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (verneed !== undefined) {
    const str = strtab(verneed.link)
    let at = verneed.offset
    for (let n = 0; n < verneed.info; n++) {
      const cnt = u16(at + 2)
      const file = str(u32(at + 4))
      const versions: string[] = []
      let aux = at + u32(at + 8)
      for (let k = 0; k < cnt; k++) {
        const name = str(u32(aux + 8))
        versionNames.set(u16(aux + 6) & 0x7fff, name)
        versions.push(name)
        aux += u32(aux + 12)
      }
      info.versionNeeds.push({ file, versions })
      const next = u32(at + 12)
      if (next === 0) break
      at += next
    }
  }

  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  if (dynsym !== undefined) {
    const str = strtab(dynsym.link)
    const count = Math.floor(dynsym.size / (dynsym.entsize || 24))
    for (let i = 1; i < count; i++) {
      const at = dynsym.offset + i * 24
      const name = str(u32(at))
      const infoByte = u8(at + 4)
      const bind = infoByte >> 4
      const visibility = u8(at + 5) & 0x3
      const shndx = u16(at + 6)
      const vidx = versym !== undefined ? u16(versym.offset + i * 2) & 0x7fff : 1
      if (shndx === 0) {
        info.imports.push({ name, version: versionNames.get(vidx) ?? null, weak: bind === 2 })
      } else if ((bind === 1 || bind === 2 || bind === 10) && (visibility === 0 || visibility === 3)) {
        info.exports.push(name)
      }
    }
  }
  info.exports.sort()
  info.imports.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return info
}

/** Compare dotted versions numerically. */
export function compareVersions (a: string, b: string): number {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The newest version with this prefix that the file needs: maxVersion(info, 'GLIBC') -> "2.28". */
export function maxVersion (info: ElfInfo, prefix: string): string | null {
  let max: string | null = null
  for (const need of info.versionNeeds) {
    for (const v of need.versions) {
      if (!v.startsWith(prefix + '_')) continue
      const ver = v.slice(prefix.length + 1)
      if (!/^[0-9.]+$/.test(ver)) continue
      if (max === null || compareVersions(ver, max) > 0) max = ver
    }
  }
  return max
}

export interface LinuxAddonExpectations {
  /** Node's process.arch naming. */
  arch: 'x64' | 'arm64'
  libc: 'glibc' | 'musl'
  /** Newest glibc symbol version allowed (glibc only), default "2.28". */
  maxGlibc?: string
  /** Newest GLIBCXX_ allowed when libstdc++ is linked, default "3.4.25" (GCC 8). */
  maxGlibcxx?: string
  /** Libraries it may need; default: glibc's own, or musl's libc.so. */
  allowedNeeded?: string[]
  /** Exports beyond napi_register_module_v1 / node_api_module_get_api_version_v1 are a problem (default true). */
  onlyNodeApiExports?: boolean
}

const GLIBC_LIBS = ['libc.so.6', 'libpthread.so.0', 'libdl.so.2', 'libm.so.6', 'librt.so.1']
// musl's loader maps all of these to itself; Alpine has no separate files.
const MUSL_LIBS = ['libc.so', 'libc.musl-x86_64.so.1', 'libc.musl-aarch64.so.1']

/** Symbols node provides: Node-API and libuv. */
export function isNodeSymbol (name: string): boolean {
  return /^(napi|node_api|uv)_/.test(name)
}

/** Everything wrong with a Linux addon, as sentences; [] when it is fine. */
export function linuxAddonProblems (info: ElfInfo, expect: LinuxAddonExpectations): string[] {
  const problems: string[] = []
  const machine = expect.arch === 'x64' ? 'x86_64' : 'aarch64'
  if (info.machine !== machine) problems.push(`machine is ${info.machine}, expected ${machine}`)
  if (info.type !== 'dyn') problems.push(`ELF type is ${info.type}, expected a shared object`)
  if (info.interpreter !== null) problems.push(`has an interpreter (${info.interpreter}); an addon is a plain shared object`)
  if (!info.exports.includes('napi_register_module_v1')) problems.push('napi_register_module_v1 is not exported')
  if (expect.onlyNodeApiExports ?? true) {
    const extra = info.exports.filter((e) => e !== 'napi_register_module_v1' && e !== 'node_api_module_get_api_version_v1')
    if (extra.length > 0) problems.push(`exports more than the module entry points: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ` (+${extra.length - 8})` : ''}`)
  }
  const allowed = expect.allowedNeeded ?? (expect.libc === 'musl' ? MUSL_LIBS : GLIBC_LIBS)
  for (const n of info.needed) {
    if (!allowed.includes(n)) problems.push(`needs ${n}; allowed: ${allowed.join(', ')}`)
  }
  if (info.runpath.length > 0) problems.push(`has a RUNPATH/RPATH (${info.runpath.join(':')})`)
  if (expect.libc === 'musl') {
    // musl has no symbol versioning: any versioned import comes from glibc.
    const versioned = info.imports.filter((i) => i.version !== null)
    if (versioned.length > 0) problems.push(`versioned imports (glibc): ${versioned.slice(0, 5).map((i) => `${i.name}@${i.version}`).join(', ')}`)
    if (info.versionNeeds.length > 0) problems.push(`needs symbol versions from ${info.versionNeeds.map((n) => n.file).join(', ')}`)
  } else {
    const glibc = maxVersion(info, 'GLIBC')
    const maxGlibc = expect.maxGlibc ?? '2.28'
    if (glibc === null) problems.push('needs no GLIBC_ version at all: not linked against glibc?')
    else if (compareVersions(glibc, maxGlibc) > 0) {
      const newer = info.imports.filter((i) => i.version?.startsWith('GLIBC_') === true && compareVersions(i.version.slice(6), maxGlibc) > 0)
      problems.push(`needs GLIBC_${glibc} (> ${maxGlibc}): ${newer.map((i) => `${i.name}@${i.version}`).join(', ')}`)
    }
    const glibcxx = maxVersion(info, 'GLIBCXX')
    const maxGlibcxx = expect.maxGlibcxx ?? '3.4.25'
    if (glibcxx !== null && compareVersions(glibcxx, maxGlibcxx) > 0) problems.push(`needs GLIBCXX_${glibcxx} (> ${maxGlibcxx})`)
  }
  // Unversioned imports that are neither node's nor libc's would fail at dlopen
  // (RTLD_NOW) or first call; with glibc every libc import carries a version.
  if (expect.libc === 'glibc') {
    const stray = info.imports.filter((i) => i.version === null && !i.weak && !isNodeSymbol(i.name))
    if (stray.length > 0) problems.push(`unversioned imports that node does not provide: ${stray.slice(0, 8).map((i) => i.name).join(', ')}`)
  }
  return problems
}
