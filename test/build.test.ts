// The native build (SPEC §11): the addon is built from the sources on disk,
// the committed prebuild is not stale and loads without build/, cmake-js
// builds the same addon, and the binary needs nothing newer than glibc 2.28.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { binding } from '../lib/native.ts'
import { needs, testWith, type Requirement } from './helpers/env.ts'
import { repoRoot, run } from './helpers/fixtures.ts'

const require = createRequire(import.meta.url)
const { sourceHash } = require('../scripts/source-hash.cjs') as { sourceHash: () => string }

const prebuildDir = path.join(repoRoot, 'prebuilds', `${process.platform}-${process.arch}`)
const prebuild = fs.existsSync(prebuildDir)
  ? fs.readdirSync(prebuildDir).filter((f) => f.endsWith('.node')).map((f) => path.join(prebuildDir, f))[0]
  : undefined
/** The file node-gyp-build loads for this package, as the library does. */
function loadedAddonPath (): string {
  const load = require('node-gyp-build') as { resolve: (dir: string) => string }
  return load.resolve(repoRoot)
}

const hasPrebuild: Requirement = { ok: () => prebuild !== undefined, reason: `no prebuild in ${prebuildDir}; run npm run prebuild` }
const hasObjdump = needs.tool('objdump', 'binutils')

test('the loaded addon was built from the native sources on disk', (t) => {
  t.is(binding().sourceHash, sourceHash(), 'rebuild the addon (npm run build): it predates the sources')
})

testWith([hasPrebuild], 'the committed prebuild matches the native sources (not stale)', async (t) => {
  // Load it in a child with PREBUILDS_ONLY, which ignores build/ entirely.
  const r = await run(process.execPath, ['-e', "process.stdout.write(require('node-gyp-build')(process.argv[1]).sourceHash)", repoRoot], {
    env: { ...process.env, PREBUILDS_ONLY: '1' },
  })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, sourceHash(), 'prebuilds/ is stale: run `npm run prebuild` and commit it')
})

testWith([hasPrebuild], 'the package works from its prebuild alone (build/ ignored)', async (t) => {
  const script = `
    const { probeSync, mintBoxId } = await import(${JSON.stringify(path.join(repoRoot, 'lib', 'index.ts'))})
    const f = probeSync('/')
    if (!f.isMountRoot || mintBoxId().length !== 12) process.exit(3)
    console.log('ok', f.fsType.name)`
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, PREBUILDS_ONLY: '1' },
    cwd: repoRoot,
  })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^ok /)
})

function symbolVersions (file: string): Map<string, string> {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8' })
  const max = new Map<string, string>()
  const cmp = (a: string, b: string) => {
    const x = a.split('.').map(Number)
    const y = b.split('.').map(Number)
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0)
    }
    return 0
  }
  for (const m of out.matchAll(/\b(GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\b/g)) {
    const [, lib, ver] = m as unknown as [string, string, string]
    if (!max.has(lib) || cmp(ver, max.get(lib)!) > 0) max.set(lib, ver)
  }
  return max
}

function checkLoadsOnOldGlibc (t: import('ava').ExecutionContext, file: string): void {
  const v = symbolVersions(file)
  t.truthy(v.get('GLIBC'), 'links glibc')
  const [major, minor] = v.get('GLIBC')!.split('.').map(Number) as [number, number]
  t.true(major === 2 && minor <= 28, `${path.basename(file)} needs GLIBC_${v.get('GLIBC')}; must be <= 2.28 (call new syscalls through syscall())`)
  if (v.has('GLIBCXX')) {
    const [, , patch] = v.get('GLIBCXX')!.split('.').map(Number) as [number, number, number]
    t.true(patch <= 25, `needs GLIBCXX_${v.get('GLIBCXX')}; must be <= 3.4.25 (GCC 8, the RHEL 8 runtime)`)
  }
}

testWith([needs.linux, hasObjdump], 'the loaded addon needs no glibc symbol newer than 2.28', (t) => {
  // Whichever addon node-gyp-build picked: build/ after `npm run build`,
  // the prebuild on a fresh `npm install`.
  checkLoadsOnOldGlibc(t, loadedAddonPath())
})

testWith([needs.linux, hasObjdump, hasPrebuild], 'the prebuild needs no glibc symbol newer than 2.28', (t) => {
  checkLoadsOnOldGlibc(t, prebuild!)
})

test('without a built addon the loader says what to run', async (t) => {
  // A copy of the package with neither build/ nor prebuilds/.
  const dir = fs.mkdtempSync('/tmp/blx-noaddon-')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.cpSync(path.join(repoRoot, 'lib'), path.join(dir, 'lib'), { recursive: true })
  for (const f of ['package.json', 'binding.gyp']) fs.copyFileSync(path.join(repoRoot, f), path.join(dir, f))
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'))
  const script = `
    const m = await import(${JSON.stringify(path.join(dir, 'lib', 'index.ts'))})
    // Pure path computation works without the addon…
    const box = new m.HomeLayout({ home: '/h' }).box('b1')
    if (box.socketsDir !== '/h/boxes/b1/sockets') process.exit(3)
    // …anything touching the disk explains itself.
    try { m.probeSync('/') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`
  const r = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: dir })
  t.is(r.code, 0, r.stderr)
  const e = JSON.parse(r.stdout) as { code: string, message: string }
  t.is(e.code, 'ERR_ADDON_NOT_FOUND')
  t.regex(e.message, /npm run build/)
  t.regex(e.message, new RegExp(`${process.platform}-${process.arch}`))
})
