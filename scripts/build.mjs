#!/usr/bin/env node
// Builds dist/ from lib/: the library and its declarations with tsc, then
// the CLI as one bundle (dist/cli.js, with lazily loaded chunks for the
// rarely used commands), because a jailer script pays the CLI's start-up on
// every call and one file loads faster than forty modules.
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

/**
 * Node's built-in modules through process.getBuiltinModule() instead of
 * ESM imports. Importing a built-in from ESM reads every export, lazy ones
 * included: `import fs from 'node:fs'` alone loads Node's 19 stream
 * modules (fs.promises, fs.ReadStream), a couple of ms of each CLI call.
 * Named imports stay named; lazy getters are reached through the default.
 */
const builtinsOnDemand = {
  name: 'builtins-on-demand',
  setup (b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'builtin' }))
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, async (args) => {
      const mod = await import(args.path)
      const real = process.getBuiltinModule(args.path)
      const eager = Object.keys(mod).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k) &&
        Object.getOwnPropertyDescriptor(real, k)?.get === undefined)
      return {
        contents: `const m = process.getBuiltinModule(${JSON.stringify(args.path)})\nexport default m\n` +
          eager.map((k) => `export const ${k} = m.${k}\n`).join(''),
        loader: 'js',
      }
    })
  },
}

await build({
  entryPoints: { cli: path.join(root, 'lib', 'cli', 'main.ts') },
  plugins: [builtinsOnDemand],
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Chunks beside cli.js: the code in them finds the package root as '..'.
  chunkNames: 'cli-[name]-[hash]',
  // Loaded at run time through createRequire: it finds the .node file.
  external: ['node-gyp-build'],
  logLevel: 'warning',
})
fs.chmodSync(path.join(dist, 'cli.js'), 0o755)
