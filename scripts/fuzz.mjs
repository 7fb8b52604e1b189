#!/usr/bin/env node
// Builds and runs the libFuzzer targets of native/fuzz/ (clang 14,
// -fsanitize=fuzzer,address,undefined), each for a bounded time:
//
//   npm run fuzz -- [--seconds N] [--only name,name] [--keep]
//
// Each target starts from its committed seed corpus (native/fuzz/corpus/
// <name>/, read only: new inputs go to a temporary directory, kept with
// --keep) and runs in a private scratch directory that is removed after.
// Any crash, leak, sanitizer report, timeout or failed FUZZ_CHECK is a
// finding: its input is saved under build-fuzz/artifacts/ and the target
// fails. Prints execs, execs/s and libFuzzer's coverage (cov: edges, ft:
// features) per target, and ends with "fuzz: N passed, N failed".
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const out = path.join(root, 'build-fuzz')
const fuzzDir = path.join(root, 'native', 'fuzz')

function option (name, fallback) {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : process.argv[i + 1]
}
const seconds = Number(option('seconds', '30'))
if (!Number.isInteger(seconds) || seconds <= 0) {
  console.error('--seconds needs a positive whole number')
  process.exit(2)
}
const keep = process.argv.includes('--keep')
const targets = fs.readdirSync(fuzzDir).filter((f) => f.endsWith('.cc')).map((f) => f.slice(0, -3)).sort()
const only = option('only', undefined)?.split(',')
const selected = only === undefined ? targets : targets.filter((t) => only.includes(t))
if (selected.length === 0) {
  console.error(`no such target; targets: ${targets.join(', ')}`)
  process.exit(2)
}

function tool (names) {
  for (const n of names) if (spawnSync(n, ['--version'], { stdio: 'ignore' }).status === 0) return n
  console.error(`${names[0]} is not installed (apt-get install clang-14 libclang-rt-14-dev)`)
  process.exit(1)
}
const cxx = tool(['clang++-14', 'clang++'])

const FLAGS = ['-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all', '-Wall', '-Wextra']
const SANITIZE = 'address,undefined'

function run (args) {
  const r = spawnSync(cxx, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] })
  if (r.status !== 0) {
    console.error(`${cxx} ${args.join(' ')} failed`)
    process.exit(1)
  }
}

function newerThan (target, inputs) {
  if (!fs.existsSync(target)) return false
  const t = fs.statSync(target).mtimeMs
  return inputs.every((f) => fs.statSync(f).mtimeMs <= t)
}

// The core, instrumented for coverage (fuzzer-no-link) and sanitized, once;
// a target is the core plus its one file.
function build () {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'))
  const headers = ['native/core/core.h', 'native/core/internal.h', 'native/core/linux/sys.h', 'native/fuzz/fuzz.h']
    .map((h) => path.join(root, h))
  fs.mkdirSync(path.join(out, 'obj'), { recursive: true })
  const objects = []
  for (const src of [...manifest.common, ...manifest.linux]) {
    const obj = path.join(out, 'obj', src.replace(/\//g, '_').replace(/\.cc$/, '.o'))
    if (!newerThan(obj, [path.join(root, src), ...headers])) {
      run([...FLAGS, `-fsanitize=fuzzer-no-link,${SANITIZE}`, '-c', src, '-o', obj])
    }
    objects.push(obj)
  }
  for (const t of selected) {
    const exe = path.join(out, t)
    const src = path.join(fuzzDir, `${t}.cc`)
    if (!newerThan(exe, [src, ...headers, ...objects])) {
      run([...FLAGS, `-fsanitize=fuzzer,${SANITIZE}`, src, ...objects, '-o', exe])
    }
  }
}

function fuzz (target, scratch) {
  const corpus = path.join(fuzzDir, 'corpus', target)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `blx-fuzz-corpus-${target}-`))
  const artifacts = path.join(out, 'artifacts')
  fs.mkdirSync(artifacts, { recursive: true })
  const args = [
    work, ...(fs.existsSync(corpus) ? [corpus] : []),
    `-max_total_time=${seconds}`, '-print_final_stats=1', '-print_funcs=0', '-timeout=10', '-rss_limit_mb=2048',
    `-artifact_prefix=${artifacts}/${target}-`,
  ]
  return new Promise((resolve) => {
    const child = spawn(path.join(out, target), args, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        BLX_FUZZ_SCRATCH: scratch,
        ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:symbolize=1',
        UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
      },
    })
    let log = ''
    child.stdout.on('data', (d) => { log += d })
    child.stderr.on('data', (d) => { log += d })
    child.on('close', (code, signal) => {
      const stat = (name) => Number(log.match(new RegExp(`stat::${name}:\\s+(\\d+)`))?.[1] ?? NaN)
      const cov = [...log.matchAll(/^#\d+\s+\S+\s+cov: (\d+) ft: (\d+)/gm)].at(-1)
      const finding = code !== 0 || signal !== null || /ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed/.test(log)
      const seeds = fs.existsSync(corpus) ? fs.readdirSync(corpus).length : 0
      const found = fs.readdirSync(work).length
      if (keep) console.log(`${target}: new inputs kept in ${work}`)
      else fs.rmSync(work, { recursive: true, force: true })
      resolve({
        target,
        ok: !finding,
        execs: stat('number_of_executed_units'),
        perSecond: stat('average_exec_per_sec'),
        cov: Number(cov?.[1] ?? NaN),
        ft: Number(cov?.[2] ?? NaN),
        seeds,
        found,
        log,
      })
    })
  })
}

build()
// tmpfs where there is one: on ext4 every rename over a file (the atomic
// writes) waits for the new file's data to reach the disk.
const scratchParent = fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').isDirectory() ? '/dev/shm' : os.tmpdir()
const scratch = fs.mkdtempSync(path.join(scratchParent, 'blx-fuzz-'))
const results = []
try {
  for (const t of selected) {
    const r = await fuzz(t, scratch)
    results.push(r)
    const line = `${r.ok ? 'ok  ' : 'FAIL'} ${t.padEnd(14)} ${String(r.execs).padStart(10)} execs ` +
      `${String(r.perSecond).padStart(7)}/s  cov ${String(r.cov).padStart(5)}  ft ${String(r.ft).padStart(6)}  ` +
      `seeds ${r.seeds}, +${r.found} new`
    console.log(line)
    if (!r.ok) {
      console.log(r.log.split('\n').slice(-60).join('\n'))
      console.log(`the input is in build-fuzz/artifacts/${t}-*: fix the finding and add the input to native/fuzz/corpus/${t}/`)
    }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true })
}
fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(results.map(({ log, ...r }) => r), null, 2) + '\n')
const failed = results.filter((r) => !r.ok).length
console.log(`fuzz: ${results.length - failed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
