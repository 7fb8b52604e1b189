// Gating for tests that need privilege or tools. Outside CI such a test is
// skipped with a printed reason; under CI=true a skip is a failure.
import test, { type ExecutionContext, type ImplementationFn } from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { testTmp } from './fixtures.ts'

export const inCI = process.env.CI === 'true'
export const isRoot = process.getuid?.() === 0

function hasTool (tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0
}

let mountable: boolean | undefined
/** Root with CAP_SYS_ADMIN in our mount namespace: tried, not guessed. */
export function canMount (): boolean {
  if (mountable !== undefined) return mountable
  mountable = false
  if (!isRoot) return false
  const dir = fs.mkdtempSync(path.join(testTmp, 'blx-canmount-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', 'probe', dir], { stdio: 'ignore' })
    execFileSync('umount', [dir], { stdio: 'ignore' })
    mountable = true
  } catch {
    mountable = false
  } finally {
    fs.rmdirSync(dir)
  }
  return mountable
}

export interface Requirement {
  ok: () => boolean
  reason: string
}

export const needs = {
  mount: { ok: canMount, reason: 'needs root with CAP_SYS_ADMIN (real mounts)' },
  root: { ok: () => isRoot, reason: 'needs root' },
  tool: (tool: string, pkg: string): Requirement => ({
    ok: () => hasTool(tool),
    reason: `needs ${tool} (apt-get install ${pkg})`,
  }),
  linux: { ok: () => process.platform === 'linux', reason: 'Linux only' },
} satisfies Record<string, Requirement | ((...a: string[]) => Requirement)>

type Fn = ImplementationFn<[], unknown>

/** A test that runs only when every requirement holds. */
export function testWith (requirements: Requirement[], title: string, fn: Fn, serial = false): void {
  const missing = requirements.filter((r) => !r.ok()).map((r) => r.reason)
  const register = serial ? test.serial : test
  if (missing.length === 0) {
    register(title, fn)
  } else if (inCI) {
    register(title, (t: ExecutionContext) => {
      t.fail(`skipped under CI=true, which is a failure: ${missing.join('; ')}`)
    })
  } else {
    console.log(`skip: ${title}: ${missing.join('; ')}`)
    ;(serial ? test.serial.skip : test.skip)(title, fn)
  }
}

export const privileged = (title: string, fn: Fn): void => testWith([needs.linux, needs.mount], title, fn)
export const privilegedSerial = (title: string, fn: Fn): void => testWith([needs.linux, needs.mount], title, fn, true)
