// The CLI's --json documents against their schemas in docs/cli-json/: one
// Ajv instance (strict) with every schema loaded, for every test file.
import type { ExecutionContext } from 'ava'
import { Ajv } from 'ajv'
import fs from 'node:fs'
import path from 'node:path'
import { repoRoot } from './fixtures.ts'

const schemaDir = path.join(repoRoot, 'docs', 'cli-json')
const ajv = new Ajv({ allErrors: true, strict: true })
for (const file of fs.readdirSync(schemaDir)) ajv.addSchema(JSON.parse(fs.readFileSync(path.join(schemaDir, file), 'utf8')), file)

/** The document conforms to docs/cli-json/<schema>.schema.json. */
export function conforms (t: ExecutionContext, schema: string, doc: unknown): void {
  const validate = ajv.getSchema(`${schema}.schema.json`)
  if (validate === undefined) {
    t.fail(`no schema docs/cli-json/${schema}.schema.json`)
    return
  }
  t.true(validate(doc), `${schema}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(doc, null, 1)}`)
}
