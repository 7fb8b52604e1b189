#!/usr/bin/env node
// The sanitizer build of everything, and everything run against it:
//
//   node scripts/test-asan.mjs [--skip-build] [-- <ava args>]
//
// 1. cmake-js builds the core, core_test, the literal probe and the addon
//    with -fsanitize=address,undefined (g++, UBSan not recoverable) into
//    build-asan/, never build/ or build-cmake/.
// 2. ctest runs core_test with leak checks on, and the literal probe, which
//    must find identical literals of two files apart (as zig's Mach-O link
//    keeps them): a build that merged them would hide the darwin bugs.
// 3. The ava suite (all but fault injection, see below) runs on that addon (BOXLITE_LAYOUT_PREBUILD points
//    node-gyp-build at build-asan/) under a copy of node whose first
//    DT_NEEDED is libasan: ASan then comes first in node, and in every node
//    a test spawns (they run process.execPath), while troff, bwrap and the
//    other tools the tests run get no preload. detect_leaks=0 there (node
//    itself does not free everything at exit), UBSan halt_on_error=1.
// 4. Every sanitizer report goes to build-asan/logs (log_path); any report,
//    or a sanitizer line in the output, fails the run.
//
// Prints "test:asan: N passed, N failed" (ctest's tests plus ava's) and
// "test:asan: N sanitizer reports" and exits 1 unless both are clean.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const out = path.join(root, 'build-asan')
const logs = path.join(out, 'logs')
const SANITIZERS = 'address,undefined'
// A line of any sanitizer report (ASan, LSan, UBSan).
const REPORT = /ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (?:Address|Leak|UndefinedBehavior)Sanitizer/

const args = process.argv.slice(2)
const dashes = args.indexOf('--')
const avaArgs = dashes >= 0 ? args.slice(dashes + 1) : []
const skipBuild = args.includes('--skip-build')

function step (name, cmd, argv, opts = {}) {
  const started = Date.now()
  console.error(`::: ${name}`)
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...opts })
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`
  fs.writeFileSync(path.join(out, `${name}.log`), text)
  console.error(`    ${name}: exit ${r.status} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return { status: r.status ?? 1, text }
}

function sanitizerEnv (detectLeaks) {
  return {
    ...process.env,
    ASAN_OPTIONS: `detect_leaks=${detectLeaks ? 1 : 0}:halt_on_error=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1:log_path=${logs}/asan`,
    UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${logs}/ubsan`,
    LSAN_OPTIONS: `log_path=${logs}/lsan`,
  }
}

/** A copy of this node that loads libasan before anything else. */
function asanNode () {
  const lib = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).stdout.trim()
  const soname = /SONAME.*\[(.*)\]/.exec(spawnSync('readelf', ['-d', lib], { encoding: 'utf8' }).stdout)?.[1]
  if (soname === undefined) throw new Error(`libasan not found (g++ -print-file-name=libasan.so gave ${lib})`)
  const dir = path.join(out, 'node')
  fs.mkdirSync(dir, { recursive: true })
  const node = path.join(dir, 'node')
  fs.copyFileSync(process.execPath, node)
  const r = spawnSync('patchelf', ['--add-needed', soname, node], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`patchelf (apt-get install patchelf): ${r.error?.message ?? r.stderr}`)
  return node
}

function run (cmd, argv, opts, logFile) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], ...opts })
    const log = fs.createWriteStream(logFile)
    let text = ''
    for (const s of [child.stdout, child.stderr]) {
      s.on('data', (d) => { text += d; log.write(d); process.stdout.write(d) })
    }
    child.on('close', (code) => { log.end(); resolve({ status: code ?? 1, text }) })
  })
}

async function main () {
  const started = Date.now()
  fs.mkdirSync(out, { recursive: true })
  fs.rmSync(logs, { recursive: true, force: true })
  fs.mkdirSync(logs)
  let passed = 0
  let failed = 0

  if (!skipBuild) {
    // CMakeLists.txt adds the flags to every target (cmake-js owns CMAKE_CXX_FLAGS).
    // configure every time (cmake-js build skips it when a cache exists), then build.
    let b = step('configure', 'npx', ['cmake-js', 'configure', '--out', path.join(out, 'build'),
      `--CDBLX_SANITIZE=${SANITIZERS}`, '--CDCMAKE_CXX_FLAGS_RELEASE=-O1', '--CDBLX_EXPECT_LITERALS_APART=ON'])
    if (b.status === 0) b = step('build', 'npx', ['cmake-js', 'build', '--out', path.join(out, 'build')])
    if (b.status !== 0) {
      console.error(b.text.split('\n').slice(-40).join('\n'))
      console.log('test:asan: 0 passed, 1 failed')
      process.exit(1)
    }
  }

  // ctest: core_test (leaks checked) and the literal probe.
  const c = step('ctest', 'ctest', ['--test-dir', path.join(out, 'build'), '--output-on-failure', '-V'], { env: sanitizerEnv(true) })
  const core = /core_test: (\d+) passed, (\d+) failed/.exec(c.text)
  if (core === null) failed++
  else { passed += Number(core[1]); failed += Number(core[2]) }
  if (/literal probe: identical literals of two translation units are apart/.test(c.text)) passed++
  else failed++
  if (c.status !== 0 && (core === null || core[2] === '0')) failed++

  // The whole ava suite on the sanitizer addon.
  const node = asanNode()
  const avaStarted = Date.now()
  console.error('::: ava on the sanitizer addon')
  // All but the fault injection: it fails the Nth syscall of the thread doing
  // a step, and under ASan that thread makes the runtime's own syscalls too
  // (pipe2 and write, with which it probes memory), so an injection would
  // land in the sanitizer, not in our code. The plain suite runs it.
  const a = await run(node, [path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--tap',
    '--match', '!faults: every syscall of *', ...avaArgs], {
    env: { ...sanitizerEnv(false), BOXLITE_LAYOUT_PREBUILD: out, BLX_SANITIZER_BUILD: '1' },
  }, path.join(out, 'ava.log'))
  console.error(`    ava: exit ${a.status} in ${((Date.now() - avaStarted) / 1000).toFixed(1)} s`)
  const pass = /^# pass (\d+)$/m.exec(a.text)
  const fail = /^# fail (\d+)$/m.exec(a.text)
  if (pass === null) failed++
  else { passed += Number(pass[1]); failed += Number(fail?.[1] ?? 0) }
  if (a.status !== 0 && (fail === null || fail[1] === '0')) failed++

  // Every report, wherever it went.
  const files = fs.readdirSync(logs).filter((f) => fs.statSync(path.join(logs, f)).size > 0)
  const lines = [c.text, a.text].flatMap((t) => t.split('\n')).filter((l) => REPORT.test(l))
  for (const f of files) console.error(`sanitizer report: build-asan/logs/${f}\n${fs.readFileSync(path.join(logs, f), 'utf8').split('\n').slice(0, 30).join('\n')}`)
  for (const l of lines) console.error(`sanitizer line in the output: ${l}`)
  const reports = files.length + lines.length
  console.log(`test:asan: ${reports} sanitizer reports; ${((Date.now() - started) / 1000).toFixed(0)} s`)
  console.log(`test:asan: ${passed} passed, ${failed + reports} failed`)
  process.exit(failed + reports === 0 && passed > 0 ? 0 : 1)
}

await main()
