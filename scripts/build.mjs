#!/usr/bin/env node
// Builds dist/ from lib/: the library and its declarations with tsc, then
// the CLI as one CommonJS bundle (dist/cli.cjs), because a jailer script
// pays the CLI's start-up on every call and one file loads faster than forty
// modules.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = path.join(root, 'dist')

fs.rmSync(dist, { recursive: true, force: true })
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
  { cwd: root, stdio: 'inherit' })

// The declarations keep the sources' "./x.ts" specifiers; consumers resolve
// "./x.js" to x.d.ts with any TypeScript that understands node16 resolution.
for (const file of fs.readdirSync(dist, { recursive: true })) {
  if (!String(file).endsWith('.d.ts')) continue
  const p = path.join(dist, String(file))
  const text = fs.readFileSync(p, 'utf8')
  fs.writeFileSync(p, text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]*)\.ts\2/g, '$1$2$3.js$2'))
}

// The CLI is CommonJS although the library is ESM: Node's ESM loader costs
// a few ms of every call, and an ESM import of a built-in reads all its
// exports (`import fs from 'node:fs'` alone loads 19 stream modules).
// Dynamically imported commands (doctor, demo, box jail) stay in the one
// file but run their module code only when called.
await build({
  entryPoints: [path.join(root, 'lib', 'cli', 'main.ts')],
  outfile: path.join(dist, 'cli.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // import.meta.url, as the library uses it to find the package root ('..').
  define: { 'import.meta.url': '__cliFileUrl' },
  banner: { js: "const __cliFileUrl = require('node:url').pathToFileURL(__filename).href;" },
  // Loaded at run time through createRequire: it finds the .node file.
  external: ['node-gyp-build'],
  logLevel: 'warning',
})
fs.chmodSync(path.join(dist, 'cli.cjs'), 0o755)
