// Every committed prebuild, checked statically (scripts/check-prebuilds.mjs):
// built from the sources on disk (the source hash is a string in each
// binary), linux ones needing glibc <= 2.28 (or musl) and no C++ runtime,
// darwin ones Mach-O for their CPU, macOS >= 11, exporting
// napi_register_module_v1, importing only libSystem (and Node-API: napi_*
// symbols, left to node), the arm64 one carrying a valid ad-hoc signature.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { FLAT_LOOKUP, isNodeSymbol, tbdExports, unresolvedImports, type MachOImport, type MachOSlice } from '../scripts/lib/macho.ts'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'

interface Checked {
  file: string
  kind?: string
  versions?: string
  problems: string[]
}

const EXPECTED = [
  'prebuilds/darwin-arm64/boxlite-layout.node',
  'prebuilds/darwin-x64/boxlite-layout.node',
  'prebuilds/linux-arm64/boxlite-layout.glibc.node',
  'prebuilds/linux-x64/boxlite-layout.glibc.node',
  'prebuilds/linux-x64/boxlite-layout.musl.node',
]

async function check (...files: string[]): Promise<Checked[]> {
  const r = await run(process.execPath, [path.join(repoRoot, 'scripts', 'check-prebuilds.mjs'), '--json', ...files], { cwd: repoRoot })
  return JSON.parse(r.stdout) as Checked[]
}

test('every platform has a prebuild, current and clean', async (t) => {
  const results = await check()
  t.deepEqual(results.map((r) => r.file), EXPECTED, 'run `npm run prebuild:all` and commit prebuilds/')
  for (const r of results) t.deepEqual(r.problems, [], r.file)
  const by = Object.fromEntries(results.map((r) => [r.file, r]))
  t.regex(by['prebuilds/darwin-arm64/boxlite-layout.node']!.versions!, /macOS >= 11\.0 .*signed ad-hoc .*valid/)
  t.regex(by['prebuilds/darwin-x64/boxlite-layout.node']!.kind!, /Mach-O x86_64/)
  t.regex(by['prebuilds/linux-arm64/boxlite-layout.glibc.node']!.kind!, /ELF aarch64 glibc/)
  t.is(by['prebuilds/linux-x64/boxlite-layout.musl.node']!.versions, 'unversioned')
})

test('the checks catch a stale or tampered prebuild', async (t) => {
  const dir = path.join(scratch(t), 'prebuilds', 'darwin-arm64')
  fs.mkdirSync(dir, { recursive: true })
  const copy = path.join(dir, 'boxlite-layout.node')
  const buf = fs.readFileSync(path.join(repoRoot, EXPECTED[0]!))
  // One byte inside the code: the signature no longer matches the pages.
  buf[0x4000] = buf[0x4000]! ^ 0xff
  fs.writeFileSync(copy, buf)
  const [tampered] = await check(copy)
  t.true(tampered!.problems.some((p) => /signature|hash/i.test(p)), JSON.stringify(tampered!.problems))
  const hash = /[0-9a-f]{32}/.exec(buf.toString('latin1'))
  t.truthy(hash, 'the source hash is in the binary')
})

test('a darwin import that macOS 11\'s libSystem does not export, or a non-Node-API symbol left to dynamic lookup, is a problem', async (t) => {
  const { ensureNpmPackage, TOOLS } = await import('../scripts/prebuild-all.mjs')
  const tbd = fs.readFileSync(path.join(ensureNpmPackage(TOOLS.zig), 'lib', 'libc', 'darwin', 'libSystem.11.tbd'), 'utf8')
  const libSystem = '/usr/lib/libSystem.B.dylib'
  const exports = tbdExports(tbd, 'arm64-macos')
  // Re-exported by the umbrella from libsystem_kernel, libsystem_c, libsystem_pthread.
  for (const name of ['_openat', '_clonefile', '_getmntinfo_r_np', '_pthread_attr_setstacksize', '_proc_pidinfo']) t.true(exports.has(name), name)
  t.false(exports.has('_openat2'), 'a Linux-only call is not there')
  const imp = (name: string, library: string): MachOImport => ({ name, library, weak: false })
  const slice = {
    imports: [imp('_openat', libSystem), imp('_openat2', libSystem), imp('_napi_create_object', FLAT_LOOKUP), imp('_uv_thread_join', FLAT_LOOKUP)],
    symtab: { undefined: [] },
  } as unknown as MachOSlice
  t.deepEqual(unresolvedImports(slice, new Map([[libSystem, exports]]), isNodeSymbol), [
    '_openat2 is not exported by /usr/lib/libSystem.B.dylib (macOS 11 SDK stub)',
    '_uv_thread_join is left to dynamic lookup (undefined at link time)',
  ])
})
