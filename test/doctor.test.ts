// doctor's advice per platform, from the same function the CLI calls with
// this host's facts: the platform is passed in, so macOS's answer is checked
// here too.
import test from 'ava'
import { privilegeCheck } from '../lib/cli/doctor.ts'

test('doctor: privilege advice is the platform\'s own (no CAP_SYS_ADMIN talk on macOS, root or not)', (t) => {
  for (const uid of [0, 501]) {
    const mac = privilegeCheck('darwin', uid, false)
    t.is(mac.status, 'ok', `macOS uid ${uid}`)
    t.notRegex(JSON.stringify(mac), /CAP_SYS_ADMIN|unshare|run as root/, `macOS uid ${uid}`)
    t.regex(mac.detail, /no bind mounts at any privilege/)
    t.is(mac.hint, undefined)
  }
  t.like(privilegeCheck('linux', 0, true), { status: 'ok', detail: 'uid 0 with CAP_SYS_ADMIN: read-only bind mounts possible' })
  const unprivileged = privilegeCheck('linux', 1000, false)
  t.is(unprivileged.status, 'warn')
  t.regex(unprivileged.hint!, /unshare -Urm/)
})
