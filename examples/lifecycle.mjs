// examples/lifecycle.mjs: one box's whole life, as a runtime drives it.
// Run it as root for a real read-only mount (unprivileged, shared/ falls
// back to a symlink and says so). It uses a throw-away home and a stand-in
// shim, and removes both, whatever happens.
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { connectUnix, HomeLayout, listenUnix, mintBoxId } from 'boxlite-layout'

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'boxlite-example-'))
const shim = path.join(scratch, 'dist', 'boxlite-shim')
await fs.mkdir(path.dirname(shim))
await fs.writeFile(shim, '#!/bin/sh\necho a stand-in shim\n', { mode: 0o755 })
await fs.writeFile(path.join(scratch, 'dist', 'libkrunfw.so.5'), 'a stand-in library')

const home = new HomeLayout({ home: path.join(scratch, 'home') }) // default: $BOXLITE_HOME, else ~/.boxlite
const box = home.box(mintBoxId(), { isolateMounts: true })
try {
  await home.prepare() // EXDEV if tmp, bases and images/disk-images span filesystems
  await box.prepare() // dirs and the /tmp/bl-{uid}/{id} socket link, in BoxLite's order
  const shared = await box.mountShared() // { method: 'bind-ro', readOnly: true, … } as root
  console.log(`shared/: ${shared.method}${shared.readOnly ? ' (read-only)' : ` (WRITABLE: ${shared.error?.message})`}`)
  const installed = await box.installShim(shim) // reflink where the filesystem can
  console.log(`bin/: ${installed.files.map((f) => `${f.name} by ${f.method}`).join(', ')}`)

  // The shim's ready socket, bound through the short link (any home depth fits sun_path).
  const server = await listenUnix(box.readySocketPath)
  server.on('connection', (c) => c.end('ready'))
  try {
    const client = await connectUnix(box.readySocketPath)
    const reply = await new Promise((resolve) => { let got = ''; client.on('data', (d) => { got += d }); client.on('end', () => resolve(got)) })
    console.log(`ready.sock says: ${reply}`)
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
} finally {
  const removed = await box.cleanup() // unmounts, removes without following symlinks, drops the link
  console.log(`cleanup: ${removed.entries} entries removed, ${removed.unmounted} unmounted`)
  await fs.rm(scratch, { recursive: true, force: true }) // the box (and its mount) is gone: plain directories
}
