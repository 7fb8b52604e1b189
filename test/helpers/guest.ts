// The QEMU guest of lib/cli/guest-vm.ts for tests: one boot per scenario,
// the probes of lib/cli/guest-probes.ts batched into it.
import { bootGuest, type GuestBootOptions, type GuestRun, type GuestStep } from '../../lib/cli/guest-vm.ts'

export { guestAvailability, GUEST_MOUNT_POINT, type GuestRun, type GuestStep, type GuestStepResult } from '../../lib/cli/guest-vm.ts'
export * from '../../lib/cli/guest-probes.ts'

export type RunInGuestOptions = Omit<GuestBootOptions, 'sharedDir' | 'steps'>

/** One boot of the guest with sharedDir mounted over 9p, running steps in order. */
export function runInGuest (sharedDir: string, steps: GuestStep[], options: RunInGuestOptions = {}): Promise<GuestRun> {
  return bootGuest({ ...options, sharedDir, steps })
}
