// What a consumer of the published package gets: the files npm packs, the
// library from CommonJS (require of ESM) and ESM, and types that a
// TypeScript project with "module": "nodenext" resolves.
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot, scratch } from './helpers/fixtures.ts'

interface PackResult { files: Array<{ path: string }> }

test('npm pack ships the library, CLI, man page, schemas, licence and every prebuild, and nothing of the tests', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const files = (JSON.parse(out) as [PackResult])[0].files.map((f) => f.path)
  for (const needed of [
    'dist/index.js', 'dist/index.d.ts', 'dist/cli.cjs', 'man/boxlite-layout.1', 'LICENSE', 'CHANGELOG.md', 'README.md',
    'docs/cli-json/error.schema.json', 'binding.gyp', 'native/sources.json', 'scripts/source-hash.cjs',
    'prebuilds/linux-x64/boxlite-layout.glibc.node', 'prebuilds/linux-x64/boxlite-layout.musl.node',
    'prebuilds/linux-arm64/boxlite-layout.glibc.node',
    'prebuilds/darwin-arm64/boxlite-layout.node', 'prebuilds/darwin-x64/boxlite-layout.node',
  ]) t.true(files.includes(needed), `the package lacks ${needed}`)
  t.deepEqual(files.filter((f) => f.endsWith('.map') || f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('lib/') || f.startsWith('tools/')), [])
})

test('the CLI bundle is the product only: no VM lab (QEMU, apt-get, busybox), no module from outside lib/', (t) => {
  const bundle = fs.readFileSync(path.join(repoRoot, 'dist', 'cli.cjs'), 'utf8')
  // esbuild heads each bundled module with a "// path" comment.
  const modules = [...new Set(bundle.match(/^\/\/ \S+\.[cm]?[jt]s$/gm)?.map((l) => l.slice(3)))]
  t.true(modules.includes('lib/cli/main.ts'), `the bundle's modules were not found: ${modules.join(', ')}`)
  t.deepEqual(modules.filter((m) => !m.startsWith('lib/') || /guest-(vm|probes)/.test(m)), [])
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'busybox', 'initramfs', 'qemu-system']) {
    t.false(bundle.includes(tool), `dist/cli.cjs mentions ${tool}`)
  }
  // The one QEMU word the product has: a hint naming the tool that fixes a backing file.
  t.deepEqual([...new Set(bundle.match(/qemu[\w-]*/gi))], ['qemu-img'])
})

function consumer (t: ExecutionContext): string {
  const dir = scratch(t, 'blx-consumer-')
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(repoRoot, path.join(dir, 'node_modules', 'boxlite-layout'))
  return dir
}

test('CommonJS can require the package and ESM can import it: the same API', (t) => {
  const dir = consumer(t)
  fs.writeFileSync(path.join(dir, 'use.cjs'), "const l = require('boxlite-layout'); console.log(typeof l.HomeLayout, l.isValidId('b1'), Object.keys(l).length)\n")
  fs.writeFileSync(path.join(dir, 'use.mjs'), "import * as l from 'boxlite-layout'; console.log(typeof l.HomeLayout, l.isValidId('b1'), Object.keys(l).length)\n")
  const cjs = execFileSync(process.execPath, ['use.cjs'], { cwd: dir, encoding: 'utf8' })
  const esm = execFileSync(process.execPath, ['use.mjs'], { cwd: dir, encoding: 'utf8' })
  t.regex(cjs, /^function true \d+\n$/)
  t.is(cjs, esm)
})

test('a TypeScript project with module nodenext typechecks against the shipped types', (t) => {
  const dir = consumer(t)
  // @types/node comes from the repo: the shipped .d.ts reference Node's types.
  fs.symlinkSync(path.join(repoRoot, 'node_modules', '@types'), path.join(dir, 'node_modules', '@types'))
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] },
    files: ['use.mts'],
  }))
  fs.writeFileSync(path.join(dir, 'use.mts'), [
    "import { HomeLayout, LayoutError, type GcReport, type LayoutErrorReason } from 'boxlite-layout'",
    'const home = new HomeLayout({ home: "/srv/boxlite" })',
    'const report: Promise<GcReport> = home.gc({ dryRun: true })',
    "const reason: LayoutErrorReason = 'symlink'",
    'export { report, reason, LayoutError }',
    '',
  ].join('\n'))
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
  t.notThrows(() => execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' }))
  fs.writeFileSync(path.join(dir, 'use.mts'), "import { HomeLayout } from 'boxlite-layout'\nnew HomeLayout().prepareSync(42)\n")
  const wrong = t.throws(() => execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' }))
  t.regex(String((wrong as Error & { stdout?: string }).stdout), /TS2554/, 'the types are real: a wrong call is refused')
})
