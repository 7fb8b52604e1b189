#!/usr/bin/env node
// Static checks of the prebuilds, for every platform, from any machine:
//
//   node scripts/check-prebuilds.mjs [--json] [prebuilds/<platform>-<arch>/<file>.node ...]
//
// With no files, every .node under prebuilds/. What is expected follows
// from the path (platform, arch) and the libc tag in the file name; the
// checks are scripts/lib/elf.ts's linuxAddonProblems and macho.ts's
// darwinAddonProblems (loaded through tsx, a devDependency), plus the
// source hash: BLX_SOURCE_HASH is a string in the binary, so a stale
// prebuild of any platform is caught without loading it. Exit 1 on any
// problem.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const require = createRequire(path.join(root, 'package.json'))

const { register } = await import('tsx/esm/api')
register()
const elf = await import(pathToFileURL(path.join(root, 'scripts', 'lib', 'elf.ts')).href)
const macho = await import(pathToFileURL(path.join(root, 'scripts', 'lib', 'macho.ts')).href)
const { sourceHash } = require(path.join(root, 'scripts', 'source-hash.cjs'))

// What libSystem exports on macOS 11, per target, from the stub zig links
// against (scripts/prebuild-all.mjs caches zig): a darwin prebuild may leave
// only Node-API to dynamic lookup, and everything else must resolve there.
let libSystem = null
export async function libSystemExports (arch) {
  if (libSystem === null) {
    const { ensureNpmPackage, TOOLS } = await import('./prebuild-all.mjs')
    const tbd = path.join(ensureNpmPackage(TOOLS.zig), 'lib', 'libc', 'darwin', 'libSystem.11.tbd')
    libSystem = { text: fs.readFileSync(tbd, 'utf8') }
  }
  const target = arch === 'x64' ? 'x86_64-macos' : 'arm64-macos'
  libSystem[target] ??= new Map([['/usr/lib/libSystem.B.dylib', macho.tbdExports(libSystem.text, target)]])
  return libSystem[target]
}

const MIN_MACOS = '11.0'
const MAX_GLIBC = '2.28'

function allPrebuilds () {
  const dir = path.join(root, 'prebuilds')
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).flatMap((tuple) => {
    const d = path.join(dir, tuple)
    return fs.statSync(d).isDirectory() ? fs.readdirSync(d).filter((f) => f.endsWith('.node')).map((f) => path.join(d, f)) : []
  }).sort()
}

/** Expectations from prebuilds/<platform>-<arch>/<name>[.tags].node */
function expectationsFor (file) {
  const [platform, arch] = path.basename(path.dirname(file)).split('-')
  const tags = path.basename(file).split('.').slice(1, -1)
  const libc = tags.includes('musl') ? 'musl' : 'glibc'
  if ((platform !== 'linux' && platform !== 'darwin') || (arch !== 'x64' && arch !== 'arm64')) {
    throw new Error(`${file}: not under prebuilds/{linux,darwin}-{x64,arm64}/`)
  }
  return { platform, arch, libc }
}

/** One file: facts worth printing and the problems found. */
async function checkFile (file, hash = sourceHash()) {
  const buf = fs.readFileSync(file)
  const e = expectationsFor(file)
  const problems = []
  if (!buf.includes(Buffer.from(hash))) problems.push(`stale: built from other sources (BLX_SOURCE_HASH ${hash} not found)`)
  let facts
  if (e.platform === 'linux') {
    const info = elf.readElf(buf)
    problems.push(...elf.linuxAddonProblems(info, { arch: e.arch, libc: e.libc, maxGlibc: MAX_GLIBC }))
    facts = {
      kind: `ELF ${info.machine} ${e.libc}`,
      needs: info.needed.join(' '),
      versions: e.libc === 'musl'
        ? 'unversioned'
        : ['GLIBC', 'GLIBCXX', 'CXXABI'].map((p) => [p, elf.maxVersion(info, p)]).filter(([, v]) => v !== null).map(([p, v]) => `${p}_${v}`).join(' '),
      exports: info.exports.join(' '),
    }
  } else {
    const m = macho.readMachO(buf)
    const slices = m.slices
    const cpu = e.arch === 'x64' ? 'x86_64' : 'arm64'
    const slice = slices.find((s) => s.cpu === cpu)
    if (slice === undefined) {
      problems.push(`no ${cpu} slice (has ${slices.map((s) => s.cpu).join(', ')})`)
      facts = { kind: 'Mach-O', needs: '', versions: '', exports: '' }
    } else {
      problems.push(...macho.darwinAddonProblems(slice, { arch: e.arch, maxMinos: MIN_MACOS }))
      // (Imports left to dynamic lookup are judged by darwinAddonProblems.)
      problems.push(...macho.unresolvedImports(slice, await libSystemExports(e.arch), () => true))
      const cd = slice.codeSignature?.codeDirectory ?? null
      const libs = new Map()
      for (const i of slice.imports) libs.set(i.library, (libs.get(i.library) ?? 0) + 1)
      facts = {
        kind: `Mach-O ${m.fat ? 'fat ' : ''}${slice.cpu} ${slice.filetype}`,
        needs: slice.dylibs.map((d) => d.path).join(' '),
        versions: `macOS >= ${slice.platform?.minos ?? '?'} (sdk ${slice.platform?.sdk ?? '?'}); ` +
          (cd === null ? 'unsigned' : `signed ${cd.adhoc ? 'ad-hoc' : 'cms'}${cd.linkerSigned ? ' linker' : ''} ${cd.hashType} ${cd.pagesMatch ? 'valid' : 'INVALID'}`),
        exports: `${slice.exports.includes('_napi_register_module_v1') ? '_napi_register_module_v1' : '-'} (${slice.exports.length} in trie)`,
        imports: [...libs].map(([lib, n]) => `${n} ${lib}`).join(', '),
      }
    }
  }
  return { file: path.relative(root, file), size: buf.length, ...facts, problems }
}

async function main () {
  const args = process.argv.slice(2)
  const json = args.includes('--json')
  const files = args.filter((a) => a !== '--json').map((f) => path.resolve(root, f))
  const list = files.length > 0 ? files : allPrebuilds()
  if (list.length === 0) {
    console.error('no prebuilds to check')
    process.exit(1)
  }
  const hash = sourceHash()
  const results = []
  for (const f of list) {
    try {
      results.push(await checkFile(f, hash))
    } catch (err) {
      results.push({ file: path.relative(root, f), problems: [`unreadable: ${err.message}`] })
    }
  }
  if (json) {
    console.log(JSON.stringify(results, null, 2))
  } else {
    for (const r of results) {
      console.log(`${r.problems.length === 0 ? 'ok  ' : 'FAIL'} ${r.file} (${r.size ?? '?'} bytes) ${r.kind ?? ''}`)
      if (r.needs !== undefined) console.log(`       needs: ${r.needs || '-'}; ${r.versions}`)
      if (r.exports !== undefined) console.log(`       exports: ${r.exports}`)
      if (r.imports !== undefined) console.log(`       imports: ${r.imports}`)
      for (const p of r.problems) console.log(`       problem: ${p}`)
    }
  }
  process.exit(results.some((r) => r.problems.length > 0) ? 1 : 0)
}

await main()
