// Writes man/boxlite-layout.1 from the CLI's command table (lib/cli/spec.ts),
// the same table --help and the parser use. A test fails when it is stale.
import fs from 'node:fs'
import { manPage } from '../lib/cli/spec.ts'

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
fs.mkdirSync(new URL('../man/', import.meta.url), { recursive: true })
fs.writeFileSync(new URL('../man/boxlite-layout.1', import.meta.url), manPage(pkg.version))
