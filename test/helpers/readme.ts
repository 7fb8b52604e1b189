// The README's table of runtime exports, parsed: the names in backticks in
// the first column of the `| Export | What |` table. Tests that must cover
// every export (the README test, the bad-input table) are driven by it.
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot } from './fixtures.ts'

export const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8')

/** Every name the export table's first column lists, in order. */
export function readmeExportNames (): string[] {
  const start = readme.indexOf('| Export | What |')
  if (start < 0) throw new Error('README.md has no `| Export | What |` table')
  const rows = readme.slice(start).split('\n').slice(2)
  const names: string[] = []
  for (const row of rows) {
    if (!row.startsWith('|')) break
    const first = row.split('|')[1] ?? ''
    for (const m of first.matchAll(/`([A-Za-z_$][\w$]*)`/g)) names.push(m[1]!)
  }
  return names
}
