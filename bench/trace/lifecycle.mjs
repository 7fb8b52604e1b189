// One strace-able run of the public API through dist/ (npm run build:ts):
// the workloads of `npm run bench`, each preceded by a marker (a statx of
// /blx-mark-NAME that fails with ENOENT) so bench/lib/syscalls.ts can cut
// the strace into steps and hold each against the raw C replay.
//
//   node bench/trace/lifecycle.mjs HOME SHIM UID [EXT4HOME EXT4SHIM]
//
// Homes must be prepared already; UID is the socket link owner (/tmp/bl-UID).
// The sync forms: the async ones make the same calls on a libuv thread (the
// box flock with LOCK_NB, a contended one retried on a thread of its own).
import fs from 'node:fs'
import { HomeLayout, listenUnix, sameFilesystemSync } from '../../dist/index.js'

const [home, shim, uidText, ext4Home, ext4Shim] = process.argv.slice(2)
const uid = Number(uidText)
const mark = (name) => { fs.statSync(`/blx-mark-${name}`, { throwIfNoEntry: false }) }
const h = new HomeLayout({ home })
const run = async (name, fn) => { mark(name); await fn() }

// Two boxes: the first warms what a first call warms (link dir, caches); the second is the steady state.
for (const id of ['tracebox0001', 'tracebox0002']) {
  const box = h.box(id, { isolateMounts: true, uid })
  const sfx = id.endsWith('1') ? 'warm' : 'box'
  await run(`${sfx}-prepare`, () => box.prepareSync())
  await run(`${sfx}-mount`, () => box.mountSharedSync())
  await run(`${sfx}-shim`, () => box.installShimSync(shim))
  await run(`${sfx}-unmount`, () => box.unmountSharedSync())
  await run(`${sfx}-remount`, () => box.mountSharedSync())
  await run(`${sfx}-cleanup`, () => box.cleanupSync())
}
await run('samefs', () => sameFilesystemSync([h.tmpDir, h.basesDir, h.images.diskImagesDir]))
const sockBox = h.box('tracebox0003', { uid })
await run('sockbox', () => sockBox.prepareSync())
// The first listen also opens libuv's reserve fd (/dev/null): warm it up.
for (const step of ['sock-warm', 'sock']) {
  await run(step, async () => {
    const s = await listenUnix(sockBox.readySocketPath)
    await new Promise((resolve) => s.close(resolve))
  })
}
if (ext4Home !== undefined) {
  // installShim where FICLONE cannot: the copy_file_range fallback.
  const box = new HomeLayout({ home: ext4Home }).box('tracebox0004', { uid })
  await run('ext4-prepare', () => box.prepareSync())
  await run('ext4-shim', () => box.installShimSync(ext4Shim))
  await run('ext4-cleanup', () => box.cleanupSync())
}
mark('end')
sockBox.cleanupSync()
