// What a consumer of the published package gets: the files npm packs; the
// packed tarball installed by npm 11 and by pnpm 10 into fresh projects with
// no install script to approve, loading its prebuild and running a box's
// lifecycle; where no prebuild fits, the load error's own command building
// the addon from the shipped sources; the library from CommonJS (require of
// ESM) and ESM, and types that a TypeScript project with "module":
// "nodenext" resolves.
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { privateLinkUid } from './helpers/boxes.ts'
import { needs, testWith } from './helpers/env.ts'
import { repoRoot, run, scratch, testTmp } from './helpers/fixtures.ts'

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  version: string
  gypfile?: boolean
  scripts: Record<string, string>
  devDependencies: Partial<Record<string, string>>
}

interface PackResult { files: Array<{ path: string }> }

test('npm pack ships the library, CLI, man page, schemas, licence, docs, sources and every prebuild, and nothing of the tests', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  const files = (JSON.parse(out) as [PackResult])[0].files.map((f) => f.path)
  for (const needed of [
    'dist/index.js', 'dist/index.d.ts', 'dist/cli.cjs', 'man/boxlite-layout.1', 'LICENSE', 'CHANGELOG.md', 'README.md',
    'docs/cli-json/error.schema.json', 'CMakeLists.txt', 'native/sources.json', 'scripts/source-hash.cjs',
    'prebuilds/linux-x64/boxlite-layout.glibc.node', 'prebuilds/linux-x64/boxlite-layout.musl.node',
    'prebuilds/linux-arm64/boxlite-layout.glibc.node',
    'prebuilds/darwin-arm64/boxlite-layout.node', 'prebuilds/darwin-x64/boxlite-layout.node',
  ]) t.true(files.includes(needed), `the package lacks ${needed}`)
  // Every relative link of the shipped docs resolves inside the package.
  for (const doc of files.filter((f) => f.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(repoRoot, doc), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue
      const shipped = path.posix.normalize(path.posix.join(path.posix.dirname(doc), target!))
      t.true(files.includes(shipped) || files.some((f) => f.startsWith(`${shipped}/`)), `${doc} links to ${target!}, which the package lacks`)
    }
  }
  // pnpm 10 queues `node-gyp rebuild` for any package with a binding.gyp at its root, gypfile or not.
  t.false(files.includes('binding.gyp'), 'binding.gyp makes pnpm 10 ask to approve a build')
  t.deepEqual(files.filter((f) => f.endsWith('.map') || f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('lib/') || f.startsWith('tools/')), [])
})

test('the CLI bundle is the product only: no VM lab (QEMU, apt-get, busybox), no module from outside lib/', (t) => {
  const bundle = fs.readFileSync(path.join(repoRoot, 'dist', 'cli.cjs'), 'utf8')
  // esbuild heads each bundled module with a "// path" comment.
  const modules = [...new Set(bundle.match(/^\/\/ \S+\.[cm]?[jt]s$/gm)?.map((l) => l.slice(3)))]
  t.true(modules.includes('lib/cli/main.ts'), `the bundle's modules were not found: ${modules.join(', ')}`)
  t.deepEqual(modules.filter((m) => !m.startsWith('lib/') || /guest-(vm|probes)/.test(m)), [])
  // ("initramfs" is a word of the product since boot generations: the lab's own tools are the tell.)
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'busybox', 'cpio', 'vmlinuz', 'virtio-9p', 'qemu-system']) {
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

// ---------------------------------------------------------------------------
// The tarball as package managers install it

test('package.json declares no install-time script: no (pre|post)install or prepare, gypfile false', (t) => {
  t.deepEqual(['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => s in pkg.scripts), [])
  t.is(pkg.gypfile, false)
})

const packDir = fs.mkdtempSync(path.join(testTmp, 'blx-pack-'))
test.after.always(() => fs.rmSync(packDir, { recursive: true, force: true }))
let packed: Promise<string> | undefined

/** The tarball `npm pack` makes (of dist/ as `npm test` built it), packed once per file. */
function tarball (): Promise<string> {
  packed ??= run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { cwd: repoRoot }).then((r) => {
    if (r.code !== 0) throw new Error(`npm pack failed: ${r.stderr}`)
    return path.join(packDir, (JSON.parse(r.stdout) as [{ filename: string }])[0].filename)
  })
  return packed
}

/** The environment of a user's shell: none of the npm_* variables `npm test` sets for us. */
function userEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // Nor the override `npm run test:asan` sets to load its own build
  // (node-gyp-build's BOXLITE_LAYOUT_PREBUILD): an installed package loads its prebuild.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'BOXLITE_LAYOUT_PREBUILD'))
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra }
}

/** A fresh project directory with a package.json of its own. */
function freshProject (t: ExecutionContext, root: string, name: string): string {
  const dir = path.join(root, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }))
  // One box's life through the installed package, and which addon file served it.
  fs.writeFileSync(path.join(dir, 'lifecycle.mjs'), `
    import { createRequire } from 'node:module'
    import path from 'node:path'
    import { HomeLayout, mintBoxId } from 'boxlite-layout'
    const [home, uid] = process.argv.slice(2)
    const layout = new HomeLayout({ home })
    const box = layout.box(mintBoxId(), { isolateMounts: true, uid: Number(uid) })
    await layout.prepare()
    const prepared = await box.prepare()
    const shared = await box.mountShared()
    const cleaned = await box.cleanup()
    const pkgDir = path.dirname(createRequire(import.meta.url).resolve('boxlite-layout/package.json'))
    const addon = createRequire(path.join(pkgDir, 'package.json'))('node-gyp-build').resolve(pkgDir)
    console.log(JSON.stringify({ link: prepared.socketLink.link, shared: shared.method, removed: cleaned.removed, boxes: await layout.boxIds(), addon: path.relative(pkgDir, addon) }))
  `)
  return dir
}

interface Lifecycle { link: string, shared: string, removed: boolean, boxes: string[], addon: string }

/** Runs lifecycle.mjs in the project against a scratch home; its result, or the error it printed. */
async function lifecycle (t: ExecutionContext, dir: string): Promise<{ code: number | null, result?: Lifecycle, stderr: string }> {
  const r = await run(process.execPath, ['lifecycle.mjs', path.join(dir, 'home'), String(privateLinkUid(t))], { cwd: dir, env: userEnv() })
  return r.code === 0 ? { code: r.code, result: JSON.parse(r.stdout) as Lifecycle, stderr: r.stderr } : { code: r.code, stderr: r.stderr }
}

/** The prebuild for this platform served a whole lifecycle; the bin runs too. */
async function worksFromPrebuild (t: ExecutionContext, dir: string, manager: string): Promise<void> {
  const life = await lifecycle(t, dir)
  t.is(life.code, 0, `${manager}: the lifecycle failed: ${life.stderr}`)
  const libc = process.platform === 'linux' ? '.glibc' : ''
  t.like(life.result, {
    link: 'created',
    removed: true,
    boxes: [],
    addon: path.join('prebuilds', `${process.platform}-${process.arch}`, `boxlite-layout${libc}.node`),
  }, manager)
  const bin = await run(path.join(dir, 'node_modules', '.bin', 'boxlite-layout'), ['--version'], { cwd: dir, env: userEnv() })
  t.is(bin.code, 0, bin.stderr)
  t.is(bin.stdout, `${pkg.version}\n`)
}

/** What a package manager says about scripts it did not run: any of these phrases is a prompt to the user. */
const BUILD_SCRIPT_NOTICE = /install-scripts|allowScripts|build scripts|approve-builds|node-gyp|lifecycle/i

test('npm 11 installs the tarball into a fresh project with no install-script warning; the prebuild loads and runs a box lifecycle', async (t) => {
  t.timeout(300_000)
  const dir = freshProject(t, scratch(t, 'blx-npm-consumer-'), 'npm-consumer')
  const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8', env: userEnv() }).trim()
  t.regex(npmVersion, /^11\./, 'this test is about npm 11')
  const r = await run('npm', ['install', '--prefer-offline', await tarball()], { cwd: dir, env: userEnv() })
  const said = r.stdout + r.stderr
  t.is(r.code, 0, said)
  t.regex(said, /added 3 packages/, 'boxlite-layout and its two dependencies')
  t.notRegex(said, BUILD_SCRIPT_NOTICE)
  await worksFromPrebuild(t, dir, `npm ${npmVersion}`)
})

test('pnpm 10 installs the tarball into a fresh project with no "Ignored build scripts"; the prebuild loads and runs a box lifecycle', async (t) => {
  t.timeout(300_000)
  const root = scratch(t, 'blx-pnpm-consumer-')
  const dir = freshProject(t, root, 'pnpm-consumer')
  const pnpm = path.join(repoRoot, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs')
  // pnpm's store, cache and state in the scratch dir: nothing of the user's is read or written.
  const env = userEnv({
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_CACHE_HOME: path.join(root, 'cache'),
    XDG_STATE_HOME: path.join(root, 'state'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
  })
  const version = execFileSync(process.execPath, [pnpm, '--version'], { encoding: 'utf8', env }).trim()
  t.is(version, pkg.devDependencies.pnpm ?? 'pnpm is not a devDependency', 'the pinned pnpm')
  t.regex(version, /^10\./)
  const r = await run(process.execPath, [pnpm, 'add', await tarball(), '--store-dir', path.join(root, 'store')], { cwd: dir, env })
  const said = r.stdout + r.stderr
  t.is(r.code, 0, said)
  t.regex(said, /\+ boxlite-layout \d/, 'pnpm reports the package added')
  t.notRegex(said, BUILD_SCRIPT_NOTICE)
  await worksFromPrebuild(t, dir, `pnpm ${version}`)
})

testWith([needs.linux, needs.tool('cmake', 'cmake'), needs.tool('make', 'make'), needs.tool('c++', 'g++')],
  'where no prebuild fits, the load error names the command that builds the addon, and that command (run as printed) makes it load', async (t) => {
    t.timeout(900_000, 'compiling the addon from the shipped sources')
    const dir = freshProject(t, scratch(t, 'blx-source-consumer-'), 'source-consumer')
    const r = await run('npm', ['install', '--prefer-offline', await tarball()], { cwd: dir, env: userEnv() })
    t.is(r.code, 0, r.stderr)
    // A platform the package has no prebuild for.
    fs.rmSync(path.join(dir, 'node_modules', 'boxlite-layout', 'prebuilds'), { recursive: true })
    const missing = await lifecycle(t, dir)
    t.not(missing.code, 0)
    t.regex(missing.stderr, /ERR_ADDON_NOT_FOUND/)
    t.regex(missing.stderr, /needs cmake >= 3\.19, make and a C\+\+17 compiler/)
    const command = /Build it from source: (.+?) \(needs/.exec(missing.stderr)?.[1]
    t.is(command, `cd ${JSON.stringify(fs.realpathSync(path.join(dir, 'node_modules', 'boxlite-layout')))} && npx --yes cmake-js@${pkg.devDependencies['cmake-js']} compile`)
    const build = await run('sh', ['-c', command!], { cwd: dir, env: userEnv() })
    t.is(build.code, 0, build.stdout + build.stderr)
    const life = await lifecycle(t, dir)
    t.is(life.code, 0, life.stderr)
    t.like(life.result, { link: 'created', removed: true, addon: path.join('build', 'Release', 'boxlite_layout.node') })
  })
