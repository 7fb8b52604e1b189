// Ids may differ only in case ("abc", "ABC"), and APFS folds case by
// default, where both name one directory. Every box operation refuses an id
// whose spelling on disk differs (reason case-collision) and touches neither
// box. This kernel cannot mount a casefold filesystem (no CONFIG_UNICODE), so
// BOXLITE_LAYOUT_CASE_INSENSITIVE=1 makes the core answer "this filesystem
// folds case" and run the same listing check a Mac runs (docs/design.md).
import test from 'ava'
import fs from 'node:fs'
import path from 'node:path'
import { privateLinkUid } from './helpers/boxes.ts'
import { repoRoot, run, scratch } from './helpers/fixtures.ts'

const script = `
  const { HomeLayout } = await import(${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))})
  const home = new HomeLayout({ home: process.argv[1] })
  const box = (id) => home.box(id, { isolateMounts: true, uid: Number(process.argv[2]) })
  const outcome = async (fn) => {
    try { await fn(); return 'ok' } catch (e) { return e.code + '/' + e.reason + (e.dest ? ' ' + e.dest : '') }
  }
  home.prepareSync()
  box('abc').prepareSync()
  const r = {}
  r.prepareSync = await outcome(() => box('ABC').prepareSync())
  r.prepare = await outcome(() => box('ABC').prepare())
  r.mountShared = await outcome(() => box('ABC').mountShared())
  r.installShim = await outcome(() => box('ABC').installShim(process.argv[3]))
  r.cleanupSync = await outcome(() => box('ABC').cleanupSync())
  r.cleanup = await outcome(() => box('ABC').cleanup())
  r.Abc = await outcome(() => box('Abc').cleanup())
  r.other = await outcome(() => box('abd').prepare())
  console.log(JSON.stringify(r))`

for (const folding of [true, false]) {
  test(`ids that differ only in case: ${folding ? 'refused (case-collision) where the filesystem folds case (forced here), and the other box is untouched' : 'two boxes on a case-sensitive filesystem'}`, async (t) => {
    const root = scratch(t)
    const home = path.join(root, 'home')
    const shim = path.join(root, 'boxlite-shim')
    fs.writeFileSync(shim, 'shim', { mode: 0o755 })
    // A uid of its own for /tmp/bl-{uid}: other tests sweep the real one.
    const uid = privateLinkUid(t)
    const r = await run(process.execPath, ['--input-type=module', '-e', script, home, String(uid), shim],
      { cwd: repoRoot, env: { ...process.env, BOXLITE_LAYOUT_CASE_INSENSITIVE: folding ? '1' : '0' } })
    t.is(r.code, 0, r.stderr)
    const boxes = path.join(home, 'boxes')
    const twin = `EEXIST/case-collision ${path.join(boxes, 'abc')}`
    if (folding) {
      t.deepEqual(JSON.parse(r.stdout), {
        prepareSync: twin, prepare: twin, mountShared: twin, installShim: twin, cleanupSync: twin, cleanup: twin, Abc: twin, other: 'ok',
      })
      t.deepEqual(fs.readdirSync(boxes).sort(), ['abc', 'abd'], 'no ABC was made, abc was not removed')
      t.deepEqual(fs.readdirSync(path.join(boxes, 'abc')).sort(), ['disks', 'logs', 'mounts', 'sockets', 'tmp'], 'abc is as prepared')
      t.is(fs.readlinkSync(`/tmp/bl-${uid}/abc`), path.join(boxes, 'abc', 'sockets'), "abc's socket link stays")
    } else {
      const made = JSON.parse(r.stdout) as Record<string, string>
      t.like(made, { prepareSync: 'ok', prepare: 'ok', mountShared: 'ok', installShim: 'ok', cleanupSync: 'ok', other: 'ok' })
      t.deepEqual(fs.readdirSync(boxes).sort(), ['abc', 'abd'])
    }
  })
}
