// The probes a guest runs against shared/: a read, one attempt at every
// kind of write, and "the host writes while the guest runs". Used by
// `npm run demo:vm` and by the guest tests. Seed the files with seedProbeFiles()
// in the directory the guest will see (a box's mounts/ when shared/ is its
// bind, else shared/ itself).
import fsp from 'node:fs/promises'
import path from 'node:path'
import type { GuestStep } from './vm.ts'

/** Content of every seeded file; the read probe prints it back. */
export const PROBE_TEXT = 'written by the host\n'

/** Seeded files, each the target of probes that must not disturb the others. */
export const PROBE_FILES = {
  /** Read, appended to, touched, chmodded, symlinked to. */
  probe: 'probe.txt',
  renameMe: 'rename-me.txt',
  removeMe: 'remove-me.txt',
} as const

export async function seedProbeFiles (dir: string): Promise<void> {
  for (const name of Object.values(PROBE_FILES)) {
    await fsp.writeFile(path.join(dir, name), PROBE_TEXT)
  }
}

export function readProbeStep (): GuestStep {
  return { name: 'read', run: `cat ${PROBE_FILES.probe}` }
}

/**
 * One attempt at each kind of write, each against a different object so that
 * on a writable share every one succeeds (and on a read-only one each fails
 * with EROFS on its own account).
 */
export function writeProbeSteps (): GuestStep[] {
  return [
    { name: 'write', run: 'echo guest > guest-wrote.txt' },
    { name: 'append', run: `echo guest >> ${PROBE_FILES.probe}` },
    { name: 'mkdir', run: 'mkdir guest-dir' },
    { name: 'touch', run: `touch ${PROBE_FILES.probe}` },
    { name: 'chmod', run: `chmod 600 ${PROBE_FILES.probe}` },
    { name: 'rename', run: `mv ${PROBE_FILES.renameMe} renamed.txt` },
    { name: 'symlink', run: `ln -s ${PROBE_FILES.probe} guest-link` },
    { name: 'rm', run: `rm ${PROBE_FILES.removeMe}` },
  ]
}

export const HOST_WRITE_MARKER = 'host-write'
export const HOST_WRITE_FILE = 'host-wrote.txt'
export const HOST_WRITE_TEXT = 'written by the host while the guest ran\n'

/**
 * The guest checks the file is absent, asks the host to write it into hostDir
 * (mounts/ behind a read-only shared/), then polls every 100 ms until it
 * appears. Its stdout is "seen after N polls" and the file's content.
 */
export function hostWriteProbe (hostDir: string): { step: GuestStep, onMarker: (name: string) => Promise<void> } {
  return {
    step: {
      name: 'host write visible',
      run: `test ! -e ${HOST_WRITE_FILE} && await_host ${HOST_WRITE_MARKER} && wait_for ${HOST_WRITE_FILE} && cat ${HOST_WRITE_FILE}`,
    },
    onMarker: async (name) => {
      if (name !== HOST_WRITE_MARKER) throw new Error(`unexpected guest marker ${name}`)
      await fsp.writeFile(path.join(hostDir, HOST_WRITE_FILE), HOST_WRITE_TEXT)
    },
  }
}
