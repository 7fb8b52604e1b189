// Lint configuration: neostandard (the "standard" style, with TypeScript),
// once for the whole repository.
import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'build/**', 'build-cmake/**', 'prebuilds/**', 'man/**', 'bench/out/**'] }),
]
