// Checks of the from-source builds, run by `npm run test:source-builds`
// after `npm run build` and `npm run build:cmake` (CI does both). Not part
// of `npm test`, which runs on whatever addon a fresh install loads.
import test from 'ava'
import { createRequire } from 'node:module'
import path from 'node:path'
import { binding } from '../lib/native.ts'
import { repoRoot } from './helpers/fixtures.ts'

const require = createRequire(import.meta.url)
const { sourceHash } = require('../scripts/source-hash.cjs') as { sourceHash: () => string }

test('node-gyp built the addon that is loaded, from the sources on disk', (t) => {
  const load = require('node-gyp-build') as { resolve: (dir: string) => string }
  t.is(load.resolve(repoRoot), path.join(repoRoot, 'build', 'Release', 'boxlite_layout.node'))
  t.is(binding().sourceHash, sourceHash())
})

test('cmake-js builds the same addon: same exports, same source hash', (t) => {
  const cmake = require(path.join(repoRoot, 'build-cmake', 'Release', 'boxlite_layout.node')) as Record<string, unknown>
  t.is(cmake.sourceHash, sourceHash(), 'stale cmake-js build: run npm run build:cmake')
  t.deepEqual(Object.keys(cmake).sort(), Object.keys(binding()).sort())
})
