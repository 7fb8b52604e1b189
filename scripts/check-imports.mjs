#!/usr/bin/env node
// Fails when code outside test/ imports from test/: test/ depends on the
// product and the tooling, never the other way round (the release scripts
// once loaded test/helpers/*.ts). Fails too on any import cycle among the
// modules of lib/ (the CLI in lib/cli/ included): each module must be
// readable after the ones it imports, so a circle means two modules are one
// concept or one of them takes more than it needs. Type-only imports count:
// `import type` still ties one module's shapes to the other's.
//
//   node scripts/check-imports.mjs [--root DIR]
//
// Static imports and re-exports, import() and require() with a literal
// specifier are resolved against the importing file; an import() or
// require() whose argument builds a path with a 'test' segment is flagged
// too, since the release scripts loaded their helpers that way.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SKIP = new Set(['node_modules', 'dist', 'build', 'build-cmake', 'build-asan', 'prebuilds', '.git', 'test'])
const CODE = /\.(?:[cm]?js|[cm]?ts)$/
const LITERAL = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])([^'"]+)\1/gm
const BUILT = /\b(?:import|require)\s*\(([^)]*\(?[^)]*\)?[^)]*)\)/g

function codeFiles (root, rel = '') {
  return fs.readdirSync(path.join(root, rel), { withFileTypes: true }).flatMap((e) => {
    const p = path.posix.join(rel, e.name)
    if (e.isDirectory()) return rel === '' && SKIP.has(e.name) ? [] : (e.name === 'node_modules' ? [] : codeFiles(root, p))
    return CODE.test(e.name) ? [p] : []
  })
}

export function importsFromTest (root) {
  const testDir = path.join(root, 'test') + path.sep
  const findings = []
  for (const rel of codeFiles(root)) {
    const text = fs.readFileSync(path.join(root, rel), 'utf8')
    const lineOf = (index) => text.slice(0, index).split('\n').length
    for (const m of text.matchAll(LITERAL)) {
      const spec = m[2]
      if (!spec.startsWith('.') && !spec.startsWith('/')) continue
      const target = path.resolve(path.dirname(path.join(root, rel)), spec)
      if (target.startsWith(testDir)) findings.push(`${rel}:${lineOf(m.index)}: imports ${spec} from test/`)
    }
    for (const m of text.matchAll(BUILT)) {
      if (/^\s*(['"])[^'"]*\1\s*$/.test(m[1])) continue // a literal: judged above
      if (/(['"])test\1|['"/]test\//.test(m[1])) findings.push(`${rel}:${lineOf(m.index)}: loads a path under test/ (${m[0].trim()})`)
    }
  }
  return findings
}

// Static imports and re-exports (type-only ones too), side-effect imports
// and import() with a literal specifier.
const MODULE_EDGE = /(?:^\s*(?:import|export)\b[^;'"]*?\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*)(['"])(\.{1,2}\/[^'"]+)\1/gm

/** Every import cycle among lib/'s modules, each as `file:line: import cycle: a -> b -> a`. */
export function importCycles (root) {
  const lib = path.join(root, 'lib')
  if (!fs.existsSync(lib)) return []
  const modules = codeFiles(lib).map((rel) => path.posix.join('lib', rel))
  const known = new Set(modules)
  /** @type {Map<string, Array<{ to: string, line: number }>>} */
  const edges = new Map()
  for (const rel of modules) {
    const text = fs.readFileSync(path.join(root, rel), 'utf8')
    const out = []
    for (const m of text.matchAll(MODULE_EDGE)) {
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(rel), m[2]))
      if (known.has(to)) out.push({ to, line: text.slice(0, m.index).split('\n').length })
    }
    edges.set(rel, out)
  }
  // Depth-first; a back edge to a module on the stack closes a cycle.
  const findings = []
  const done = new Set()
  const stack = []
  const onStack = new Map()
  const visit = (rel) => {
    onStack.set(rel, stack.length)
    stack.push(rel)
    for (const { to, line } of edges.get(rel)) {
      if (onStack.has(to)) {
        const circle = [...stack.slice(onStack.get(to)), to]
        findings.push(`${rel}:${line}: import cycle: ${circle.join(' -> ')}`)
      } else if (!done.has(to)) {
        visit(to)
      }
    }
    stack.pop()
    onStack.delete(rel)
    done.add(rel)
  }
  for (const rel of [...modules].sort()) if (!done.has(rel)) visit(rel)
  return findings
}

if (process.argv[1] !== undefined && import.meta.url === `file://${fs.realpathSync(process.argv[1])}`) {
  const args = process.argv.slice(2)
  const i = args.indexOf('--root')
  const root = i >= 0 ? path.resolve(args[i + 1]) : path.resolve(fileURLToPath(new URL('..', import.meta.url)))
  const findings = importsFromTest(root)
  for (const f of findings) console.error(f)
  if (findings.length > 0) {
    console.error('code outside test/ must not import from test/: move the shared module out (e.g. scripts/lib/)')
  }
  const cycles = importCycles(root)
  for (const f of cycles) console.error(f)
  if (cycles.length > 0) {
    console.error('lib/ must have no import cycles: move the shared shape into the module that owns it, or take a narrow interface instead of the other module\'s class')
  }
  if (findings.length + cycles.length > 0) process.exit(1)
}
