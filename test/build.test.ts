// The native build as a user gets it: the loaded addon (the prebuild on a
// fresh install, build/ after `npm run build`) is built from the sources on
// disk and loads on glibc 2.28; the prebuild for this platform loads and
// works with build/ ignored; without any addon the loader says what to run.
// (Every prebuild is checked statically in prebuilds.test.ts.)
import test from 'ava'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { binding } from '../lib/native.ts'
import { readElf, maxVersion, compareVersions } from '../scripts/lib/elf.ts'
import { needs, testWith } from './helpers/env.ts'
import { repoRoot, run, testTmp } from './helpers/fixtures.ts'

const require = createRequire(import.meta.url)
const { sourceHash } = require('../scripts/source-hash.cjs') as { sourceHash: () => string }

// The loader's own choice, without the override `npm run test:asan` uses
// to load its build (node-gyp-build's BOXLITE_LAYOUT_PREBUILD).
const loaderEnv = { ...process.env }
delete loaderEnv.BOXLITE_LAYOUT_PREBUILD

/** The file node-gyp-build loads for this package, as the library does. */
function loadedAddonPath (): string {
  const load = require('node-gyp-build') as { resolve: (dir: string) => string }
  return load.resolve(repoRoot)
}

test('the loaded addon was built from the native sources on disk', (t) => {
  t.is(binding().sourceHash, sourceHash(), 'rebuild the addon (npm run build): it predates the sources')
})

test('the prebuild for this platform is what loads with build/ ignored, and it is current', async (t) => {
  const r = await run(process.execPath, ['-e', `
    const load = require('node-gyp-build')
    console.log(JSON.stringify({ file: load.resolve(process.argv[1]), hash: load(process.argv[1]).sourceHash }))`, repoRoot], {
    env: { ...loaderEnv, PREBUILDS_ONLY: '1' },
  })
  t.is(r.code, 0, r.stderr)
  const { file, hash } = JSON.parse(r.stdout) as { file: string, hash: string }
  t.is(path.relative(repoRoot, path.dirname(file)), path.join('prebuilds', `${process.platform}-${process.arch}`))
  t.is(hash, sourceHash(), 'prebuilds/ is stale: run `npm run prebuild:all` and commit it')
})

test('the package works from its prebuild alone (build/ ignored)', async (t) => {
  const script = `
    const { probeSync, mintBoxId } = await import(${JSON.stringify(path.join(repoRoot, 'lib', 'index.ts'))})
    const f = probeSync('/')
    if (!f.isMountRoot || mintBoxId().length !== 12) process.exit(3)
    console.log('ok', f.fsType.name)`
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...loaderEnv, PREBUILDS_ONLY: '1' },
    cwd: repoRoot,
  })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^ok /)
})

testWith([needs.linux], 'the loaded addon needs no glibc symbol that glibc 2.28 lacks (nor a libstdc++ newer than GCC 8\'s)', (t) => {
  const file = loadedAddonPath()
  const info = readElf(fs.readFileSync(file))
  t.truthy(maxVersion(info, 'GLIBC'), 'links glibc')
  const newer = info.imports.filter((s) => s.version?.startsWith('GLIBC_') && compareVersions(s.version.slice(6), '2.28') > 0)
  if (path.relative(repoRoot, file).startsWith(`prebuilds${path.sep}`)) {
    // Linked against glibc 2.28's own symbol lists (zig): no newer version at all.
    t.deepEqual(newer.map((s) => `${s.name}@${s.version!}`), [], 'call new syscalls through syscall()')
  } else {
    // A build made here (npm run build, cmake-js, the sanitizer build) links
    // this machine's glibc, which records each symbol's newest version:
    // 2.34 re-versioned every libpthread function it moved into libc. Such a
    // symbol is fine when 2.28 has it by name, which the prebuild for this
    // platform (linked against 2.28's lists) shows by importing it.
    const prebuild = path.join(repoRoot, 'prebuilds', `linux-${process.arch}`, 'boxlite-layout.glibc.node')
    const in228 = new Set(readElf(fs.readFileSync(prebuild)).imports.filter((s) => s.version?.startsWith('GLIBC_')).map((s) => s.name))
    t.deepEqual(newer.filter((s) => !in228.has(s.name)).map((s) => `${s.name}@${s.version!}`), [], 'call new syscalls through syscall()')
  }
  // libstdc++ (builds made here; the prebuilds link libc++ statically): as
  // old as RHEL 8's. GCC 11+ emits calls to its own std::__throw_* helpers
  // (at -O1, as the sanitizer build compiles): the compiler's, not the code's.
  const newerCxx = info.imports.filter((s) => s.version?.startsWith('GLIBCXX_') && compareVersions(s.version.slice(8), '3.4.25') > 0)
  t.deepEqual(newerCxx.filter((s) => !/^_ZSt\d+__throw_\w+$/.test(s.name)).map((s) => `${s.name}@${s.version!}`), [], 'RHEL 8 has GLIBCXX_3.4.25')
})

test('without a built addon the loader says what to run', async (t) => {
  // A copy of the package with neither build/ nor prebuilds/.
  const dir = fs.mkdtempSync(path.join(testTmp, 'blx-noaddon-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.cpSync(path.join(repoRoot, 'lib'), path.join(dir, 'lib'), { recursive: true })
  for (const f of ['package.json', 'CMakeLists.txt']) fs.copyFileSync(path.join(repoRoot, f), path.join(dir, f))
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'))
  const script = `
    const m = await import(${JSON.stringify(path.join(dir, 'lib', 'index.ts'))})
    // Pure path computation works without the addon…
    const box = new m.HomeLayout({ home: '/h' }).box('b1')
    if (box.socketsDir !== '/h/boxes/b1/sockets') process.exit(3)
    // …anything touching the disk explains itself.
    try { m.probeSync('/') } catch (e) { console.log(JSON.stringify({ code: e.code, reason: e.reason, message: e.message })) }`
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: dir, env: loaderEnv })
  t.is(r.code, 0, r.stderr)
  const e = JSON.parse(r.stdout) as { code: string, reason: string, message: string }
  t.is(e.code, 'ERR_ADDON_NOT_FOUND')
  t.is(e.reason, 'addon-missing')
  t.regex(e.message, /npm run build/)
  t.regex(e.message, new RegExp(`Build it from source: cd "${dir}" && npx --yes cmake-js@[0-9.]+ compile \\(needs cmake`))
  t.regex(e.message, new RegExp(`${process.platform}-${process.arch}`))
})
