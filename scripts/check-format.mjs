#!/usr/bin/env node
// Fails when a native source differs from what clang-format (.clang-format)
// makes of it. Run `clang-format -i native/**/*.{cc,h}` to fix.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
if (spawnSync('clang-format', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('clang-format is not installed (apt-get install clang-format)')
  process.exit(1)
}
const files = fs.readdirSync(path.join(root, 'native'), { recursive: true })
  .map(String).filter((f) => /\.(cc|h)$/.test(f)).map((f) => path.join('native', f)).sort()
const bad = files.filter((f) => execFileSync('clang-format', [f], { cwd: root, encoding: 'utf8' }) !== fs.readFileSync(path.join(root, f), 'utf8'))
if (bad.length > 0) {
  console.error(`not clang-formatted (run clang-format -i on them):\n  ${bad.join('\n  ')}`)
  process.exit(1)
}
