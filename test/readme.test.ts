// The README is the newcomer's reference: it shows every example file
// verbatim, documents every public export and type, and its two commands
// are the ones CI runs first.
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import * as api from '../lib/index.ts'
import { repoRoot } from './helpers/fixtures.ts'
import { readme, readmeExportNames } from './helpers/readme.ts'
const codeBlocks = [...readme.matchAll(/^```(?:js|sh)\n([\s\S]*?)^```$/gm)].map((m) => m[1])

test('the README shows every example verbatim', (t) => {
  const examples = fs.readdirSync(path.join(repoRoot, 'examples'))
  t.true(examples.length >= 3)
  for (const file of examples) {
    const text = fs.readFileSync(path.join(repoRoot, 'examples', file), 'utf8')
    t.true(codeBlocks.includes(text), `README.md has no code block equal to examples/${file}`)
  }
})

test('the README names every runtime export and every exported type', (t) => {
  const index = fs.readFileSync(path.join(repoRoot, 'lib', 'index.ts'), 'utf8')
  const typeNames = [...index.matchAll(/^export type \{([^}]*)\}/gm)].flatMap((m) => (m[1] ?? '').split(',').map((n) => n.trim()).filter(Boolean))
  const names = [...Object.keys(api), ...typeNames]
  t.true(typeNames.length > 20, 'the type exports were found')
  const missing = names.filter((n) => !readme.includes(`\`${n}\``))
  t.deepEqual(missing, [], 'exports the README does not mention in backticks')
})

test('the README\'s export table lists every runtime export, and nothing else', (t) => {
  t.deepEqual([...readmeExportNames()].sort(), Object.keys(api).sort())
})

test('CI runs the README\'s two commands exactly, before anything else builds', (t) => {
  const twoCommands = /^npm install && npm run demo\s+#.*\nnpm test\s+#/m
  t.regex(readme, twoCommands)
  const ci = fs.readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8').replace(/^\s*#.*$/gm, '')
  const demo = ci.indexOf('npm install && npm run demo')
  const npmTest = ci.indexOf('npm test', demo + 1)
  t.true(demo > 0 && npmTest > demo, '.ci/run runs `npm install && npm run demo`, then `npm test`')
  for (const build of ['npm run build', 'node-gyp', 'cmake-js', 'npm ci']) {
    const at = ci.indexOf(build)
    t.true(at === -1 || at > npmTest, `${build} runs only after the README's commands`)
  }
})
