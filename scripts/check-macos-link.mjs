#!/usr/bin/env node
// The link proof for macOS, from Linux: the Node-free core and its unit
// tests (native/test/core_test.cc with native/sources.json's common and
// darwin sources) linked as Mach-O executables for arm64 and x86_64,
// minimum macOS 11, by zig 0.11 (the toolchain scripts/prebuild-all.mjs
// caches) against its libSystem.11.tbd stub, WITHOUT -undefined
// dynamic_lookup, so every symbol the core needs must exist in macOS 11's
// libSystem or the link fails. Each executable is then read back
// (scripts/lib/macho.ts): Mach-O executable for its CPU, macOS >= 11,
// linking only libSystem, and every import exported by the stub for that
// target. Nothing here runs them: there is no macOS on this machine.
//
//   node scripts/check-macos-link.mjs [--only arm64|x64] [--json]
//
// It also reports whether identical literals of two files stay apart in
// zig's Mach-O link (native/test/literal_probe: two copies of the literal
// in the binary), the property that made reasons compared by address take
// wrong branches on macOS. Exit 1 on any problem.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { cacheDir, ensureNpmPackage, root, TOOLS } from './prebuild-all.mjs'

const { register } = await import('tsx/esm/api')
register()
const macho = await import(pathToFileURL(path.join(root, 'scripts', 'lib', 'macho.ts')).href)
const { compareVersions } = await import(pathToFileURL(path.join(root, 'scripts', 'lib', 'elf.ts')).href)

const MIN_MACOS = '11.0'
const LIBSYSTEM = '/usr/lib/libSystem.B.dylib'
const ARCHES = [
  { arch: 'arm64', cpu: 'arm64', zig: 'aarch64-macos.11.0', tbd: 'arm64-macos' },
  { arch: 'x64', cpu: 'x86_64', zig: 'x86_64-macos.11.0', tbd: 'x86_64-macos' },
]
const PROBE_LITERAL = 'boxlite-layout literal probe'

function coreSources () {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'))
  return ['native/test/core_test.cc', ...manifest.common, ...manifest.darwin]
}

function zigLink (zig, env, target, sources, out) {
  // The flags CMakeLists.txt gives the core and core_test, for macOS.
  const args = ['c++', '-target', target, '-std=c++17', '-O2', '-Wall', '-Wextra', '-I', 'native/core',
    `-ffile-prefix-map=${root}/=`, ...sources, '-o', out]
  const started = Date.now()
  const r = spawnSync(zig, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  if (r.error) throw r.error
  return { status: r.status, diagnostics: (r.stderr || '').trim(), seconds: (Date.now() - started) / 1000 }
}

function count (buf, text) {
  const needle = Buffer.from(`${text}\0`)
  let n = 0
  for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + 1)) n++
  return n
}

function checkExecutable (file, a, exports) {
  const m = macho.readMachO(fs.readFileSync(file))
  const slice = m.slices.find((s) => s.cpu === a.cpu)
  if (slice === undefined) return { problems: [`no ${a.cpu} slice`] }
  const problems = []
  if (slice.filetype !== 'execute') problems.push(`file type is ${slice.filetype}, expected execute`)
  if (slice.platform === null || slice.platform.platform !== 'macos') problems.push('not a macOS binary')
  else if (compareVersions(slice.platform.minos, MIN_MACOS) > 0) problems.push(`needs macOS ${slice.platform.minos}`)
  for (const d of slice.dylibs) if (d.path !== LIBSYSTEM) problems.push(`links ${d.path}`)
  problems.push(...macho.unresolvedImports(slice, new Map([[LIBSYSTEM, exports]]), () => false))
  return { imports: slice.imports.length, minos: slice.platform?.minos, problems }
}

async function main () {
  const argv = process.argv.slice(2)
  const json = argv.includes('--json')
  const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : null
  const started = Date.now()
  const zigDir = ensureNpmPackage(TOOLS.zig)
  const zig = path.join(zigDir, TOOLS.zig.bin)
  const zigCache = path.join(cacheDir(), 'zig-cache')
  const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: zigCache, ZIG_LOCAL_CACHE_DIR: zigCache }
  const tbd = fs.readFileSync(path.join(zigDir, 'lib', 'libc', 'darwin', 'libSystem.11.tbd'), 'utf8')
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'blx-macos-link-'))
  const results = []
  try {
    for (const a of ARCHES.filter((x) => only === null || x.arch === only)) {
      const exports = macho.tbdExports(tbd, a.tbd)
      const out = path.join(work, `core_test-${a.arch}`)
      const link = zigLink(zig, env, a.zig, coreSources(), out)
      const row = { target: `core_test ${a.zig}`, seconds: link.seconds, problems: [] }
      if (link.status !== 0) row.problems.push(`zig c++ failed:\n${link.diagnostics}`)
      else Object.assign(row, checkExecutable(out, a, exports))
      results.push(row)

      const probe = path.join(work, `literal_probe-${a.arch}`)
      const p = zigLink(zig, env, a.zig, ['native/test/literal_probe/main.cc', 'native/test/literal_probe/literal_a.cc', 'native/test/literal_probe/literal_b.cc'], probe)
      const prow = { target: `literal_probe ${a.zig}`, seconds: p.seconds, problems: [] }
      if (p.status !== 0) prow.problems.push(`zig c++ failed:\n${p.diagnostics}`)
      else {
        Object.assign(prow, checkExecutable(probe, a, exports))
        prow.literalCopies = count(fs.readFileSync(probe), PROBE_LITERAL)
      }
      results.push(prow)
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
  if (json) console.log(JSON.stringify(results, null, 2))
  else {
    for (const r of results) {
      console.log(`${r.problems.length === 0 ? 'ok  ' : 'FAIL'} ${r.target}: ${r.seconds.toFixed(1)} s` +
        (r.imports !== undefined ? `, macOS >= ${r.minos}, ${r.imports} imports, all in libSystem.11.tbd` : '') +
        (r.literalCopies !== undefined ? `; identical literals of two files: ${r.literalCopies} copies (${r.literalCopies > 1 ? 'kept apart' : 'merged'})` : ''))
      for (const p of r.problems) console.log(`       problem: ${p}`)
    }
    console.log(`macOS link proof: ${results.filter((r) => r.problems.length === 0).length} passed, ${results.filter((r) => r.problems.length > 0).length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  }
  process.exit(results.some((r) => r.problems.length > 0) ? 1 : 0)
}

await main()
