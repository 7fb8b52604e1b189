// The QEMU guest of tools/guest-vm/vm.ts for tests: one boot per scenario,
// the probes of tools/guest-vm/probes.ts batched into it.
import type { ExecutionContext } from 'ava'
import {
  bootGuest, prepareGuestImage, type GuestBootOptions, type GuestImage, type GuestRun, type GuestStep, type GuestStepResult,
} from '../../tools/guest-vm/vm.ts'

export {
  errnoFromStderr, guestAvailability, GUEST_MOUNT_POINT, type GuestRun, type GuestStep, type GuestStepResult,
} from '../../tools/guest-vm/vm.ts'
export * from '../../tools/guest-vm/probes.ts'

export type RunInGuestOptions = Omit<GuestBootOptions, 'sharedDir' | 'steps'>

/** One boot of the guest with sharedDir mounted over 9p, running steps in order. */
export function runInGuest (sharedDir: string, steps: GuestStep[], options: RunInGuestOptions = {}): Promise<GuestRun> {
  return bootGuest({ ...options, sharedDir, steps })
}

/** The repo's ava timeout (package.json "ava.timeout"), restored once the image is ready. */
const TEST_TIMEOUT_MS = 600_000
/** A cold cache fetches and unpacks a Debian kernel package first. */
const FETCH_TIMEOUT_MS = 600_000

let image: Promise<GuestImage> | undefined
let imageReady = false

/**
 * The guest kernel and modules, prepared once per test file and shared by
 * its tests (so a cold cache is fetched once, not by each). While a fetch
 * is under way the test's timeout is raised, then put back.
 */
export async function guestImage (t: ExecutionContext): Promise<GuestImage> {
  image ??= prepareGuestImage().then((ready) => {
    imageReady = true
    return ready
  })
  if (imageReady) return await image
  t.timeout(FETCH_TIMEOUT_MS, 'fetching the guest kernel into the cache')
  const ready = await image
  t.timeout(TEST_TIMEOUT_MS)
  return ready
}

/** A step's outcome in one line, for assertion messages. */
export function describeStep (s: GuestStepResult): string {
  return `exit ${s.exitCode}${s.errno === undefined ? '' : ` (${s.errno})`}; stdout ${JSON.stringify(s.stdout)}; stderr ${JSON.stringify(s.stderr)}`
}

/** The result of the step called name (exactly one). */
export function stepNamed (run: GuestRun, name: string): GuestStepResult {
  const found = run.steps.filter((s) => s.name === name)
  if (found.length !== 1) throw new Error(`${found.length} guest steps are called ${JSON.stringify(name)}`)
  return found[0]!
}

/** The step succeeded in the guest. */
export function assertStepOk (t: ExecutionContext, s: GuestStepResult, what = s.name): void {
  t.is(s.exitCode, 0, `${what} must succeed in the guest: ${describeStep(s)}`)
}

/** The step failed in the guest with errno (read off its stderr). */
export function assertStepErrno (t: ExecutionContext, s: GuestStepResult, errno: string, what = s.name): void {
  t.not(s.exitCode, 0, `${what} must fail in the guest: ${describeStep(s)}`)
  t.is(s.errno, errno, `${what} must fail with ${errno}: ${describeStep(s)}`)
}
