#!/usr/bin/env node
// Builds the native fuzzers (native/test/fuzz_*.cc) with clang's libFuzzer,
// ASan and UBSan against the core sources, and runs each for a fixed number
// of inputs (default 200000; FUZZ_RUNS overrides). Exits 1 when one fails.
// Needs clang and libclang-rt (apt-get install clang libclang-rt-14-dev).
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const sources = JSON.parse(fs.readFileSync(path.join(root, 'native', 'sources.json'), 'utf8'))
const core = [...sources.common, ...sources[process.platform === 'darwin' ? 'darwin' : 'linux']].map((f) => path.join(root, f))
const compiler = process.env.CXX_FUZZ ?? (spawnSync('clang++', ['--version']).status === 0 ? 'clang++' : 'clang++-14')
const runs = process.env.FUZZ_RUNS ?? '200000'
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'blx-fuzz-'))
let failed = 0
try {
  for (const file of fs.readdirSync(path.join(root, 'native', 'test')).filter((f) => /^fuzz_.*\.cc$/.test(f))) {
    const exe = path.join(out, path.basename(file, '.cc'))
    execFileSync(compiler, ['-std=c++17', '-g', '-O1', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined',
      '-I', path.join(root, 'native', 'core'), path.join(root, 'native', 'test', file), ...core, '-o', exe], { stdio: 'inherit' })
    const r = spawnSync(exe, [`-runs=${runs}`, '-max_len=256'], { stdio: 'inherit', cwd: out })
    console.log(`${file}: ${r.status === 0 ? 'ok' : `FAILED (exit ${String(r.status)})`} after ${runs} runs`)
    if (r.status !== 0) failed++
  }
} finally {
  fs.rmSync(out, { recursive: true, force: true })
}
process.exitCode = failed === 0 ? 0 : 1
